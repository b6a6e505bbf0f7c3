"""The one process launcher: what the embedded stack and the native Kugelpos runner share.

A deployment says *what* runs (its wiring: which processes, their command lines, the
variables and links each gets); the `Launcher` does the rest the same way for both:

* **start** — `start_server` (Redis, Toxiproxy, MongoDB: anything with `start()`,
  `process` and `record()`), `spawn` (a service or sidecar from its state-file entry),
  `start_behind_apps` (each sidecar once its app answers HTTP: a sidecar reads its app's
  subscriptions once, at start);
* **record** — every started process is written to the state file at once (`cmd`, `env`,
  `cwd`, `log`, `match`, `pid`), so `down` can stop it after the launcher died and anyone
  can start it again exactly as it ran (process faults, the watchdog, `kugeldrill heal`);
* **health wait** — `wait_healthy` polls every sidecar and service until healthy, failing
  at once, with the part's log tail, on an exit, a taken port or a state that cannot heal;
* **supervision** — `supervise` restarts crashed services (`restart: always`), as a thread
  or a detached process;
* **stop** — `down` stops exactly the recorded processes in dependency order and waits
  until no recorded port listens.

`run(start)` wraps a deployment's start sequence: it writes the state file first, and on
any failure stops everything already started and raises the launcher's start error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.failures import STACK_START, StartFailure
from kugeldrill.stack.launch.health import (PROBE_TIMEOUT, Probe, check_started, log_scans, not_healthy,
                                           service_answers, service_probe, wait_healthy)
from kugeldrill.stack.launch.links import create_links
from kugeldrill.stack.launch.plan import HOST, PortPlan
from kugeldrill.stack.launch.process import Command, ManagedProcess
from kugeldrill.stack.launch.servers import RedisServer, ToxiproxyServer
from kugeldrill.stack.launch.state import StateFile
from kugeldrill.stack.launch.stop import SERVERS, stop_parts
from kugeldrill.stack.launch.supervisor import SUPERVISOR_MODULE, Supervisor


class Server(Protocol):
    """A server the launcher starts and records (Redis, Toxiproxy, the native runner's MongoDB)."""

    @property
    def process(self) -> ManagedProcess | None: ...
    def start(self) -> object: ...
    def record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LaunchSettings:
    """How one deployment's launcher words, paces and stops its start.

    The embedded stack polls fast and scans logs for a taken port (its parts are quick to
    start and some keep running after a failed bind); the native runner's real services
    are slow, so it polls slower with a longer probe timeout."""

    failure: StartFailure = STACK_START
    servers: tuple[str, ...] = SERVERS  # behind the apps, in stop order
    scan_logs: bool = True
    interval: float = 0.1  # seconds between polls while waiting
    probe_timeout: float = PROBE_TIMEOUT


@dataclass
class Running:
    """What this launcher started itself, by state key (`services:cart`, `sidecars:cart`,
    `redis`, `toxiproxy`, `mongo`, `supervisor`). A re-attached deployment has none of these:
    it only knows pids from the state file, which `stop` checks before it signals."""

    handles: dict[str, ManagedProcess] = field(default_factory=dict)
    supervisor: Supervisor | None = None


class Launcher:
    """Starts, records, supervises and stops the processes of one deployment."""

    def __init__(self, file: StateFile, settings: LaunchSettings = LaunchSettings(),
                 say: Callable[[str], None] | None = None) -> None:
        self.file = file
        self.settings = settings
        self.running = Running()
        self.say = say
        self._down_result: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.file.state

    @property
    def failure(self) -> StartFailure:
        return self.settings.failure

    # ------------------------------------------------------------------ start

    def run(self, start: Callable[[], None]) -> None:
        """Write the state file, run `start`; on any failure stop what was started and raise a
        DrillError (an unexpected exception becomes the launcher's start error). Records the
        status and how long the start took."""
        self.file.write()
        t0 = time.monotonic()
        try:
            start()
        except BaseException as exc:
            # A port that failed to bind may belong to someone else: do not wait for it to close.
            self.down(wait_ports=False)
            if isinstance(exc, (DrillError, KeyboardInterrupt)):
                raise
            raise self.failure.error(f"{self.failure.what} start failed: {type(exc).__name__}: {exc}") from exc
        self.file.update(lambda s: s.update(status="running", startup_seconds=round(time.monotonic() - t0, 3)))

    def start_server(self, key: str, part: str, server: Server) -> None:
        """Start a server; record its entry under `key`. Its DrillError becomes the start error naming `part`."""
        try:
            server.start()
        except DrillError as exc:
            if server.process is not None:
                self.running.handles[key] = server.process  # stopped by the clean-up
            raise self.failure.at(part, exc.render()) from exc
        assert server.process is not None, f"{part}: start() left no process"
        self.running.handles[key] = server.process
        record = server.record()
        self.file.update(lambda s: s.update({key: record}))

    def start_redis_and_toxiproxy(self, plan: PortPlan, state_dir: Path, *,
                                  persistence: str = "none") -> dict[str, dict[str, Any]]:
        """redis-server and toxiproxy-server on the plan's ports, then every link's proxy;
        records all three and returns the links (both deployments' first steps)."""
        (state_dir / "redis").mkdir(parents=True, exist_ok=True)
        self.start_server("redis", "redis-server",
                          RedisServer(workdir=state_dir / "redis", port=plan.redis, host=HOST, persist=persistence == "aof"))
        (state_dir / "toxiproxy").mkdir(parents=True, exist_ok=True)
        toxi = ToxiproxyServer(workdir=state_dir / "toxiproxy", port=plan.toxiproxy, host=HOST)
        self.start_server("toxiproxy", "toxiproxy-server", toxi)
        assert toxi.process is not None
        links = create_links(toxi.api, plan, toxi.process.log_path, failure=self.failure)
        self.file.update(lambda s: s.update(links=links))
        return links

    def spawn(self, group: str, app: str, entry: dict[str, Any]) -> ManagedProcess:
        """Start one process of `group` ("services" or "sidecars") from its entry (`cmd`, `env`,
        `cwd`, `log`) and record the entry with its pid."""
        name = f"{'service' if group == 'services' else 'sidecar'} {app}"
        proc = ManagedProcess.of(name, Command.from_entry(entry))
        try:
            proc.start()
        except OSError as exc:
            raise self.failure.at(name, f"cannot run {entry['cmd'][0]}: {exc}") from exc
        self.running.handles[f"{group}:{app}"] = proc
        entry["pid"] = proc.pid
        self.file.update(lambda s: s[group].__setitem__(app, entry))
        return proc

    def start_behind_apps(self, apps: list[str], entry: Callable[[str], dict[str, Any]], timeout: float, *,
                          answers: Callable[[str], Probe] = service_answers) -> None:
        """Start each app's sidecar (`entry(app)`, built just then) once its service answers
        HTTP (`answers(url)`): a sidecar reads its app's `/dapr/subscribe` once, at start."""
        waiting = {app: answers(self.state["services"][app]["url"]) for app in apps}
        last: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        scan_due = log_scans(self.settings.scan_logs)
        handles = self.running.handles
        with httpx.Client(timeout=self.settings.probe_timeout) as client:
            while waiting:
                scan_now = scan_due()
                for app in list(waiting):
                    check_started(handles[f"services:{app}"], scan_now, self.failure)
                    problem = waiting[app](client)
                    if problem is None:
                        del waiting[app]
                        try:
                            record = entry(app)
                        except OSError as exc:
                            raise self.failure.at(f"sidecar {app}", str(exc)) from exc
                        self.spawn("sidecars", app, record)
                    else:
                        last[f"services:{app}"] = problem
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    raise not_healthy(handles, [f"services:{a}" for a in waiting], last, timeout, self.failure)
                time.sleep(self.settings.interval)

    def wait_healthy(self, timeout: float, *, service_probe_for: Callable[[str], Probe] = service_probe) -> None:
        """Until every sidecar and service is healthy (see health.wait_healthy)."""
        s = self.settings
        wait_healthy(self.file, self.running.handles, timeout, service_probe_for=service_probe_for, failure=s.failure,
                     scan_logs=s.scan_logs, interval=s.interval, probe_timeout=s.probe_timeout, say=self.say)

    # ------------------------------------------------------------------ supervision

    def supervise(self, apps: list[str], *, detached: bool, python: str, log: Path,
                  env: dict[str, str] | None = None) -> None:
        """Restart any of `apps` (services) that exits, as `restart: always` would: a thread of
        this process, or (`detached`) a process that outlives it (after `kugeldrill stack up`)."""
        if not detached:
            handles = {app: self.running.handles[f"services:{app}"] for app in apps}
            self.running.supervisor = Supervisor(self.file, apps, handles=handles)
            self.running.supervisor.start()
            self.file.update(lambda s: s.update(supervisor={"mode": "thread", "pid": os.getpid(), "apps": apps}))
            return
        cmd = [python, "-m", SUPERVISOR_MODULE, "--state-file", str(self.file.path), "--apps", ",".join(apps)]
        proc = ManagedProcess("supervisor", cmd, log, env=env).start()
        self.running.handles["supervisor"] = proc
        self.file.update(lambda s: s.update(supervisor={
            "mode": "process", "pid": proc.pid, "apps": apps, "log": str(log), "cmd": cmd, "env": dict(env or {}),
            "match": [SUPERVISOR_MODULE, str(self.file.path)],
        }))

    # ------------------------------------------------------------------ stop

    def down(self, timeout: float = 8.0, *, wait_ports: bool = True) -> dict[str, Any]:
        """Stop exactly the recorded processes; `{"stopped": {part: outcome}, "ports_left": [...],
        "problems": {...}}`. With `wait_ports` it also waits (up to 5 s) until no recorded port
        listens. A second call returns the first call's result: the ports may be others' by then."""
        if self._down_result is None:
            self._down_result = stop_parts(self.file, self.running.handles, self.running.supervisor, timeout,
                                           wait_ports, self.settings.servers)
        return self._down_result

    @property
    def down_result(self) -> dict[str, Any] | None:
        return self._down_result


__all__ = ["LaunchSettings", "Launcher", "Running", "Server"]
