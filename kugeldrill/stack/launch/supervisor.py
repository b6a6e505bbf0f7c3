"""Restart crashed subscribers during crash drills (`crash_before_effect_every`).

A subscriber with the crash knob exits just before applying every Nth event, as a real
process killed mid-delivery would. Kugelpos runs under `restart: always`, so the embedded
stack restarts it too: this supervisor notices the exit within `interval` seconds, starts
it again from its recorded command (same port, same config, log appended) and records the
restart in the state file (`services.<app>.restarts`), which the checkers read.

A process fault on a supervised service (`kill app@journal`, restarted when the fault
ends) marks the entry `held` while it keeps the process down, and restarts it itself: the
supervisor leaves a held entry alone, and watches a pid someone else started by pid.

It runs as a thread of the launching process (Python API) or, for `kugeldrill stack up`
which returns while the stack keeps running, as a detached process:
`python -m kugeldrill.stack.launch.supervisor --state-file .kugeldrill/stack.json`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kugeldrill.stack.launch.process import Command, ManagedProcess
from kugeldrill.stack.launch.procs import pid_matches
from kugeldrill.stack.launch.state import StateFile, read_state

SUPERVISOR_MODULE = "kugeldrill.stack.launch.supervisor"


class Supervisor(threading.Thread):
    """Watches `apps` (service entries of the state) and restarts any that exited."""

    def __init__(
        self,
        state_file: StateFile,
        apps: list[str],
        *,
        handles: dict[str, ManagedProcess] | None = None,
        interval: float = 0.2,
        reload_state: bool = False,
    ) -> None:
        super().__init__(name="kugeldrill-supervisor", daemon=True)
        self.state_file = state_file
        self.apps = list(apps)
        self.handles: dict[str, ManagedProcess] = handles if handles is not None else {}
        self.interval = interval
        # A detached supervisor process re-reads stack.json each round: others restart parts too.
        self.reload_state = reload_state
        self._halt = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if self.reload_state:
                try:
                    self.state_file.reload()
                except Exception as exc:  # noqa: BLE001 - keep the last good view
                    print(f"supervisor: cannot re-read {self.state_file.path}: {exc}", file=sys.stderr, flush=True)
            for app in self.apps:
                if self._halt.is_set():
                    return
                try:
                    self._check(app)
                except Exception as exc:  # noqa: BLE001 - one bad restart must not end supervision
                    print(f"supervisor: restart of {app} failed: {exc}", file=sys.stderr, flush=True)

    def _check(self, app: str) -> None:
        entry: dict[str, Any] = self.state_file.state.get("services", {}).get(app) or {}
        old_seen = entry.get("pid")
        if entry.get("held"):
            return  # a process fault keeps it down on purpose and will start it itself
        handle = self.handles.get(app)
        if handle is not None and entry.get("pid") and handle.pid != entry.get("pid"):
            handle.alive()  # reap the old child
            del self.handles[app]  # restarted by someone else: watch the recorded pid instead
            handle = None
        if handle is not None:
            if handle.alive():
                return
            exit_code = handle.returncode
        else:
            if not entry.get("pid") or pid_matches(entry["pid"], entry.get("match", [])):
                return
            exit_code = None
        if self._halt.is_set():
            return
        # A process fault may have held it (or started it) since this round began: look again.
        fresh = self.state_file.reload() if self.reload_state else self.state_file.state
        entry = fresh.get("services", {}).get(app) or {}
        if entry.get("held") or (entry.get("pid") != old_seen and pid_matches(entry.get("pid"), entry.get("match", []))):
            return
        old_pid = entry.get("pid")
        proc = ManagedProcess.of(f"service {app}", Command.from_entry(entry)).start()
        self.handles[app] = proc
        record = {"wall": time.time(), "old_pid": old_pid, "new_pid": proc.pid, "exit_code": exit_code}

        def change(state: dict[str, Any]) -> None:
            svc = state["services"][app]
            svc["pid"] = proc.pid
            svc.setdefault("restarts", []).append(record)

        self.state_file.update(change)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {SUPERVISOR_MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", required=True, type=Path)
    parser.add_argument("--apps", default="report,journal,stock", help="comma list of service app ids to watch")
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    try:
        state = read_state(args.state_file)
    except Exception as exc:  # noqa: BLE001 - print one line, not a traceback
        print(f"supervisor: {exc}", file=sys.stderr)
        return 2
    sup = Supervisor(StateFile(args.state_file, state), [a for a in args.apps.split(",") if a], interval=args.interval,
                     reload_state=True)
    signal.signal(signal.SIGTERM, lambda *_: sup._halt.set())
    signal.signal(signal.SIGINT, lambda *_: sup._halt.set())
    sup.start()
    while sup.is_alive():
        sup.join(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
