"""Undoing a process fault from a lease entry alone: the watchdog's and `kugeldrill heal`'s way.

When the drill process dies (SIGKILL, OOM) nobody holds the ProcessControl that killed or
froze a process, and the watchdog must not import the stack. So each active process fault
leaves a self-contained entry in the lease (written before its first action):

    {"target": "app@journal", "need": "start", "do": "spawn",
     "argv": [...], "env": {"PYTHONPATH": "..."}, "cwd": null, "log": ".../journal.log",
     "match": ["/.../config/journal.json"], "pid_file": {"path": ".../stack.json", "keys": ["services", "journal", "pid"]}}
    {"target": "redis", "need": "resume", "do": "signal", "signal": "SIGCONT", "pids": [123], "match": ["redis-server", ":6380"],
     "fallback": {... a spawn entry, used when the paused process is gone ...}}
    {"target": "app@cart", "need": "start", "do": "command", "argv": ["docker", "start", "kugelpos-cart-1"], "timeout": 60}

* `signal` — SIGCONT every listed pid that still is the recorded program (cmdline markers);
* `spawn` — unless the pid recorded in `pid_file` still runs that program (then only
  SIGCONT it if stopped), start `argv` detached with `env` overrides, append to `log`,
  and record the new pid in `pid_file` (locked read-modify-write, `ground.jsonfile`), so
  `kugeldrill stack down` finds it, and clear its `held` mark (the crash supervisor may
  restart it again);
* `command` — run a target file's rendered command template (exit 0 = done).

Every action is idempotent: healing twice (watchdog, then `kugeldrill heal`) is harmless.
`LeaseEntries` carries a lease's entries out as one part of the heal path (`chaos.heal.heal`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kugeldrill.ground.jsonfile import read_json, set_key
from kugeldrill.ground.pids import pid_matches, pid_stopped, signal_group, state_within
from kugeldrill.ground.processes import spawn_detached

COMMAND_TIMEOUT = 60.0
START_SETTLE = 0.5  # seconds a spawned process must survive to count as started


@dataclass(frozen=True)
class EntryOutcome:
    target: str
    ok: bool
    message: str


def _pid_from_file(spec: Mapping[str, Any] | None) -> int | None:
    if not spec:
        return None
    node: Any = read_json(Path(spec["path"]))
    for key in spec.get("keys", []):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, int) else None


def _continue(pid: int) -> bool:
    """SIGCONT (to its process group when it leads one: a multi-worker service continues with its
    workers, as it was paused) and wait until the kernel reports it no longer stopped."""
    try:
        signal_group(pid, signal.SIGCONT)
    except ProcessLookupError:
        return False
    return state_within(pid, {"R", "S", "D", "I"}, timeout=2.0) or not pid_stopped(pid)


def _signal(entry: Mapping[str, Any]) -> EntryOutcome:
    target = str(entry.get("target", "?"))
    sig = getattr(signal, str(entry.get("signal", "SIGCONT")))
    match = list(entry.get("match") or [])
    acted, alive = [], []
    for pid in entry.get("pids") or []:
        if not pid_matches(pid, match):
            continue
        alive.append(pid)
        if sig == signal.SIGCONT:
            if pid_stopped(pid) and _continue(pid):
                acted.append(pid)
        else:
            os.kill(pid, sig)
            acted.append(pid)
    if not alive and entry.get("fallback"):
        return run_entry(entry["fallback"])
    if not alive:
        return EntryOutcome(target, False, f"none of pids {entry.get('pids')} runs any more; nothing to continue")
    still = [p for p in alive if pid_stopped(p)]
    if still:
        return EntryOutcome(target, False, f"pid(s) {still} still stopped after SIGCONT")
    return EntryOutcome(target, True, f"continued pid(s) {acted}" if acted else f"pid(s) {alive} were running")


def _spawn(entry: Mapping[str, Any]) -> EntryOutcome:
    target = str(entry.get("target", "?"))
    match = list(entry.get("match") or [])
    current = _pid_from_file(entry.get("pid_file"))
    if current and pid_matches(current, match):
        if pid_stopped(current):
            ok = _continue(current)
            return EntryOutcome(target, ok, f"pid {current} was stopped; " + ("continued" if ok else "SIGCONT failed"))
        return EntryOutcome(target, True, f"already running (pid {current})")
    argv = list(entry["argv"])
    try:
        proc = spawn_detached(argv, entry.get("log") or os.devnull, env=entry.get("env") or {}, cwd=entry.get("cwd"))
    except OSError as exc:
        return EntryOutcome(target, False, f"cannot start {argv[0]}: {exc}")
    time.sleep(START_SETTLE)
    if proc.poll() is not None:
        return EntryOutcome(target, False, f"started {argv[0]} but it exited at once with code {proc.returncode} "
                                           f"(see {entry.get('log')})")
    spec = entry.get("pid_file")
    if not spec:
        return EntryOutcome(target, True, f"started again (pid {proc.pid})")
    recorded = set_key(Path(spec["path"]), list(spec["keys"]), proc.pid)
    if recorded:  # no fault holds it down any more: the crash supervisor may restart it again
        set_key(Path(spec["path"]), [*list(spec["keys"])[:-1], "held"], False)
    note = "" if recorded else f"; could not record the pid in {spec['path']}"
    return EntryOutcome(target, True, f"started again (pid {proc.pid}){note}")


def _command(entry: Mapping[str, Any]) -> EntryOutcome:
    target = str(entry.get("target", "?"))
    argv = [str(a) for a in entry["argv"]]
    try:
        done = subprocess.run(argv, cwd=entry.get("cwd"), capture_output=True, text=True,
                              timeout=float(entry.get("timeout") or COMMAND_TIMEOUT))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return EntryOutcome(target, False, f"{' '.join(argv)}: {exc}")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-300:]
        return EntryOutcome(target, False, f"{' '.join(argv)} exited with {done.returncode}: {tail}")
    return EntryOutcome(target, True, f"ran {' '.join(argv)}")


_RUNNERS = {"signal": _signal, "spawn": _spawn, "command": _command}


def run_entry(entry: Mapping[str, Any]) -> EntryOutcome:
    """Carry out one lease entry; never raises (a heal path must go on with the others)."""
    runner = _RUNNERS.get(str(entry.get("do")))
    if runner is None:
        return EntryOutcome(str(entry.get("target", "?")), False, f"unknown heal action {entry.get('do')!r}")
    try:
        return runner(entry)
    except Exception as exc:  # noqa: BLE001
        return EntryOutcome(str(entry.get("target", "?")), False, f"{type(exc).__name__}: {exc}")


def heal_entries(entries: Mapping[str, Mapping[str, Any]] | list[Mapping[str, Any]]) -> list[EntryOutcome]:
    """Every entry of a lease's `processes` (fault id -> entry, or a list)."""
    items = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    return [run_entry(e) for e in items]


class LeaseEntries:
    """A lease's process entries as one part of the heal path (`chaos.heal.heal`): what a drill
    that died left killed or frozen, carried out without the stack."""

    name = "lease processes"

    def __init__(self, entries: Mapping[str, Mapping[str, Any]] | list[Mapping[str, Any]]) -> None:
        self.entries = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
        self.errors: list[str] = []
        self._left = [f"process {e.get('target', '?')}: not healed yet" for e in self.entries]

    def heal(self) -> list[str]:
        outcomes = heal_entries(self.entries)
        self._left = [f"process {o.target}: {o.message}" for o in outcomes if not o.ok]
        return [f"process {o.target}: {o.message}" for o in outcomes]

    def leftovers(self) -> list[str]:
        return list(self._left)

