"""The start-up sequence of the stand-in (contracts §2), one part after the other.

redis-server, toxiproxy-server and its proxies, then the seven services, then each app's
sidecar as soon as its service answers HTTP (a sidecar reads its app's `/dapr/subscribe`
once, at start), then the wait until everything is healthy. stack.json is rewritten after
every started part, so a launcher that dies half-way leaves a file `down` can clean up from.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.apps import child_env_overrides, render_sidecar_resources, service_entries, sidecar_entry
from kugeldrill.stack.launch.failures import STACK_START, StartFailure
from kugeldrill.stack.launch.health import (PROBE_TIMEOUT, Probe, check_started, log_scans, not_healthy, service_answers,
                                           wait_healthy)
from kugeldrill.stack.launch.links import create_links
from kugeldrill.stack.launch.options import StackOptions
from kugeldrill.stack.launch.plan import HOST, SUBSCRIBERS, PortPlan
from kugeldrill.stack.launch.running import Running
from kugeldrill.stack.launch.sidecars import SidecarChoice
from kugeldrill.stack.launch.state import StateFile
from kugeldrill.stack.launch.supervisor import Supervisor
from kugeldrill.stack.servers import ManagedProcess, RedisServer, ToxiproxyServer


def child_env() -> dict[str, str]:
    return dict(os.environ, **child_env_overrides())


def start_parts(file: StateFile, running: Running, opts: StackOptions, choice: SidecarChoice, state_dir: Path) -> None:
    """Start everything in order and wait for health; raises StackStartError naming the part."""
    env = child_env()
    plan = PortPlan.allocate(HOST)
    logs_dir, _ = opts.output_dirs(state_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    links = start_redis_and_toxiproxy(file, running, plan, state_dir, persistence=opts.redis_persistence)

    services = service_entries(opts, state_dir, plan, links)
    resources = render_sidecar_resources(opts, choice, state_dir, links)
    for app, entry in services.items():
        spawn(file, running, "services", app, entry, env)

    def sidecar(app: str) -> dict[str, Any]:
        return sidecar_entry(choice, app, plan.sidecar_ports(app), resources[app], state_dir, links, logs_dir)

    start_sidecars_behind_their_apps(file, running, list(resources), sidecar, env, opts.health_timeout)
    wait_healthy(file, running.handles, opts.health_timeout)
    if opts.crash_before_effect_every > 0:
        start_supervisor(file, running, opts, env, logs_dir)


def start_redis_and_toxiproxy(file: StateFile, running: Running, plan: PortPlan, state_dir: Path, *,
                              persistence: str = "none", failure: StartFailure = STACK_START) -> dict[str, dict[str, Any]]:
    """Start redis-server and toxiproxy-server on the plan's ports, record both, create every
    link's proxy and record the links; return the links (the native runner's first steps too)."""
    redis = RedisServer(workdir=state_dir / "redis", port=plan.redis, host=HOST, persist=persistence == "aof")
    (state_dir / "redis").mkdir(parents=True, exist_ok=True)
    running.servers["redis"] = redis
    start_server("redis-server", redis.start, failure)
    file.update(lambda s: s.update(redis={
        "url": redis.url, "host": HOST, "port": redis.port, "pid": redis.process.pid,
        "log": str(redis.process.log_path), "cmd": list(redis.process.argv), "match": ["redis-server", f":{redis.port}"],
        "persistence": persistence,
    }))

    toxi = ToxiproxyServer(workdir=state_dir / "toxiproxy", port=plan.toxiproxy, host=HOST)
    (state_dir / "toxiproxy").mkdir(parents=True, exist_ok=True)
    running.servers["toxiproxy"] = toxi
    start_server("toxiproxy-server", toxi.start, failure)
    file.update(lambda s: s.update(toxiproxy={
        "api": toxi.api, "host": HOST, "port": toxi.port, "pid": toxi.process.pid,
        "log": str(toxi.process.log_path), "cmd": list(toxi.process.argv), "match": ["toxiproxy-server", str(toxi.port)],
    }))

    links = create_links(toxi.api, plan, toxi.process.log_path, failure=failure)
    file.update(lambda s: s.update(links=links))
    return links


def start_server(part: str, start: Callable[[], Any], failure: StartFailure = STACK_START) -> None:
    """Run a server's `start`; its DrillError becomes the launcher's start error naming `part`."""
    try:
        start()
    except DrillError as exc:
        raise failure.at(part, exc.render()) from exc


def spawn(file: StateFile, running: Running, group: str, app: str, entry: dict[str, Any], env: dict[str, str], *,
          cwd: Path | None = None, failure: StartFailure = STACK_START) -> None:
    """Start one recorded process (its `env` additions on top of `env`, in `cwd`) and record its pid."""
    kind = "service" if group == "services" else "sidecar"
    proc = ManagedProcess(f"{kind} {app}", entry["cmd"], Path(entry["log"]), env={**env, **entry.get("env", {})}, cwd=cwd)
    try:
        proc.start()
    except OSError as exc:
        raise failure.at(f"{kind} {app}", f"cannot run {entry['cmd'][0]}: {exc}") from exc
    running.handles[f"{group}:{app}"] = proc
    entry["pid"] = proc.pid
    file.update(lambda s: s[group].__setitem__(app, entry))


def start_sidecars_behind_their_apps(file: StateFile, running: Running, apps: list[str],
                                     entry: Callable[[str], dict[str, Any]], env: dict[str, str], timeout: float, *,
                                     answers: Callable[[str], Probe] = service_answers,
                                     failure: StartFailure = STACK_START, scan_logs: bool = True,
                                     interval: float = 0.05, probe_timeout: float = PROBE_TIMEOUT) -> None:
    """Start each app's sidecar (`entry(app)`, built just then) once its service's HTTP server
    answers (`answers(url)`; see health.service_answers)."""
    waiting = {app: answers(file.state["services"][app]["url"]) for app in apps}
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    scan_due = log_scans(scan_logs)
    with httpx.Client(timeout=probe_timeout) as client:
        while waiting:
            scan_now = scan_due()
            for app in list(waiting):
                check_started(running.handles[f"services:{app}"], scan_now, failure)
                problem = waiting[app](client)
                if problem is None:
                    del waiting[app]
                    try:
                        record = entry(app)
                    except OSError as exc:
                        raise failure.at(f"sidecar {app}", str(exc)) from exc
                    spawn(file, running, "sidecars", app, record, env, failure=failure)
                else:
                    last[f"services:{app}"] = problem
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise not_healthy(running.handles, [f"services:{a}" for a in waiting], last, timeout, failure)
            time.sleep(interval)


def start_supervisor(file: StateFile, running: Running, opts: StackOptions, env: dict[str, str],
                     logs_dir: Path) -> None:
    apps = [a for a in SUBSCRIBERS if a in file.state["services"]]
    if opts.supervisor == "thread":
        handles = {app: running.handles[f"services:{app}"] for app in apps}
        running.supervisor = Supervisor(file, apps, handles=handles, env=env)
        running.supervisor.start()
        file.update(lambda s: s.update(supervisor={"mode": "thread", "pid": os.getpid(), "apps": apps}))
        return
    log = logs_dir / "supervisor.log"
    cmd = [opts.python, "-m", "kugeldrill.stack.launch.supervisor", "--state-file", str(file.path), "--apps", ",".join(apps)]
    proc = ManagedProcess("supervisor", cmd, log, env=env)
    proc.start()
    running.handles["supervisor"] = proc
    file.update(lambda s: s.update(supervisor={
        "mode": "process", "pid": proc.pid, "apps": apps, "log": str(log), "cmd": cmd,
        "match": ["kugeldrill.stack.launch.supervisor", str(file.path)],
    }))
