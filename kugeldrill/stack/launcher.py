"""Start, inspect and stop the embedded stand-in (contracts §2, §8).

`Stack.up(StackOptions)` starts, on free loopback ports: redis-server, toxiproxy-server with
one proxy per link (`redis@`, `sidecar@`, `app@` for every sidecar app), the per-app Dapr
components, the seven services and one Dapr sidecar per app — real daprd where it is
installed, else kugeldrill's own (`StackOptions.sidecar`, `launch/sidecars.py`); waits until
every part answers its health probe; and records everything in `<state_dir>/stack.json`. The
file is rewritten after every part starts, so `Stack.from_state_file(...).down()` can clean
up even after the launcher itself died half-way. A part that fails to start is named in the
DrillError with its log tail, and everything already started is stopped.

`down()` stops only processes recorded in the state file, and only while their command
line still matches what was started (see `launch.procs`).

The work is done by one module per job in `launch/`: `options` (StackOptions), `plan`
(ports and links), `sidecars` (which sidecar and how to run it), `apps` (what runs per app),
`links` (Toxiproxy wiring), `start` (the start-up sequence), `health` (probes and the wait),
`status`, `stop`, `state` (stack.json), `procs` (pid checks), `supervisor` (crash restarts),
`recorded` (what the stand-in and the native runner share: state file, URLs, start wrapper, `down`).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.failures import StackStartError, port_taken
from kugeldrill.stack.launch.options import COMPONENT_DEFECTS, RecordedOptions, StackOptions
from kugeldrill.stack.launch.plan import APPS, SIDECAR_APPS
from kugeldrill.stack.launch.procs import pid_running
from kugeldrill.stack.launch.recorded import RecordedDeployment
from kugeldrill.stack.launch.sidecars import ACK_MODELS, SidecarChoice, choose_sidecar
from kugeldrill.stack.launch.start import start_parts
from kugeldrill.stack.launch.state import STATE_NAME, STATE_VERSION, StateFile
from kugeldrill.stack.launch.status import sidecar_summary, stack_status
from kugeldrill.stack.launch.stop import refuse_running


class Stack(RecordedDeployment):
    """A running (or re-attached) stand-in; `state` is the stack.json contents.

    State file, URLs, re-attaching, `parts`, `ports` and `down` come from `RecordedDeployment`."""

    # ------------------------------------------------------------------ accessors

    @property
    def sidecar_kind(self) -> str:
        """"daprd" or "standin": which Dapr sidecar runs beside the apps."""
        return str(sidecar_summary(self.state)["kind"])

    @property
    def options(self) -> RecordedOptions:
        return RecordedOptions.from_state(self.state)

    def service_url(self, app: str) -> str:
        return self.state["services"][app]["url"]

    def sidecar_url(self, app: str) -> str:
        return self.state["sidecars"][app]["url"]

    def sidecar_metrics_url(self, app: str) -> str:
        entry = self.state["sidecars"][app]
        return entry.get("metrics_url") or entry["url"] + "/metrics"

    def link(self, name: str) -> dict[str, Any]:
        return self.state["links"][name]

    def events_file(self, app: str) -> Path:
        return Path(self.state["services"][app]["events"])

    def restarts(self, app: str) -> list[dict[str, Any]]:
        return list(self.state["services"][app].get("restarts", []))

    # ------------------------------------------------------------------ start

    @classmethod
    def up(cls, opts: StackOptions) -> "Stack":
        """Start everything and wait for health; raise StackStartError naming the failed part.

        Ports are chosen free but not reserved, so another program (a parallel test run)
        can take one before our process binds it; that one case is retried once, on new ports.
        """
        opts.validate()
        choice = choose_sidecar(opts.sidecar, opts.ack_model, python=opts.python, standin_cmd=opts.sidecar_cmd)
        try:
            return cls._up_once(opts, choice)
        except StackStartError as exc:
            if not port_taken(exc):
                raise
        return cls._up_once(opts, choice)

    @classmethod
    def _up_once(cls, opts: StackOptions, choice: SidecarChoice) -> "Stack":
        state_dir = Path(opts.state_dir).resolve()
        path = state_dir / STATE_NAME
        refuse_running(path, "a stack", "kugeldrill stack down")
        for sub in ("logs", "events", "data", "components", "config"):
            shutil.rmtree(state_dir / sub, ignore_errors=True)
        _clear_outputs(*opts.output_dirs(state_dir))
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "state_dir": str(state_dir),
            "started_wall": time.time(),
            "status": "starting",
            "launcher_pid": os.getpid(),
            "sidecar": choice.summary(),
            "redis": {},
            "toxiproxy": {},
            "services": {},
            "sidecars": {},
            "links": {},
            "options": opts.summary(),
        }
        stack = cls(StateFile(path, state))
        stack._start_or_clean_up(lambda: start_parts(stack._file, stack._running, opts, choice, state_dir))
        return stack

    # ------------------------------------------------------------------ attach, status, stop

    def status(self, probe: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """URLs of everything, the sidecar kind, plus (with `probe`) whether each process runs and answers."""
        return stack_status(self.state, self.state_path, probe=probe, timeout=timeout)

    def drop_data(self) -> list[Path]:
        """Delete the services' databases (SQLite) of a stack that is down; returns what went.

        A drill reads the business state through the services' APIs while they run
        (business.json) and never opens the databases, which are most of a run folder's
        bytes (a soak's cart database grows by megabytes a minute). Refused while any part
        may still be writing: only after a `down()` that stopped everything."""
        result = self._down_result
        if result is None or result.get("problems") or result.get("ports_left"):
            raise DrillError("the stand-in's databases are dropped only after a clean 'down'")
        dropped = []
        for entry in (self.state.get("services") or {}).values():
            data_dir = entry.get("data_dir")
            if data_dir and Path(data_dir).is_dir():
                shutil.rmtree(data_dir)
                dropped.append(Path(data_dir))
        for parent in {p.parent for p in dropped}:  # `data/`, once empty
            if not any(parent.iterdir()):
                parent.rmdir()
        return dropped


def _clear_outputs(logs_dir: Path, events_dir: Path) -> None:
    """Remove a previous stack's logs and events from folders given in the options (which may
    hold other files, so only the stack's own names go): the services append to their events
    files, and a stale record would be judged as this stack's."""
    names = [logs_dir / f"{app}.log" for app in APPS] + [logs_dir / f"sidecar-{app}.log" for app in SIDECAR_APPS]
    names += [logs_dir / "supervisor.log"] + [events_dir / f"{app}.jsonl" for app in APPS]
    for path in names:
        path.unlink(missing_ok=True)


__all__ = ["ACK_MODELS", "COMPONENT_DEFECTS", "Stack", "StackOptions", "StackStartError", "pid_running"]
