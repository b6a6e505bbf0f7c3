"""Start, inspect and stop the embedded stack (contracts §2, §8): what `kugeldrill stack up` runs.

`Stack.up(StackOptions)` starts, on free loopback ports: redis-server, toxiproxy-server with
one proxy per link (`redis@`, `sidecar@`, `app@` for every sidecar app), the per-app Dapr
components, the seven stand-in services and one real daprd per Dapr app (`launch/daprd.py`;
a missing daprd is an error naming `make setup`, before anything starts); waits until every
part answers its health probe; and records everything in `<state_dir>/stack.json`. A part that fails to start is named in the DrillError with its log
tail, and everything already started is stopped.

The process machinery (start, record, health wait, supervision, process faults, stop) is the
launcher both deployments share (`stack.launch`); this package is the embedded stack's
wiring: `options` (StackOptions), `wiring` (what runs per app, through which link), `start`
(the start-up sequence) and this module (the public entry points).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.embedded.options import COMPONENT_DEFECTS, RecordedOptions, StackOptions
from kugeldrill.stack.embedded.start import start_parts
from kugeldrill.stack.launch.deployment import RecordedDeployment
from kugeldrill.stack.launch.failures import StackStartError, port_taken
from kugeldrill.stack.launch.health import service_probe
from kugeldrill.stack.launch.plan import APPS, SIDECAR_APPS
from kugeldrill.stack.launch.daprd import ACK_MODELS, Daprd
from kugeldrill.stack.launch.state import STATE_NAME, STATE_VERSION, StateFile
from kugeldrill.stack.launch.status import recorded_status
from kugeldrill.stack.launch.stop import refuse_running


class Stack(RecordedDeployment):
    """A running (or re-attached) embedded stack; `state` is the stack.json contents.

    State file, URLs, re-attaching, `parts`, `ports`, `processes` and `down` come from
    `RecordedDeployment`."""

    # ------------------------------------------------------------------ accessors

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
        daprd = opts.daprd()
        try:
            return cls._up_once(opts, daprd)
        except StackStartError as exc:
            if not port_taken(exc):
                raise
        return cls._up_once(opts, daprd)

    @classmethod
    def _up_once(cls, opts: StackOptions, daprd: Daprd) -> "Stack":
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
            "sidecar": daprd.summary(),
            "redis": {},
            "toxiproxy": {},
            "services": {},
            "sidecars": {},
            "links": {},
            "options": opts.summary(),
        }
        stack = cls(StateFile(path, state))
        stack.launcher.run(lambda: start_parts(stack.launcher, opts, daprd, state_dir))
        return stack

    # ------------------------------------------------------------------ attach, status, stop

    def status(self, probe: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """URLs of everything, which daprd runs, plus (with `probe`) whether each process runs and
        answers; per service its events file and restart count; the options."""
        out = recorded_status(self.state, self.state_path, service_probe_for=service_probe, probe=probe, timeout=timeout)
        for app, entry in self.state.get("services", {}).items():
            out["services"][app].update(events=entry.get("events"), restarts=len(entry.get("restarts", [])))
        out["options"] = self.state.get("options")
        return out

    def drop_data(self) -> list[Path]:
        """Delete the services' databases (SQLite) of a stack that is down; returns what went.

        A drill reads the business state through the services' APIs while they run
        (business.json) and never opens the databases, which are most of a run folder's
        bytes (a soak's cart database grows by megabytes a minute). Refused while any part
        may still be writing: only after a `down()` that stopped everything."""
        result = self.launcher.down_result
        if result is None or result.get("problems") or result.get("ports_left"):
            raise DrillError("the stand-in services' databases are dropped only after a clean 'down'")
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


__all__ = ["ACK_MODELS", "COMPONENT_DEFECTS", "Stack", "StackOptions", "StackStartError"]
