"""Stopping a launched deployment: exactly the recorded processes, in dependency order.

Supervisor first (it would restart what we stop), then services and sidecars together,
then the servers behind them (the native runner's MongoDB, Toxiproxy, Redis); in parallel
within a group because each may take seconds. A process the launcher started itself is
stopped through its handle; one known only from the state file is signalled only while its
command line still matches the record (`procs.stop_pid`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.plan import HOST
from kugeldrill.stack.launch.process import ManagedProcess
from kugeldrill.stack.launch.procs import pid_matches, port_listening, stop_pid
from kugeldrill.stack.launch.state import StateFile, read_state
from kugeldrill.stack.launch.supervisor import Supervisor


#: The servers behind the apps, in stop order (the native runner adds its MongoDB first).
SERVERS = ("toxiproxy", "redis")


def parts(state: dict[str, Any], servers: tuple[str, ...] = SERVERS) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded process as (part name, state entry), in stop order."""
    out: list[tuple[str, dict[str, Any]]] = []
    if state.get("supervisor", {}).get("mode") == "process":
        out.append(("supervisor", state["supervisor"]))
    out += [(f"service {a}", e) for a, e in state.get("services", {}).items()]
    out += [(f"sidecar {a}", e) for a, e in state.get("sidecars", {}).items()]
    for name in servers:
        if state.get(name):
            out.append((name, state[name]))
    return out


def ports(state: dict[str, Any], servers: tuple[str, ...] = SERVERS) -> list[int]:
    """Every loopback port the stack listens on (processes and proxies)."""
    found: list[int] = []
    for _, entry in parts(state, servers):
        if entry.get("ports"):
            found += [int(p) for p in entry["ports"].values() if p]
        elif entry.get("port"):
            found.append(int(entry["port"]))
    found += [int(link["listen"].rsplit(":", 1)[1]) for link in state.get("links", {}).values()]
    return found


def stop_parts(file: StateFile, handles: dict[str, ManagedProcess], supervisor: Supervisor | None, timeout: float,
               wait_ports: bool, servers: tuple[str, ...] = SERVERS) -> dict[str, Any]:
    """Stop everything recorded; `{"stopped": {part: outcome}, "ports_left": [...], "problems": {...}}`.

    `handles` are the processes this launcher started itself (by state key), `supervisor` its
    crash-supervisor thread, if any; `servers` are stopped after the apps, one group each, in
    their order."""
    if supervisor is not None:
        supervisor.stop()
        # The thread may have restarted a service; its handle is the current one.
        for app, handle in supervisor.handles.items():
            handles[f"services:{app}"] = handle
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def stop(part: str, entry: dict[str, Any]) -> None:
        outcome = _stop_part(handles.get(state_key(part)), entry, timeout)
        with lock:
            outcomes[part] = outcome

    groups: list[Callable[[str], bool]] = [  # in this order; in parallel within a group (each may wait seconds)
        lambda part: part == "supervisor",
        lambda part: part.startswith(("service ", "sidecar ")),
        *[lambda part, name=name: part == name for name in servers],
    ]
    supervised = any(groups[0](part) for part, _ in parts(file.state, servers))
    for i, member in enumerate(groups):
        if i == 1 and supervised and supervisor is None:
            # The detached supervisor may have restarted a service since we read the file.
            try:
                file.state = read_state(file.path)
            except DrillError:
                pass
        threads = [threading.Thread(target=stop, args=p, daemon=True) for p in parts(file.state, servers) if member(p[0])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout * 2 + 5)
    # Children that did not get a pid recorded (crash between spawn and write) are still handles.
    for handle in handles.values():
        if handle.alive():
            handle.stop()
            outcomes.setdefault(handle.name, "stopped")
    ports_left = ports_still_open(ports(file.state, servers), deadline=time.monotonic() + 5.0) if wait_ports else []
    leftover = {p: o for p, o in outcomes.items() if o in ("not ours", "unkillable")}
    if not ports_left and "unkillable" not in outcomes.values():
        file.remove()
    return {"stopped": outcomes, "ports_left": ports_left, "problems": leftover}


def state_key(part: str) -> str:
    """A part's key in the launcher's handles: `service cart` → `services:cart`, `redis` → `redis`."""
    group, _, app = part.partition(" ")
    return f"{group}s:{app}" if app else part


def _stop_part(handle: ManagedProcess | None, entry: dict[str, Any], timeout: float) -> str:
    """Through the handle if this launcher started the recorded pid, else by pid (checked)."""
    pid = entry.get("pid")
    if handle is not None and handle.pid == pid:
        if not handle.alive():
            return "gone"
        handle.stop(timeout)
        return "stopped"
    return stop_pid(pid, entry.get("match", []), timeout)


def ports_still_open(candidates: list[int], deadline: float) -> list[int]:
    remaining = list(candidates)
    while remaining:
        remaining = [p for p in remaining if port_listening(HOST, p)]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return remaining


def refuse_running(path: Path, what: str, down_command: str, servers: tuple[str, ...] = SERVERS) -> None:
    """A second `up` on the same state dir would orphan the first one: refuse it while any
    recorded process still runs. An unreadable leftover file is simply overwritten."""
    if not path.exists():
        return
    try:
        state = read_state(path)
    except DrillError:
        return
    alive = [part for part, entry in parts(state, servers) if pid_matches(entry.get("pid"), entry.get("match", []))]
    if alive:
        raise DrillError(f"{what} is already running from {path} ({', '.join(alive)})",
                         hint=f"stop it with '{down_command}' (same --state-dir) or use another --state-dir")
