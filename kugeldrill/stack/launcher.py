"""Start, inspect and stop the embedded stand-in (contracts §2, §8).

`Stack.up(StackOptions)` starts, on free loopback ports: redis-server, toxiproxy-server with
one proxy per link (`redis@`, `sidecar@`, `app@` for every sidecar app), the per-app Dapr
components, the five sidecars and the seven services; waits until every part answers its
health probe; and records everything in `<state_dir>/stack.json`. The file is rewritten
after every part starts, so `Stack.from_state_file(...).down()` can clean up even after the
launcher itself died half-way. A part that fails to start is named in the DrillError with
its log tail, and everything already started is stopped.

`down()` stops only processes recorded in the state file, and only while their command
line still matches what was started (see `stack.launch.procs`).
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.tools import PROJECT_ROOT
from kugeldrill.stack.launch.plan import (
    APPS,
    HOST,
    SIDECAR_APPS,
    SUBSCRIBERS,
    PortPlan,
    link_names,
    link_url,
    proxy_name,
    proxy_specs,
)
from kugeldrill.stack.launch.procs import pid_matches, pid_running, pid_stopped, port_listening, stop_pid
from kugeldrill.stack.launch.state import STATE_NAME, STATE_VERSION, StateFile, read_state
from kugeldrill.stack.launch.supervisor import Supervisor
from kugeldrill.stack.servers import ManagedProcess, RedisServer, ToxiproxyServer, log_tail
from kugeldrill.stack.services.common.settings import KNOWN_DEFECTS, BreakerConfig, ServiceConfig

COMPONENT_DEFECTS = frozenset({"shared_consumer_id", "database_index"})
ACK_MODELS = ("1.18", "1.16")
REDIS_PERSISTENCE = ("none", "aof")  # none: a restart loses everything; aof: appendonly, fsync every second
PROBE_TIMEOUT = 1.0  # seconds per health probe; the overall wait is StackOptions.health_timeout


@dataclass
class StackOptions:
    """Everything `kugeldrill stack up` can vary. Defaults mirror Kugelpos (breaker 3/60 s)."""

    state_dir: Path = Path(".kugeldrill")
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 60.0
    breaker_half_open_max_calls: int = 1
    republish_interval_seconds: float = 300.0
    republish_min_age_seconds: float | None = None  # None: same as the interval
    ack_model: str = "1.18"
    defects: list[str] = field(default_factory=list)
    crash_before_effect_every: int = 0
    fail_effect_every: int = 0
    resiliency: bool = True
    redis_persistence: str = "none"
    dapr_timeout_seconds: float = 5.0
    dapr_max_attempts: int = 3
    health_timeout: float = 60.0
    # "thread": supervise crashed subscribers from this process; "process": a detached
    # supervisor process (for the CLI, whose process exits after `up`).
    supervisor: Literal["thread", "process"] = "thread"
    # Commands and renderer, replaceable so the launcher itself can be tested in isolation.
    python: str = sys.executable
    sidecar_cmd: list[str] | None = None  # default [python, "-m", "kugeldrill.stack.sidecar"]
    service_cmd: list[str] | None = None  # default [python, "-m", "kugeldrill.stack.services"]
    render_components: Callable[..., Any] | None = None

    def validate(self) -> None:
        """Reject bad values with a message naming the option (before anything starts)."""
        unknown = sorted(set(self.defects) - KNOWN_DEFECTS)
        if unknown:
            raise ConfigError(f"unknown defect switch(es) {unknown}", hint=f"known: {', '.join(sorted(KNOWN_DEFECTS))}")
        if self.ack_model not in ACK_MODELS:
            raise ConfigError(f"ack model {self.ack_model!r} is not one of {', '.join(ACK_MODELS)}")
        if self.breaker_threshold < 1:
            raise ConfigError(f"breaker threshold must be >= 1, got {self.breaker_threshold}")
        if self.breaker_reset_seconds <= 0:
            raise ConfigError(f"breaker reset time must be > 0 s, got {self.breaker_reset_seconds}")
        if self.breaker_half_open_max_calls < 1:
            raise ConfigError(f"half-open trial calls must be >= 1, got {self.breaker_half_open_max_calls}")
        if self.republish_interval_seconds <= 0:
            raise ConfigError(f"republish interval must be > 0 s, got {self.republish_interval_seconds}")
        if self.crash_before_effect_every < 0:
            raise ConfigError(f"crash_before_effect_every must be >= 0, got {self.crash_before_effect_every}")
        if self.fail_effect_every < 0 or self.fail_effect_every == 1:
            raise ConfigError(f"fail_effect_every must be 0 (off) or >= 2, got {self.fail_effect_every}",
                              hint="with 1 every write fails, redeliveries too, and nothing is ever applied")
        if self.health_timeout <= 0:
            raise ConfigError(f"health timeout must be > 0 s, got {self.health_timeout}")
        if self.redis_persistence not in REDIS_PERSISTENCE:
            raise ConfigError(f"redis persistence {self.redis_persistence!r} is not one of {', '.join(REDIS_PERSISTENCE)}")

    def summary(self) -> dict[str, Any]:
        """The `options` block of stack.json."""
        return {
            "breaker": asdict(self._breaker()),
            "ack_model": self.ack_model,
            "defects": list(self.defects),
            "republish_interval_seconds": self.republish_interval_seconds,
            "republish_min_age_seconds": self._min_age(),
            "crash_before_effect_every": self.crash_before_effect_every,
            "fail_effect_every": self.fail_effect_every,
            "resiliency": self.resiliency,
            "redis_persistence": self.redis_persistence,
        }

    def _breaker(self) -> BreakerConfig:
        return BreakerConfig(self.breaker_threshold, self.breaker_reset_seconds, self.breaker_half_open_max_calls)

    def _min_age(self) -> float:
        return self.republish_interval_seconds if self.republish_min_age_seconds is None else self.republish_min_age_seconds


class StackStartError(DrillError):
    """A part of the stand-in failed to start; the message names it and shows its log tail."""


def _child_env_overrides() -> dict[str, str]:
    """What the launcher adds to its own environment for the services and sidecars; recorded
    per process in stack.json (`env`), so a restart from the file runs them the same way."""
    # Children must import this checkout even when started from another directory.
    root = str(PROJECT_ROOT)
    return {"PYTHONUNBUFFERED": "1",
            "PYTHONPATH": root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}


def _child_env() -> dict[str, str]:
    return dict(os.environ, **_child_env_overrides())


class Stack:
    """A running (or re-attached) stand-in; `state` is the stack.json contents."""

    def __init__(self, state_file: StateFile) -> None:
        self._file = state_file
        self._handles: dict[str, ManagedProcess] = {}
        self._servers: dict[str, RedisServer | ToxiproxyServer] = {}
        self._supervisor: Supervisor | None = None
        self._down_result: dict[str, Any] | None = None

    # ------------------------------------------------------------------ accessors

    @property
    def state(self) -> dict[str, Any]:
        return self._file.state

    @property
    def state_path(self) -> Path:
        return self._file.path

    @property
    def redis_url(self) -> str:
        return self.state["redis"]["url"]

    @property
    def toxiproxy_url(self) -> str:
        return self.state["toxiproxy"]["api"]

    def service_url(self, app: str) -> str:
        return self.state["services"][app]["url"]

    def service_urls(self) -> dict[str, str]:
        return {app: entry["url"] for app, entry in self.state.get("services", {}).items()}

    def sidecar_url(self, app: str) -> str:
        return self.state["sidecars"][app]["url"]

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
        try:
            return cls._up_once(opts)
        except StackStartError as exc:
            if "address already in use" not in str(exc).lower():
                raise
        return cls._up_once(opts)

    @classmethod
    def _up_once(cls, opts: StackOptions) -> "Stack":
        state_dir = Path(opts.state_dir).resolve()
        path = state_dir / STATE_NAME
        _refuse_running(path)
        for sub in ("logs", "events", "data", "components", "config"):
            shutil.rmtree(state_dir / sub, ignore_errors=True)
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "state_dir": str(state_dir),
            "started_wall": time.time(),
            "status": "starting",
            "launcher_pid": os.getpid(),
            "redis": {},
            "toxiproxy": {},
            "services": {},
            "sidecars": {},
            "links": {},
            "options": opts.summary(),
        }
        stack = cls(StateFile(path, state))
        stack._file.write()
        t0 = time.monotonic()
        try:
            stack._start(opts, state_dir)
        except BaseException as exc:
            # A port that failed to bind may belong to someone else: do not wait for it to close.
            stack.down(wait_ports=False)
            if isinstance(exc, DrillError):
                raise
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise StackStartError(f"stack start failed: {type(exc).__name__}: {exc}") from exc
        stack._file.update(lambda s: s.update(status="running", startup_seconds=round(time.monotonic() - t0, 3)))
        return stack

    def _start(self, opts: StackOptions, state_dir: Path) -> None:
        env = _child_env()
        plan = PortPlan.allocate(HOST)
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)

        redis = RedisServer(workdir=state_dir / "redis", port=plan.redis, host=HOST,
                            persist=opts.redis_persistence == "aof")
        (state_dir / "redis").mkdir(parents=True, exist_ok=True)
        self._servers["redis"] = redis
        self._start_server("redis-server", redis)
        self._file.update(lambda s: s.update(redis={
            "url": redis.url, "host": HOST, "port": redis.port, "pid": redis.process.pid,
            "log": str(redis.process.log_path), "match": ["redis-server", f":{redis.port}"],
            "cmd": list(redis.process.argv), "persistence": opts.redis_persistence,
        }))

        toxi = ToxiproxyServer(workdir=state_dir / "toxiproxy", port=plan.toxiproxy, host=HOST)
        (state_dir / "toxiproxy").mkdir(parents=True, exist_ok=True)
        self._servers["toxiproxy"] = toxi
        self._start_server("toxiproxy-server", toxi)
        self._file.update(lambda s: s.update(toxiproxy={
            "api": toxi.api, "host": HOST, "port": toxi.port, "pid": toxi.process.pid,
            "log": str(toxi.process.log_path), "match": ["toxiproxy-server", str(toxi.port)],
        }))

        links = self._create_links(toxi.api, plan)
        self._file.update(lambda s: s.update(links=links))

        services = self._service_entries(opts, state_dir, plan, links)
        sidecars = self._sidecar_entries(opts, state_dir, plan, links)
        # Services first: a sidecar asks its app for /dapr/subscribe as soon as it starts.
        for app, entry in services.items():
            self._spawn("services", app, entry, env)
        for app, entry in sidecars.items():
            self._spawn("sidecars", app, entry, env)
        self._wait_healthy(opts.health_timeout)
        if opts.crash_before_effect_every > 0:
            self._start_supervisor(opts, env)

    def _start_server(self, part: str, server: RedisServer | ToxiproxyServer) -> None:
        try:
            server.start()
        except DrillError as exc:
            raise StackStartError(f"stack start failed at {part}: {exc.render()}") from exc

    def _create_links(self, api: str, plan: PortPlan) -> dict[str, dict[str, Any]]:
        """One Toxiproxy proxy per link, through the API's /populate (the stand-in's own wiring;
        faults on these links are chaos' business, not the stack's)."""
        try:
            resp = httpx.post(f"{api}/populate", json=proxy_specs(plan, HOST), timeout=5.0)
            resp.raise_for_status()
            created = {p["name"]: p for p in resp.json().get("proxies", [])}
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise StackStartError(
                f"stack start failed at toxiproxy proxies: POST {api}/populate: {type(exc).__name__}: {exc}\n"
                f"toxiproxy log:\n{log_tail(Path(self.state['toxiproxy']['log']))}"
            ) from exc
        links: dict[str, dict[str, Any]] = {}
        for link in link_names():
            proxy = created.get(proxy_name(link))
            if proxy is None:
                raise StackStartError(f"stack start failed at toxiproxy proxies: /populate did not return {proxy_name(link)}")
            listen = proxy["listen"]
            if int(listen.rsplit(":", 1)[1]) in plan.all_ports():
                # The kernel gave a proxy a port we chose but have not bound yet: start over.
                raise StackStartError(f"stack start failed at toxiproxy proxies: {proxy['name']} got port {listen}, "
                                      "planned for another part (address already in use)")
            links[link] = {"proxy": proxy["name"], "listen": listen, "upstream": proxy["upstream"],
                           "url": link_url(link, listen)}
        return links

    def _service_entries(
        self, opts: StackOptions, state_dir: Path, plan: PortPlan, links: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        base = opts.service_cmd or [opts.python, "-m", "kugeldrill.stack.services"]
        service_urls = {app: f"http://{HOST}:{port}" for app, port in plan.services.items()}
        entries: dict[str, dict[str, Any]] = {}
        for app in APPS:
            log = state_dir / "logs" / f"{app}.log"
            events = state_dir / "events" / f"{app}.jsonl"
            data_dir = state_dir / "data" / app
            data_dir.mkdir(parents=True, exist_ok=True)
            events.parent.mkdir(parents=True, exist_ok=True)
            config = ServiceConfig(
                name=app,
                port=plan.services[app],
                data_dir=str(data_dir),
                host=HOST,
                log_file=str(log),
                events_file=str(events),
                dapr_url=f"http://{links[f'sidecar@{app}']['listen']}/v1.0" if app in SIDECAR_APPS else None,
                service_urls=dict(service_urls),
                breaker=opts._breaker(),
                dapr_timeout_seconds=opts.dapr_timeout_seconds,
                dapr_max_attempts=opts.dapr_max_attempts,
                republish_interval_seconds=opts.republish_interval_seconds,
                republish_min_age_seconds=opts._min_age(),
                defects=list(opts.defects),
                crash_before_effect_every=opts.crash_before_effect_every if app in SUBSCRIBERS else 0,
                fail_effect_every=opts.fail_effect_every if app in SUBSCRIBERS else 0,
            )
            config_path = state_dir / "config" / f"{app}.json"
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(config.to_json())
            entries[app] = {
                "url": service_urls[app], "port": plan.services[app], "pid": None, "log": str(log),
                "events": str(events), "config": str(config_path), "data_dir": str(data_dir),
                "cmd": [*base, "--config", str(config_path)], "match": [str(config_path)],
                "env": _child_env_overrides(),
            }
        return entries

    def _sidecar_entries(
        self, opts: StackOptions, state_dir: Path, plan: PortPlan, links: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        base = opts.sidecar_cmd or [opts.python, "-m", "kugeldrill.stack.sidecar"]
        render = opts.render_components or _default_renderer()
        entries: dict[str, dict[str, Any]] = {}
        for app in SIDECAR_APPS:
            resources = state_dir / "components" / app
            resources.mkdir(parents=True, exist_ok=True)
            redis_host = links[f"redis@{app}"]["listen"]
            try:
                _call_renderer(render, resources, redis_host=redis_host, app_id=app, ack_model=opts.ack_model,
                               defects=[d for d in opts.defects if d in COMPONENT_DEFECTS], resiliency=opts.resiliency)
            except DrillError as exc:
                raise StackStartError(f"stack start failed at components for {app}: {exc.render()}") from exc
            except Exception as exc:  # noqa: BLE001 - a renderer bug must still name the part
                raise StackStartError(f"stack start failed at components for {app}: {type(exc).__name__}: {exc}") from exc
            port = plan.sidecars[app]
            log = state_dir / "logs" / f"sidecar-{app}.log"
            app_port = links[f"app@{app}"]["listen"].rsplit(":", 1)[1]
            cmd = [*base, "--app-id", app, "--dapr-http-port", str(port), "--app-port", app_port,
                   "--app-host", HOST, "--resources-path", str(resources), "--log-file", str(log),
                   "--ack-model", opts.ack_model]
            entries[app] = {
                "url": f"http://{HOST}:{port}", "port": port, "pid": None, "log": str(log),
                "resources": str(resources), "cmd": cmd, "match": ["--dapr-http-port", str(port), "--app-id", app],
                "env": _child_env_overrides(),
            }
        return entries

    def _spawn(self, group: str, app: str, entry: dict[str, Any], env: dict[str, str]) -> None:
        kind = "service" if group == "services" else "sidecar"
        proc = ManagedProcess(f"{kind} {app}", entry["cmd"], Path(entry["log"]), env=env)
        try:
            proc.start()
        except OSError as exc:
            raise StackStartError(f"stack start failed at {kind} {app}: cannot run {entry['cmd'][0]}: {exc}") from exc
        self._handles[f"{group}:{app}"] = proc
        entry["pid"] = proc.pid
        self._file.update(lambda s: s[group].__setitem__(app, entry))

    def _wait_healthy(self, timeout: float) -> None:
        """Poll every part until healthy; a part that exits, cannot bind, or stays unhealthy fails the start."""
        pending: dict[str, Callable[[httpx.Client], str | None]] = {}
        # Sidecars first: a service's health includes its sidecar, so a sidecar problem is the cause.
        for app, entry in self.state["sidecars"].items():
            pending[f"sidecars:{app}"] = _sidecar_probe(entry["url"], app in SUBSCRIBERS)
        for app, entry in self.state["services"].items():
            pending[f"services:{app}"] = _service_probe(entry["url"])
        last: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        next_log_scan = 0.0
        with httpx.Client(timeout=PROBE_TIMEOUT) as client:
            while pending:
                scan_logs = time.monotonic() >= next_log_scan
                if scan_logs:
                    next_log_scan = time.monotonic() + 0.5
                for key in list(pending):
                    handle = self._handles[key]
                    if not handle.alive():
                        code = handle.proc.returncode if handle.proc else None
                        raise StackStartError(
                            f"stack start failed at {handle.name}: the process exited with code {code} "
                            f"before it was healthy; last log lines ({handle.log_path}):\n{log_tail(handle.log_path)}"
                        )
                    if scan_logs and _log_mentions(handle.log_path, "address already in use"):
                        # Some servers keep running after their listener failed; do not wait for them.
                        raise StackStartError(
                            f"stack start failed at {handle.name}: its port was taken (address already in use); "
                            f"last log lines ({handle.log_path}):\n{log_tail(handle.log_path)}"
                        )
                    problem = pending[key](client)
                    if problem is None:
                        del pending[key]
                        group, app = key.split(":", 1)
                        self._file.update(lambda s, g=group, a=app: s[g][a].__setitem__(
                            "healthy_after", round(time.time() - s["started_wall"], 3)))
                    else:
                        last[key] = problem
                if not pending:
                    break
                if time.monotonic() > deadline:
                    keys = list(pending)
                    details = "\n".join(
                        f"--- {self._handles[k].name}: {last.get(k, 'no answer')}; last log lines "
                        f"({self._handles[k].log_path}):\n{log_tail(self._handles[k].log_path, 8)}"
                        for k in keys[:3]
                    )
                    more = f" (and {len(keys) - 3} more)" if len(keys) > 3 else ""
                    raise StackStartError(
                        f"stack start failed at {self._handles[keys[0]].name}: not healthy within {timeout:.0f}s; "
                        f"not healthy: {', '.join(self._handles[k].name for k in keys)}{more}\n{details}"
                    )
                time.sleep(0.1)

    def _start_supervisor(self, opts: StackOptions, env: dict[str, str]) -> None:
        apps = [a for a in SUBSCRIBERS if a in self.state["services"]]
        if opts.supervisor == "thread":
            handles = {app: self._handles[f"services:{app}"] for app in apps}
            self._supervisor = Supervisor(self._file, apps, handles=handles, env=env)
            self._supervisor.start()
            self._file.update(lambda s: s.update(supervisor={"mode": "thread", "pid": os.getpid(), "apps": apps}))
            return
        log = Path(self.state["state_dir"]) / "logs" / "supervisor.log"
        cmd = [opts.python, "-m", "kugeldrill.stack.launch.supervisor", "--state-file", str(self.state_path), "--apps", ",".join(apps)]
        proc = ManagedProcess("supervisor", cmd, log, env=env)
        proc.start()
        self._handles["supervisor"] = proc
        self._file.update(lambda s: s.update(supervisor={
            "mode": "process", "pid": proc.pid, "apps": apps, "log": str(log), "cmd": cmd,
            "match": ["kugeldrill.stack.launch.supervisor", str(self.state_path)],
        }))

    # ------------------------------------------------------------------ attach, status, stop

    @classmethod
    def from_state_file(cls, path: Path | str) -> "Stack":
        """Re-attach to a stack started elsewhere (the CLI's `down`, `status`, `logs`)."""
        path = Path(path)
        if path.is_dir():
            path = path / STATE_NAME
        return cls(StateFile(path, read_state(path)))

    def parts(self) -> list[tuple[str, dict[str, Any]]]:
        """Every recorded process as (part name, state entry), in stop order."""
        out: list[tuple[str, dict[str, Any]]] = []
        if self.state.get("supervisor", {}).get("mode") == "process":
            out.append(("supervisor", self.state["supervisor"]))
        out += [(f"service {a}", e) for a, e in self.state.get("services", {}).items()]
        out += [(f"sidecar {a}", e) for a, e in self.state.get("sidecars", {}).items()]
        for name in ("toxiproxy", "redis"):
            if self.state.get(name):
                out.append((name, self.state[name]))
        return out

    def ports(self) -> list[int]:
        """Every loopback port the stack listens on (processes and proxies)."""
        ports = [e["port"] for _, e in self.parts() if e.get("port")]
        ports += [int(link["listen"].rsplit(":", 1)[1]) for link in self.state.get("links", {}).values()]
        return ports

    def status(self, probe: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """URLs of everything, plus (with `probe`) whether each process runs and answers.

        One probe per part with `timeout` seconds: a busy machine must not read as unhealthy.
        """
        client = httpx.Client(timeout=timeout) if probe else None
        try:
            def proc(entry: dict[str, Any], probe_fn: Callable[[httpx.Client], str | None] | None) -> dict[str, Any]:
                out = {"url": entry.get("url") or entry.get("api"), "pid": entry.get("pid"), "log": entry.get("log"),
                       "running": pid_matches(entry.get("pid"), entry.get("match", []))}
                out["stopped"] = bool(out["running"]) and pid_stopped(entry.get("pid"))
                if client is not None and probe_fn is not None and out["running"] and not out["stopped"]:
                    problem = probe_fn(client)
                    out["healthy"] = problem is None
                    if problem:
                        out["problem"] = problem
                return out

            services = {a: {**proc(e, _service_probe(e["url"])), "events": e.get("events"),
                            "restarts": len(e.get("restarts", []))}
                        for a, e in self.state.get("services", {}).items()}
            sidecars = {a: proc(e, _sidecar_probe(e["url"], False)) for a, e in self.state.get("sidecars", {}).items()}
            redis = self.state.get("redis") or {}
            toxi = self.state.get("toxiproxy") or {}
            return {
                "state_file": str(self.state_path),
                "status": self.state.get("status"),
                "redis_url": redis.get("url"),
                "toxiproxy_url": toxi.get("api"),
                "redis": proc(redis, _redis_probe(redis.get("port", 0))) if redis else None,
                "toxiproxy": proc(toxi, _toxiproxy_probe(toxi.get("api", ""))) if toxi else None,
                "services": services,
                "sidecars": sidecars,
                "links": {name: dict(link) for name, link in self.state.get("links", {}).items()},
                "options": self.state.get("options"),
            }
        finally:
            if client is not None:
                client.close()

    def down(self, timeout: float = 8.0, *, wait_ports: bool = True) -> dict[str, Any]:
        """Stop exactly the recorded processes; return what happened to each and ports still open.

        With `wait_ports` it also waits (up to 5 s) until no recorded port listens any more.
        A second call returns the first call's result: the ports may belong to others by then.
        """
        if self._down_result is not None:
            return self._down_result
        if self._supervisor is not None:
            self._supervisor.stop()
            # The thread may have restarted a service; its handle is the current one.
            for app, handle in self._supervisor.handles.items():
                self._handles[f"services:{app}"] = handle
        outcomes: dict[str, str] = {}
        lock = threading.Lock()

        def stop(part: str, entry: dict[str, Any]) -> None:
            outcome = self._stop_part(part, entry, timeout)
            with lock:
                outcomes[part] = outcome

        groups = [
            [p for p in self.parts() if p[0] == "supervisor"],
            [p for p in self.parts() if p[0].startswith(("service ", "sidecar "))],
            [p for p in self.parts() if p[0] == "toxiproxy"],
            [p for p in self.parts() if p[0] == "redis"],
        ]
        for i, group in enumerate(groups):  # in order; in parallel within a group (each may wait seconds)
            if i == 1 and groups[0] and self._supervisor is None:
                # The detached supervisor may have restarted a service since we read the file.
                try:
                    self._file.state = read_state(self._file.path)
                except DrillError:
                    pass
                group = [p for p in self.parts() if p[0].startswith(("service ", "sidecar "))]
            threads = [threading.Thread(target=stop, args=part, daemon=True) for part in group]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout * 2 + 5)
        # Children that did not get a pid recorded (crash between spawn and write) are still handles.
        for key, handle in self._handles.items():
            if handle.alive():
                handle.stop()
                outcomes.setdefault(handle.name, "stopped")
        ports_left = _ports_still_open(self.ports(), deadline=time.monotonic() + 5.0) if wait_ports else []
        leftover = {p: o for p, o in outcomes.items() if o in ("not ours", "unkillable")}
        if not ports_left and not [o for o in outcomes.values() if o == "unkillable"]:
            self._file.remove()
        self._down_result = {"stopped": outcomes, "ports_left": ports_left, "problems": leftover}
        return self._down_result

    def _stop_part(self, part: str, entry: dict[str, Any], timeout: float) -> str:
        pid = entry.get("pid")
        key = {"supervisor": "supervisor"}.get(part) or part.replace("service ", "services:").replace("sidecar ", "sidecars:")
        handle = self._handles.get(key)
        server = self._servers.get(part)
        if server is not None and server.process is not None and server.process.pid == pid:
            handle = server.process
        if handle is not None and handle.pid == pid:
            if not handle.alive():
                return "gone"
            handle.stop(timeout)
            return "stopped"
        return stop_pid(pid, entry.get("match", []), timeout)


# ---------------------------------------------------------------------- helpers


def _refuse_running(path: Path) -> None:
    """A second `up` on the same state dir would orphan the first stack: refuse it."""
    if not path.exists():
        return
    try:
        old = Stack.from_state_file(path)
    except DrillError:
        return  # unreadable leftovers: overwritten
    alive = [part for part, entry in old.parts() if pid_matches(entry.get("pid"), entry.get("match", []))]
    if alive:
        raise DrillError(
            f"a stack is already running from {path} ({', '.join(alive)})",
            hint="stop it with 'kugeldrill stack down' (same --state-dir) or use another --state-dir",
        )


def _default_renderer() -> Callable[..., Any]:
    try:
        from kugeldrill.stack.components import render_components
    except ImportError as exc:
        raise StackStartError(f"stack start failed at components: stack.components.render_components is missing ({exc})") from exc
    return render_components


def _call_renderer(render: Callable[..., Any], dest: Path, **kwargs: Any) -> Any:
    """Pass only the keyword arguments the renderer declares (it may grow or shrink)."""
    params = inspect.signature(render).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return render(dest, **kwargs)


def _service_probe(url: str) -> Callable[[httpx.Client], str | None]:
    health = require_loopback(url, what="service URL") + "/health"

    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(health)
        except httpx.HTTPError as exc:
            return f"GET {health}: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"GET {health} answered {resp.status_code}"
        try:
            body = resp.json()
        except ValueError:
            return f"GET {health} answered a non-JSON body"
        if body.get("status") != "healthy":
            return f"GET {health}: status {body.get('status')!r} {body.get('checks', '')}"
        return None

    return probe


def _sidecar_probe(url: str, expect_subscriptions: bool) -> Callable[[httpx.Client], str | None]:
    base = require_loopback(url, what="sidecar URL")

    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(base + "/v1.0/healthz")
        except httpx.HTTPError as exc:
            return f"GET {base}/v1.0/healthz: {type(exc).__name__}"
        if resp.status_code not in (200, 204):
            return f"GET {base}/v1.0/healthz answered {resp.status_code}"
        if expect_subscriptions:
            # A subscriber is ready only once its sidecar has read /dapr/subscribe.
            try:
                meta = client.get(base + "/v1.0/metadata")
            except httpx.HTTPError as exc:
                return f"GET {base}/v1.0/metadata: {type(exc).__name__}"
            if meta.status_code == 200:
                try:
                    subs = meta.json().get("subscriptions")
                except (ValueError, AttributeError):
                    subs = None
                if subs is not None and len(subs) == 0:
                    return "sidecar has no subscriptions yet"
        return None

    return probe


def _redis_probe(port: int) -> Callable[[httpx.Client], str | None]:
    def probe(_client: httpx.Client) -> str | None:
        import socket

        try:
            with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock:
                sock.settimeout(PROBE_TIMEOUT)
                sock.sendall(b"PING\r\n")
                answer = sock.recv(64)
        except OSError as exc:
            return f"redis PING on {HOST}:{port}: {exc}"
        return None if answer.startswith(b"+PONG") else f"redis answered {answer!r} to PING"

    return probe


def _toxiproxy_probe(api: str) -> Callable[[httpx.Client], str | None]:
    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(require_loopback(api, what="Toxiproxy API") + "/version")
        except httpx.HTTPError as exc:
            return f"GET {api}/version: {type(exc).__name__}"
        return None if resp.status_code == 200 else f"GET {api}/version answered {resp.status_code}"

    return probe


def _log_mentions(path: Path, text: str, tail_bytes: int = 16384) -> bool:
    """True if the last `tail_bytes` of the log contain `text` (case-insensitive)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            return text.lower() in fh.read().decode(errors="replace").lower()
    except OSError:
        return False


def _ports_still_open(ports: list[int], deadline: float) -> list[int]:
    remaining = list(ports)
    while remaining:
        remaining = [p for p in remaining if port_listening(HOST, p)]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return remaining


__all__ = ["Stack", "StackOptions", "StackStartError", "pid_running"]
