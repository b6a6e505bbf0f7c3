"""Process faults on a launched deployment: kill, pause, stop and start its processes by target name.

Implements chaos' `ProcessControl` (chaos.processes) without importing chaos. A deployment the
launcher started knows its processes from its state file (the embedded stack's `stack.json`,
the native runner's `kugelpos.json`): every entry records `pid`, `cmd` (argv), `env` (the
variables set on top of the starter's environment), `cwd`, `log`, `match` (command-line
markers) and `port`, and a killed process is started again from that record exactly as the
launcher started it: same argv, port and config, log appended.

Targets: `redis`, `mongo` (the native runner's), `sidecar@<app>`, `app@<app>` (contracts §1).
Every action first checks that the pid still is the recorded program (cmdline markers), so a
reused pid is never signalled; kill, pause and resume reach the process's whole group (a
multi-worker server's workers too, `signal_group`). After a start the state file has the new pid (and a
`restarts` record), so `down` stops it. While a fault keeps a supervised service down, its
entry is `held`, so the crash supervisor does not restart it behind the fault.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.pids import (gone_within, pid_matches, pid_running, pid_stopped, proc_state, signal_group,
                                    state_within)
from kugeldrill.ground.processes import ACTIONS, ProcessActionError, ProcessResult
from kugeldrill.stack.launch.health import port_probe, redis_probe, sidecar_probe
from kugeldrill.stack.launch.process import Command, ManagedProcess
from kugeldrill.stack.launch.state import STATE_NAME, StateFile, read_state

SIGNAL_WAIT = 5.0  # seconds for the kernel to report a SIGKILLed process gone, a SIGSTOPped one stopped
RUNNING_STATES = frozenset({"R", "S", "D", "I"})
#: Servers that are process-fault targets by their own name (Toxiproxy is not: it applies the faults).
SERVER_TARGETS = {"redis": "redis-server", "mongo": "mongodb server"}


def target_key(target: str) -> tuple[str, str | None]:
    """`redis` → ("redis", None); `sidecar@cart` → ("sidecars", "cart"); `app@cart` → ("services", "cart")."""
    if target in SERVER_TARGETS:
        return target, None
    kind, _, app = target.partition("@")
    group = {"sidecar": "sidecars", "app": "services"}.get(kind)
    if group is None or not app:
        raise ConfigError(f"process target {target!r} must be 'redis', 'sidecar@<app>' or 'app@<app>'")
    return group, app


class RecordedProcesses:
    """ProcessControl for a launched deployment, driven by its state file.

    Use `deployment.processes()` in the process that started it (it shares the state file
    object, so the in-process supervisor sees `held` at once) or `from_state_file(path)` from
    anywhere else (`kugeldrill heal`, `kugeldrill stack process`, a standalone chaos run).
    """

    def __init__(self, state_file: StateFile) -> None:
        self.file = state_file
        self.description = ("the native Kugelpos" if state_file.state.get("kind") == "kugelpos-native"
                            else "the embedded stack")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._children: dict[str, ManagedProcess] = {}  # processes we started: reaped when they exit

    @classmethod
    def from_state_file(cls, path: str | Path) -> "RecordedProcesses":
        """A state file (`kugelpos.json` too), or a folder holding `stack.json`."""
        path = Path(path)
        if path.is_dir():
            path = path / STATE_NAME
        return cls(StateFile(path, read_state(path)))

    # ------------------------------------------------------------------ the records

    def _lock(self, target: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(target, threading.Lock())

    def _entry(self, target: str, *, reload: bool = True) -> dict[str, Any]:
        group, app = target_key(target)
        state = self.file.reload() if reload else self.file.state
        entry = state.get(group) if app is None else (state.get(group) or {}).get(app)
        if not entry:
            raise ProcessActionError(f"{target}: {self.description} has no such process (state file {self.file.path})")
        return entry

    def _update_entry(self, target: str, change: Callable[[dict[str, Any]], None]) -> None:
        group, app = target_key(target)

        def apply(state: dict[str, Any]) -> None:
            entry = state.get(group) if app is None else (state.get(group) or {}).get(app)
            if entry:
                change(entry)

        self.file.update(apply)

    @staticmethod
    def _live_pid(entry: dict[str, Any]) -> int | None:
        pid = entry.get("pid")
        return pid if pid_matches(pid, entry.get("match", [])) else None

    def _require_pid(self, target: str, entry: dict[str, Any], action: str) -> int:
        pid = self._live_pid(entry)
        if pid is None:
            raise ProcessActionError(f"{target}: cannot {action}: the recorded pid {entry.get('pid')} is not running "
                                     f"(or no longer is {' '.join(entry.get('match', []))})")
        return pid

    def _hold(self, target: str, held: bool) -> None:
        """Tell the crash supervisor to keep off (a fault keeps this process down on purpose)."""
        def change(entry: dict[str, Any]) -> None:
            if held:
                entry["held"] = True
            else:
                entry.pop("held", None)
        self._update_entry(target, change)

    def _wait_gone(self, target: str, pid: int, timeout: float) -> bool:
        child = self._children.get(target)
        if child is not None and child.pid == pid:
            return child.wait(timeout)  # our own child: reaped, not left a zombie
        return gone_within(pid, timeout)

    # ------------------------------------------------------------------ ProcessControl

    def targets(self) -> list[str]:
        state = self.file.state
        out = [name for name in SERVER_TARGETS if (state.get(name) or {}).get("pid")]
        out += [f"sidecar@{a}" for a in state.get("sidecars", {})]
        out += [f"app@{a}" for a in state.get("services", {})]
        return out

    def missing_actions(self, target: str, actions: Iterable[str]) -> list[str]:
        entry = self._entry(target, reload=False)
        actions = list(actions)
        missing = [a for a in actions if a not in ACTIONS]
        if "start" in actions and not entry.get("cmd"):
            missing.append("start")
        return missing

    def pids(self, target: str) -> list[int]:
        pid = self._live_pid(self._entry(target))
        return [pid] if pid else []

    def kill(self, target: str) -> ProcessResult:
        with self._lock(target):
            entry = self._entry(target)
            pid = self._require_pid(target, entry, "kill")
            self._hold(target, True)
            t0 = time.monotonic()
            signal_group(pid, signal.SIGKILL)
            if not self._wait_gone(target, pid, SIGNAL_WAIT):
                raise ProcessActionError(f"{target}: pid {pid} still exists {SIGNAL_WAIT:g}s after SIGKILL "
                                         f"(state {proc_state(pid)})")
            return ProcessResult(target, "kill", (pid,), (), facts={"gone_seconds": round(time.monotonic() - t0, 4)})

    def pause(self, target: str) -> ProcessResult:
        with self._lock(target):
            entry = self._entry(target)
            pid = self._require_pid(target, entry, "pause")
            signal_group(pid, signal.SIGSTOP)
            if not state_within(pid, {"T"}, SIGNAL_WAIT):
                raise ProcessActionError(f"{target}: pid {pid} not stopped {SIGNAL_WAIT:g}s after SIGSTOP "
                                         f"(state {proc_state(pid)})")
            return ProcessResult(target, "pause", (pid,), (pid,))

    def resume(self, target: str) -> ProcessResult:
        with self._lock(target):
            entry = self._entry(target)
            pid = self._require_pid(target, entry, "resume")
            if not pid_stopped(pid):
                return ProcessResult(target, "resume", (pid,), (pid,), outcome="already")
            signal_group(pid, signal.SIGCONT)
            if not state_within(pid, RUNNING_STATES, SIGNAL_WAIT):
                raise ProcessActionError(f"{target}: pid {pid} still stopped {SIGNAL_WAIT:g}s after SIGCONT")
            return ProcessResult(target, "resume", (pid,), (pid,))

    def stop(self, target: str, grace: float) -> ProcessResult:
        with self._lock(target):
            entry = self._entry(target)
            pid = self._require_pid(target, entry, "stop")
            self._hold(target, True)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            if pid_stopped(pid):
                signal_group(pid, signal.SIGCONT)  # a paused process handles SIGTERM only once continued
            outcome = "done"
            if not self._wait_gone(target, pid, grace):
                signal_group(pid, signal.SIGKILL)
                outcome = "escalated"
                if not self._wait_gone(target, pid, SIGNAL_WAIT):
                    raise ProcessActionError(f"{target}: pid {pid} still exists after SIGTERM and SIGKILL")
            return ProcessResult(target, "stop", (pid,), (), outcome=outcome,
                                 detail="SIGKILL after the grace period" if outcome == "escalated" else "",
                                 facts={"gone_seconds": round(time.monotonic() - t0, 4)})

    def start(self, target: str) -> ProcessResult:
        with self._lock(target):
            entry = self._entry(target)
            pid = self._live_pid(entry)
            if pid is not None:
                if pid_stopped(pid):
                    signal_group(pid, signal.SIGCONT)
                    state_within(pid, RUNNING_STATES, SIGNAL_WAIT)
                if entry.get("held"):
                    self._hold(target, False)
                return ProcessResult(target, "start", (pid,), (pid,), outcome="already")
            cmd = entry.get("cmd")
            if not cmd:
                raise ProcessActionError(f"{target}: the state file records no command to start it again")
            proc = ManagedProcess.of(_part_name(target), Command.from_entry(entry))
            try:
                proc.start()
            except OSError as exc:
                raise ProcessActionError(f"{target}: cannot run {cmd[0]}: {exc}") from exc
            self._children[target] = proc
            old = entry.get("pid")
            record = {"wall": time.time(), "old_pid": old, "new_pid": proc.pid, "exit_code": None,
                      "cause": "process fault"}

            def change(e: dict[str, Any]) -> None:
                e["pid"] = proc.pid
                e.pop("held", None)
                e.setdefault("restarts", []).append(record)

            self._update_entry(target, change)
            return ProcessResult(target, "start", (old,) if old else (), (proc.pid,))

    def wait_ready(self, target: str, timeout: float) -> str | None:
        """Ready = the process recorded now (just started) answers its probe; it being
        killed or replaced before that is reported, never credited to its successor."""
        entry = self._entry(target)
        pid = entry.get("pid")
        probe = _probe_for(target, entry)
        deadline = time.monotonic() + timeout
        problem = "no answer yet"
        with httpx.Client(timeout=1.0) as client:
            while True:
                if not pid_matches(pid, entry.get("match", [])):
                    return f"{target} pid {pid} exited before it answered; see {entry.get('log')}"
                if self._entry(target, reload=False).get("pid") != pid:
                    return f"{target} pid {pid} was replaced before it answered"
                problem = probe(client)
                if problem is None:
                    return None
                if time.monotonic() >= deadline:
                    return f"{target} not ready within {timeout:g}s: {problem}"
                time.sleep(0.05)

    def problems(self, targets: Iterable[str]) -> list[str]:
        out = []
        for target in targets:
            try:
                entry = self._entry(target)
            except ProcessActionError as exc:
                out.append(str(exc))
                continue
            pid = self._live_pid(entry)
            if pid is None and self.supervised(target):
                continue  # between a crash-knob exit and its supervisor's restart
            if pid is None:
                out.append(f"process {target} is not running (pid {entry.get('pid')})")
            elif pid_stopped(pid):
                out.append(f"process {target} is stopped (pid {pid}, state {proc_state(pid)})")
        return out

    def lease_entry(self, target: str, need: str) -> dict[str, Any]:
        entry = self._entry(target)
        group, app = target_key(target)
        spawn = {"target": target, "need": "start", "do": "spawn", "argv": list(entry.get("cmd") or []),
                 "env": dict(entry.get("env") or {}), "cwd": entry.get("cwd"), "log": entry.get("log"),
                 "match": list(entry.get("match", [])),
                 "pid_file": {"path": str(self.file.path), "keys": [group, "pid"] if app is None else [group, app, "pid"]}}
        if not spawn["argv"]:
            raise ProcessActionError(f"{target}: the state file records no command to start it again")
        if need == "resume":
            return {"target": target, "need": "resume", "do": "signal", "signal": "SIGCONT",
                    "pids": self.pids(target), "match": list(entry.get("match", [])), "fallback": spawn}
        return spawn

    # ------------------------------------------------------------------ the crash supervisor

    def supervised(self, target: str) -> bool:
        """A service the crash supervisor restarts by itself: crash knob on, the supervisor (a
        thread of the launching process, or a process) alive, and not held by a fault."""
        group, app = target_key(target)
        sup = self.file.state.get("supervisor") or {}
        entry = self._entry(target, reload=False)
        return (group == "services" and app in (sup.get("apps") or []) and not entry.get("held")
                and pid_running(sup.get("pid")))


def _part_name(target: str) -> str:
    group, app = target_key(target)
    return SERVER_TARGETS[group] if app is None else f"{'service' if group == 'services' else 'sidecar'} {app}"


def _probe_for(target: str, entry: dict[str, Any]) -> Callable[[httpx.Client], str | None]:
    """Ready = serving: Redis answers PING, a sidecar's /v1.0/healthz is 2xx (components
    initialised, the launcher's own probe), a service answers /health at all (its status
    includes its sidecar, which another fault may be cutting right now); any other server:
    its port accepts TCP."""
    group, app = target_key(target)
    if group == "redis":
        return redis_probe(int(entry.get("port") or 0))
    if app is None:
        return port_probe(int(entry.get("port") or 0))
    if group == "sidecars":
        return sidecar_probe(entry["url"], False)
    health = entry["url"].rstrip("/") + "/health"

    def serving(client: httpx.Client) -> str | None:
        try:
            resp = client.get(health)
        except httpx.HTTPError as exc:
            return f"GET {health}: {type(exc).__name__}"
        return None if resp.status_code == 200 else f"GET {health} answered {resp.status_code}"

    return serving
