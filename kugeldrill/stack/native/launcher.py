"""Start, inspect and stop the real Kugelpos services from a checkout, natively.

`NativeKugelpos.up(NativeOptions(src=...))` builds (or finds cached) the services' Python
environments and the MongoDB server, then starts on free loopback ports: redis-server,
toxiproxy-server with the embedded stack's links (`redis@`, `sidecar@`, `app@` for each Dapr
app), the MongoDB server, one daprd per Dapr app (components: the checkout's own YAMLs with
`redisHost` on that app's `redis@` link) and the seven services (`uvicorn app.main:app`
from the checkout, one worker each as Kugelpos' dev Compose stack runs them, or the worker
counts of its production Compose file with `workers="prod"`: workers.py). It waits
until every sidecar is ready and every service's `/health` says `healthy` (which covers
MongoDB, the app's sidecar through its `sidecar@` link, the state store and pub/sub), and
records everything in `<state_dir>/kugelpos.json`, rewritten after every started part so
that `down` can clean up after a launcher that died half-way.

How each service reaches what it needs (Kugelpos' dev override, on loopback):
* its sidecar: `DAPR_HTTP_PORT` = its `sidecar@<app>` link (made effective by the hook in
  `shim/`, see envs.py), cart's cartstore `BASE_URL_DAPR` = the same link;
* other services: `BASE_URL_<SERVICE>` direct (as the override; not Dapr service invocation);
* MongoDB: `MONGODB_URI` with `replicaSet=rs0&directConnection=true`, `DB_NAME_PREFIX` per service;
* logs: its logging.conf writes `app.log`/`request.log` into its working directory
  `<state_dir>/run/<app>/`; stdout and stderr go to `<state_dir>/logs/<app>.log`;
* TLS trust: the system's CA directory, read lazily (`SSL_CERT_DIR`, trust.py): Kugelpos
  builds an HTTP client, and with it an SSL context, for every request.

This module is the native runner's wiring (which processes, which variables and links each
gets); starting, recording, the health wait, process faults and stopping are the launcher
the embedded stack uses too (`stack.launch`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.ports import free_port
from kugeldrill.stack.components.checkout import render_checkout_components
from kugeldrill.stack.embedded.wiring import sidecar_entry
from kugeldrill.stack.launch.deployment import RecordedDeployment
from kugeldrill.stack.launch.failures import StartFailure
from kugeldrill.stack.launch.health import Probe
from kugeldrill.stack.launch.launcher import LaunchSettings
from kugeldrill.stack.launch.plan import APPS, HOST, SIDECAR_APPS, PortPlan
from kugeldrill.stack.launch.process import without_variables
from kugeldrill.stack.launch.daprd import Daprd, find_daprd
from kugeldrill.stack.launch.state import StateFile
from kugeldrill.stack.launch.status import recorded_status
from kugeldrill.stack.launch.stop import SERVERS, refuse_running
from kugeldrill.stack.native.checkout import KugelposCheckout, open_checkout
from kugeldrill.stack.native.envs import EnvBuilder, ServiceEnv, cache_root, find_python
from kugeldrill.stack.native.locales import LOCALE, ensure_locale
from kugeldrill.stack.native.mongo_server import MongoServer, ensure_built, transaction_stats
from kugeldrill.stack.native.trust import lazy_trust_env, scrubbed_for_trust
from kugeldrill.stack.native.workers import WorkerPlan, plan_workers, validate_spec

STATE_NAME = "kugelpos.json"
DEFAULT_STATE_DIR = Path(".kugeldrill") / "kugelpos"
PROBE_TIMEOUT = 5.0
BASE_URL_ENV = {"master-data": "BASE_URL_MASTER_DATA", "terminal": "BASE_URL_TERMINAL", "cart": "BASE_URL_CART",
                "report": "BASE_URL_REPORT", "journal": "BASE_URL_JOURNAL", "stock": "BASE_URL_STOCK"}
# Variables of the launching environment that must not reach the services' own interpreters.
_SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class NativeStartError(DrillError):
    """A part of the native Kugelpos failed to start; the message names it and quotes its log."""


NATIVE_START = StartFailure(NativeStartError, "native Kugelpos", tail_lines=25)
#: The real services are slow to start and to answer: a slower poll, a longer probe timeout,
#: no log scan for a taken port (uvicorn exits when it cannot bind). MongoDB stops after the
#: apps, before Toxiproxy and Redis.
NATIVE_SETTINGS = LaunchSettings(NATIVE_START, servers=("mongo", *SERVERS), scan_logs=False, interval=0.2,
                                 probe_timeout=PROBE_TIMEOUT)


@dataclass
class NativeOptions:
    """What `kugeldrill kugelpos up` can vary."""

    src: Path
    state_dir: Path = DEFAULT_STATE_DIR
    health_timeout: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)  # passed to every service (e.g. Kugelpos settings)
    # uvicorn worker processes per service: "dev" (1 each), "prod" (the checkout's production
    # Compose file) or "APP=N,..." (workers.py).
    workers: str = "dev"
    progress: Callable[[str], None] | None = None
    cache: Path | None = None

    def validate(self) -> None:
        if self.health_timeout <= 0:
            raise ConfigError(f"health timeout must be > 0 s, got {self.health_timeout}")
        for key in self.extra_env:
            if not key or not key.replace("_", "").isalnum():
                raise ConfigError(f"environment variable name {key!r} is not NAME=value")
        validate_spec(self.workers)


@dataclass
class Prepared:
    """What is built before anything starts: checkout, environments, MongoDB server."""

    checkout: KugelposCheckout
    envs: dict[str, ServiceEnv]
    python_version: str
    mongo: Any  # mongo_server.MongoBuild
    locpath: Path  # LOCPATH holding ja_JP.UTF-8
    seconds: float


def prepare(opts: NativeOptions) -> Prepared:
    """Validate the checkout; build or find the environments and the MongoDB server."""
    say = opts.progress or (lambda _m: None)
    t0 = time.monotonic()
    checkout = open_checkout(opts.src)
    locks = {app: checkout.lock(app) for app in APPS}
    wanted = {lock.python_version for lock in locks.values()} - {None}
    if len(wanted) > 1:
        raise ConfigError(f"the services' Pipfile.locks require different Pythons: {sorted(wanted)}")
    python, version = find_python(next(iter(wanted), None))
    builder = EnvBuilder(python, version, cache=opts.cache, progress=say)
    wheel = builder.common_wheel(checkout.commons_dir)
    envs = {app: builder.ensure(app, locks[app], wheel) for app in APPS}
    mongo = ensure_built(say)
    locpath = ensure_locale(builder.root)
    return Prepared(checkout, envs, version, mongo, locpath, time.monotonic() - t0)


class NativeKugelpos(RecordedDeployment):
    """A running (or re-attached) native Kugelpos; `state` is the kugelpos.json contents.

    State file, URLs, re-attaching, `parts`, `ports`, `processes` and `down` come from
    `RecordedDeployment`."""

    STATE_NAME = STATE_NAME
    SETTINGS = NATIVE_SETTINGS

    # ------------------------------------------------------------------ accessors

    @property
    def mongo_url(self) -> str:
        return self.state["mongo"]["url"]

    def record_target(self, path: Path) -> None:
        """Note in the state file where the target file for this deployment was written."""
        self.launcher.file.update(lambda s: s.update(target=str(path)))

    def app_logs(self) -> dict[str, str]:
        """app id -> Kugelpos' own log file (`app.log` in the service's working directory)."""
        return {app: entry["app_log"] for app, entry in self.state.get("services", {}).items()}

    # ------------------------------------------------------------------ start

    @classmethod
    def up(cls, opts: NativeOptions, prepared: Prepared | None = None) -> "NativeKugelpos":
        """Prepare (build/cache), start everything, wait for health; NativeStartError names a failed part."""
        opts.validate()
        daprd = find_daprd("1.18")  # before building anything: a missing daprd is an error naming `make setup`
        prepared = prepared or prepare(opts)
        workers = plan_workers(opts.workers, prepared.checkout)
        state_dir = Path(opts.state_dir).resolve()
        path = state_dir / STATE_NAME
        refuse_running(path, "a native Kugelpos", "kugeldrill kugelpos down", cls.SETTINGS.servers)
        for sub in ("logs", "components", "run", "redis", "toxiproxy", "mongo"):
            shutil.rmtree(state_dir / sub, ignore_errors=True)
        state: dict[str, Any] = {
            "version": 1, "kind": "kugelpos-native", "state_dir": str(state_dir), "started_wall": time.time(),
            "status": "starting", "launcher_pid": os.getpid(),
            "checkout": {"path": str(prepared.checkout.root), "commit": prepared.checkout.commit},
            "python": prepared.python_version, "sidecar": daprd.summary(),
            "envs": {app: {"path": str(env.path), "key": env.key} for app, env in prepared.envs.items()},
            "prepare_seconds": round(prepared.seconds, 2),
            "workers": {"source": workers.source, "counts": workers.counts},
            "redis": {}, "toxiproxy": {}, "mongo": {}, "services": {}, "sidecars": {}, "links": {},
        }
        native = cls(StateFile(path, state))
        say = opts.progress or (lambda _m: None)
        native.launcher.say = say
        native.launcher.run(lambda: native._start(opts, prepared, daprd, workers, state_dir, say))
        return native

    def _start(self, opts: NativeOptions, prepared: Prepared, daprd: Daprd, workers: WorkerPlan,
               state_dir: Path, say: Callable[[str], None]) -> None:
        launcher = self.launcher
        plan = PortPlan.allocate(HOST)
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        say("starting redis-server and toxiproxy-server ...")
        links = launcher.start_redis_and_toxiproxy(plan, state_dir)

        say("starting the MongoDB server ...")
        mongo = MongoServer(prepared.mongo, state_dir / "mongo" / "mongo.log", port=free_port(HOST))
        launcher.start_server("mongo", "mongodb server", mongo)

        service_urls = {app: f"http://{HOST}:{port}" for app, port in plan.services.items()}
        several = ", ".join(f"{app} {n}" for app, n in workers.several.items())
        say(f"starting {len(APPS)} services and {len(SIDECAR_APPS)} sidecars ({daprd.describe()}) ..."
            + (f"; uvicorn workers: {several} ({workers.source})" if several else ""))
        for app in APPS:
            launcher.spawn("services", app, _service_entry(app, opts, prepared, state_dir, plan, links, service_urls,
                                                           mongo.url, workers.of(app)))
        resources: dict[str, Path] = {}
        for app in SIDECAR_APPS:
            resources[app] = state_dir / "components" / app
            try:
                render_checkout_components(prepared.checkout.components_dir, resources[app],
                                           redis_host=links[f"redis@{app}"]["listen"], app_id=app)
            except DrillError as exc:
                raise NATIVE_START.at(f"components for {app}", exc.render()) from exc

        def sidecar(app: str) -> dict[str, Any]:
            return sidecar_entry(daprd, app, plan.sidecar_ports(app), resources[app], state_dir, links)

        # A sidecar reads its app's /dapr/subscribe once, at start (daprd gives up after about
        # 2.5 s): each starts only once its service answers HTTP (`/`: its `/health` would
        # publish through the sidecar that is not started yet).
        launcher.start_behind_apps(list(SIDECAR_APPS), sidecar, opts.health_timeout, answers=_root_answers)
        # `/health` of cart and terminal publishes a test message to their topics (Kugelpos' own
        # check), so it is asked only once the service answers at all, and at most every second
        # (see _service_probe): a start leaves a handful of those messages, as a Compose healthcheck does.
        launcher.wait_healthy(opts.health_timeout, service_probe_for=_service_probe)

    # ------------------------------------------------------------------ attach, status, stop

    def status(self, probe: bool = True) -> dict[str, Any]:
        """URLs, pids and (with `probe`) health of every part; MongoDB's transaction counters.

        Probing a service asks its `/health`, which for cart and terminal publishes a test
        message (Kugelpos' own check); `probe=False` only checks that the processes run.
        """
        out = recorded_status(self.state, self.state_path, service_probe_for=_service_probe, probe=probe,
                              timeout=PROBE_TIMEOUT)
        for app, entry in self.state.get("services", {}).items():
            out["services"][app]["app_log"] = entry.get("app_log")
        mongo = self.state.get("mongo") or {}
        mongo_status = out.get("mongo")
        if mongo_status and mongo_status["running"] and probe:
            mongo_status["transactions"] = transaction_stats(mongo["url"])
        return {**out, "checkout": self.state.get("checkout"), "mongodb_url": mongo.get("url"),
                "mongo": mongo_status, "target": self.state.get("target")}


# ---------------------------------------------------------------------- helpers

def _service_entry(app: str, opts: NativeOptions, prepared: Prepared, state_dir: Path, plan: PortPlan,
                   links: dict[str, dict[str, Any]], service_urls: dict[str, str], mongo_url: str,
                   workers: int = 1) -> dict[str, Any]:
    """A Kugelpos service's state entry: `uvicorn app.main:app` from its environment, in its
    working directory, with its variables (the launcher starts it from this record); with
    several `workers`, `uvicorn --workers N` as Kugelpos' Dockerfile.prod runs it."""
    cwd = _working_dir(state_dir / "run" / app, prepared.checkout.service_dir(app))
    env = _service_env(app, prepared.checkout, mongo_url, service_urls, links, opts.extra_env,
                       pycache=(opts.cache or cache_root()) / "kugelpos" / "pycache", locpath=prepared.locpath)
    port = plan.services[app]
    python = prepared.envs[app].python
    cmd = [str(python), "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(port), "--app-dir", str(cwd)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
        # Its workers die with their supervisor, as in its container (shim/kugeldrill_service_group.py).
        env["KUGELDRILL_DIE_WITH_SUPERVISOR"] = "1"
    return {"url": service_urls[app], "port": port, "pid": None, "workers": workers,
            "log": str(state_dir / "logs" / f"{app}.log"),
            "app_log": str(cwd / "app.log"), "request_log": str(cwd / "request.log"), "cwd": str(cwd),
            "env_dir": str(prepared.envs[app].path), "cmd": without_variables(cmd, _scrubbed(env)), "env": env,
            "match": ["uvicorn", "app.main:app", "--port", str(port)]}


def _scrubbed(env: dict[str, str]) -> list[str]:
    """Variables of the launching environment that must not reach a service: the launcher's own
    Python settings (the services run their own interpreters) and Kugelpos settings of the same
    family (`BASE_URL_*`) that the wiring does not set, and a CA bundle the lazily read CA
    directory replaces (trust.py)."""
    return sorted(k for k in os.environ if k in _SCRUBBED_ENV or (k.startswith("BASE_URL_") and k not in env)
                  or k in scrubbed_for_trust(env))


def _service_env(app: str, checkout: KugelposCheckout, mongo_url: str, service_urls: dict[str, str],
                 links: dict[str, dict[str, Any]], extra: dict[str, str], pycache: Path,
                 locpath: Path) -> dict[str, str]:
    """The variables a Kugelpos service gets on top of the launcher's environment: its settings
    as the dev override sets them, on loopback; locale and time zone as its Dockerfile and
    container have them (ja_JP.UTF-8, UTC); the system's CA directory read lazily (trust.py)."""
    env = dict(PYTHONUNBUFFERED="1", TZ="UTC", PYTHONPYCACHEPREFIX=str(pycache),
               LOCPATH=str(locpath), LANG=LOCALE, LC_ALL=LOCALE, LANGUAGE=LOCALE,
               MONGODB_URI=mongo_url, DB_NAME_PREFIX=checkout.db_prefix(app), USE_GRPC="false", DEBUG="false",
               TOKEN_URL=f"{service_urls['account']}/api/v1/accounts/token")
    for other, var in BASE_URL_ENV.items():
        env[var] = f"{service_urls[other]}/api/v1"
    if app in SIDECAR_APPS:
        listen = links[f"sidecar@{app}"]["listen"]
        env["DAPR_HTTP_PORT"] = listen.rsplit(":", 1)[1]
        env["BASE_URL_DAPR"] = f"http://{listen}/v1.0"
    env.update(lazy_trust_env())
    env.update(extra)
    return env


def _working_dir(run_dir: Path, service_dir: Path) -> Path:
    """The service's working directory, laid out like its container's WORKDIR (/app).

    Kugelpos' Dockerfiles copy the service folder to /app and run there: code opens files
    relative to it (`app/services/strategies/plugins.json`) and logging.conf writes
    `app.log`/`request.log` into it. The checkout may be read-only, so the working
    directory is a folder of the state dir whose entries are symlinks to the service
    folder's entries; the logs are written beside them.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for entry in sorted(service_dir.iterdir()):
        if entry.name in ("app.log", "request.log", ".env", "__pycache__"):
            continue
        link = run_dir / entry.name
        if link.is_symlink() or link.exists():
            continue
        link.symlink_to(entry, target_is_directory=entry.is_dir())
    return run_dir


def _service_probe(url: str) -> Probe:
    """Kugelpos' `/health` (healthy once MongoDB, the sidecar, state store and pub/sub answer),
    asked only once `/` answers and, after an unhealthy answer, not again for a second: cart's
    and terminal's `/health` publishes a test message each time."""
    base = require_loopback(url, what="service URL")
    seen: dict[str, Any] = {"root": False, "next_health": 0.0, "last": None}

    def ask(client: httpx.Client) -> str | None:
        if not seen["root"]:
            try:
                resp = client.get(base + "/")
            except httpx.HTTPError as exc:
                return f"GET {base}/: {type(exc).__name__}"
            if resp.status_code != 200:
                return f"GET {base}/ answered {resp.status_code}"
            seen["root"] = True
        try:
            resp = client.get(base + "/health")
        except httpx.HTTPError as exc:
            return f"health: GET {base}/health: {type(exc).__name__}"
        try:
            body = resp.json()
        except ValueError:
            return f"health: GET {base}/health answered {resp.status_code} with a non-JSON body"
        if resp.status_code != 200 or body.get("status") != "healthy":
            bad = {k: v.get("error") for k, v in (body.get("checks") or {}).items()
                   if isinstance(v, dict) and v.get("status") != "healthy"}
            return f"health: {body.get('status')!r} {bad}"
        return None

    def probe(client: httpx.Client) -> str | None:
        if time.monotonic() < seen["next_health"]:
            return seen["last"]
        problem = ask(client)
        if problem is not None and problem.startswith("health:"):
            seen["next_health"], seen["last"] = time.monotonic() + 1.0, problem
        return problem

    return probe


def _root_answers(url: str) -> Probe:
    """The service's HTTP server is up: any answer to `/` (its `/health` would publish through
    a sidecar that is not started yet)."""
    base = require_loopback(url, what="service URL")

    def probe(client: httpx.Client) -> str | None:
        try:
            client.get(base + "/")
        except httpx.HTTPError as exc:
            return f"GET {base}/: {type(exc).__name__}"
        return None

    return probe


__all__ = ["NativeKugelpos", "NativeOptions", "NativeStartError", "Prepared", "prepare", "DEFAULT_STATE_DIR", "STATE_NAME"]
