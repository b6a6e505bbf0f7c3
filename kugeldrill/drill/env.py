"""What a drill runs against: the embedded stand-in it starts, or a target it was given.

The orchestration (`kugeldrill.drill`) only talks to a `DrillEnvironment`: service URLs,
the Toxiproxy API, the link map, how to read the observations checkers need, the breaker
the target really has, its share of the heal path, and teardown. The embedded stack and a
real deployment described by a target file (targets/*.yaml) plug in behind this one interface.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import httpx

from kugeldrill.chaos.heal import Healable, LinkSweep
from kugeldrill.chaos.links import Link, LinkMap, proxy_name
from kugeldrill.chaos.processes import ProcessControl, ProcessSweep
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.checkers.adapters.kugelpos import ObservationSources, load_kugelpos_inputs
from kugeldrill.checkers.adapters.standin import load_standin_inputs
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.params import BreakerParams
from kugeldrill.checkers.pending import RepublishPolicy
from kugeldrill.ground.errors import DrillError, TargetUnreachableError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.provision import ProvisionOptions, load_provision
from kugeldrill.scenario_schema import Scenario
from kugeldrill.stack.components import render_components
from kugeldrill.stack.embedded import Stack, StackOptions
from kugeldrill.target import TargetFile, dump_target, load_target
from kugeldrill.target_logs import gather_logs

PROBE_TIMEOUT = 3.0
PUBLISHERS = ("cart", "terminal")
SETTLED = {"delivered"}


def make_outbox_probe(urls: dict[str, str]) -> Callable[[], Hashable | None]:
    """Snapshot of the publishers' outbox counts, or None while any event is not delivered.

    None means "not quiet": an undelivered event waits for the republish job, and judging
    fan-out before it runs would call in-flight deliveries missing.
    """
    client = httpx.Client(timeout=PROBE_TIMEOUT)

    def probe() -> Hashable | None:
        snap = []
        for app, url in sorted(urls.items()):
            try:
                resp = client.get(url.rstrip("/") + "/api/v1/diagnostics/outbox", params={"limit": 1})
                counts = resp.json().get("counts", {})
            except (httpx.HTTPError, ValueError, AttributeError):
                return None
            if any(status not in SETTLED and n for status, n in counts.items()):
                return None
            snap.append((app, tuple(sorted(counts.items()))))
        return tuple(snap)

    return probe


class DrillEnvironment(Protocol):
    """The contract between the drill and whatever it drills."""

    kind: str  # "embedded" | "target"
    description: str
    allow_hosts: tuple[str, ...]
    redis_url: str | None
    notes: list[str]  # what the report must say about it, said once as the drill starts

    def service_urls(self) -> dict[str, str]: ...
    def provision_options(self, opts: ProvisionOptions) -> ProvisionOptions: ...  # its credentials, tenant
    def toxiproxy_api(self) -> str | None: ...
    def link_map(self) -> LinkMap: ...
    def ensure_links(self, links: LinkMap) -> None: ...  # create the proxies where the drill must
    def check_inputs(self, run_dir: Path) -> CheckInputs: ...
    def breaker_params(self) -> BreakerParams: ...  # the breaker the system really has
    def republish_policy(self) -> RepublishPolicy: ...  # when a failed publish is healed
    def events_files(self) -> dict[str, Path]: ...  # live per-service event files (may be empty)
    def outbox_probe(self) -> Callable[[], Hashable | None] | None: ...  # for quiescence (None: no outbox)
    def save_into(self, run_dir: Path) -> None: ...  # stack.json / target.yaml (logs and events are written in place)
    def process_control(self) -> ProcessControl | None: ...  # None: no process faults possible
    def heal_parts(self, process_targets: list[str]) -> list[Healable]: ...  # its share of the one heal path
    def teardown(self) -> None: ...


def _component_renderer(processing_timeout: float | None, redeliver_ms: int | None) -> Callable[..., Any]:
    """The stand-in's component renderer with the scenario's pub/sub redelivery timings."""

    def render(dest: Path, **kwargs: Any) -> Any:
        if processing_timeout is not None:
            kwargs["processing_timeout"] = processing_timeout
        if redeliver_ms is not None:
            kwargs["redeliver_interval_ms"] = redeliver_ms
        return render_components(dest, **kwargs)

    return render


class EmbeddedEnvironment:
    """The stand-in started for this run, with its state dir inside the run folder."""

    kind = "embedded"
    allow_hosts: tuple[str, ...] = ()

    def __init__(self, stack: Stack, options: StackOptions) -> None:
        self.stack = stack
        self.options = options
        sidecar = stack.state.get("sidecar") or {}
        self.description = f"embedded stack (sidecars: daprd {sidecar.get('version') or ''}".rstrip() + ")"
        self.notes: list[str] = []
        self.redis_url: str | None = stack.redis_url
        self._torn_down = False
        self._processes: ProcessControl | None = None

    @classmethod
    def start(cls, scenario: Scenario, run_dir: Path) -> "EmbeddedEnvironment":
        """Stack.up with the scenario's stack options; raises DrillError naming the failed part."""
        opts = scenario.stack
        folder = RunFolder(run_dir)
        options = StackOptions(
            state_dir=folder.stack_dir,
            logs_into=folder.logs_dir,  # written where the run folder keeps them: never copied
            events_into=folder.events_dir,
            breaker_threshold=opts.breaker.threshold,
            breaker_reset_seconds=opts.breaker.reset_seconds,
            breaker_half_open_max_calls=opts.breaker.half_open_max_calls,
            republish_interval_seconds=opts.republish_interval_seconds,
            republish_min_age_seconds=opts.republish_min_age_seconds,
            ack_model=opts.ack_model,
            defects=list(opts.defects),
            crash_before_effect_every=opts.crash_before_effect_every,
            fail_effect_every=opts.fail_effect_every,
            resiliency=opts.resiliency,
            dapr_max_attempts=opts.dapr_max_attempts,
            redis_persistence=opts.redis_persistence,
        )
        if opts.processing_timeout_seconds is not None or opts.redeliver_interval_ms is not None:
            options.render_components = _component_renderer(opts.processing_timeout_seconds, opts.redeliver_interval_ms)
        return cls(Stack.up(options), options)

    def service_urls(self) -> dict[str, str]:
        return self.stack.service_urls()

    def provision_options(self, opts: ProvisionOptions) -> ProvisionOptions:
        return opts  # the stand-in's defaults (admin / admin, a fresh tenant)

    def toxiproxy_api(self) -> str | None:
        return self.stack.toxiproxy_url

    def link_map(self) -> LinkMap:
        return LinkMap.from_state(self.stack.state.get("links", {}))

    def ensure_links(self, links: LinkMap) -> None:
        """Nothing to do: the stand-in created its proxies when it started."""

    def events_files(self) -> dict[str, Path]:
        return {app: Path(e["events"]) for app, e in self.stack.state.get("services", {}).items() if e.get("events")}

    def outbox_probe(self) -> Callable[[], Hashable | None] | None:
        urls = {app: url for app, url in self.service_urls().items() if app in PUBLISHERS}
        return make_outbox_probe(urls) if urls else None

    def check_inputs(self, run_dir: Path) -> CheckInputs:
        return load_standin_inputs(run_dir, self.stack.state)

    def breaker_params(self) -> BreakerParams:
        """The seed's breaker as the stand-in was configured (defect switches are what the
        checker must catch, so they do not change what it judges against)."""
        o = self.options
        return BreakerParams(threshold=o.breaker_threshold, reset_seconds=o.breaker_reset_seconds,
                             half_open_max_calls=o.breaker_half_open_max_calls)

    def republish_policy(self) -> RepublishPolicy:
        o = self.options
        min_age = o.republish_interval_seconds if o.republish_min_age_seconds is None else o.republish_min_age_seconds
        return RepublishPolicy(interval_seconds=o.republish_interval_seconds, min_age_seconds=min_age,
                               max_call_seconds=o.dapr_timeout_seconds * o.dapr_max_attempts)

    def save_into(self, run_dir: Path) -> None:
        """stack.json at the run folder's top level (contracts §7): the stack's own copy goes
        with `down`. Its logs and events are already in the run folder (see `start`)."""
        (run_dir / "stack.json").write_text(json.dumps(self.stack.state, indent=2, default=str), encoding="utf-8")

    def process_control(self) -> ProcessControl:
        """The stand-in's own processes (kill, pause, restart them from stack.json)."""
        if self._processes is None:
            self._processes = self.stack.processes()
        return self._processes

    def heal_parts(self, process_targets: list[str]) -> list[Healable]:
        """Every link of the stand-in; with process faults, every process of it running and none stopped."""
        if self._torn_down:
            return []
        parts: list[Healable] = []
        api = self.toxiproxy_api()
        if api:
            proxies = [proxy_name(n) for n in self.stack.state.get("links", {})]
            parts.append(LinkSweep(api, proxies=proxies, allow_hosts=self.allow_hosts))
        if process_targets:
            parts.append(ProcessSweep(self.process_control()))
        return parts

    def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        result = self.stack.down()
        if result.get("ports_left") or result.get("problems"):
            raise DrillError(f"stack teardown left something behind: {result}")
        # Nothing reads the stand-in's databases after the drill (business.json holds what the
        # checkers read of the business state): they would be most of the run folder.
        self.stack.drop_data()


class TargetEnvironment:
    """A deployment kugeldrill did not start, described by a target file; never torn down."""

    kind = "target"

    def __init__(self, target: TargetFile) -> None:
        self.target = target
        self.description = f"target {target.name} ({target.path})"
        self.allow_hosts = tuple(target.allow_hosts)
        self.redis_url = target.observe.redis_url
        self.notes: list[str] = []
        # Log lines older than this are a deployment's history, not this drill's.
        self.opened_wall = time.time()
        self._processes: ProcessControl | None = None

    @classmethod
    def open(cls, path: str | Path) -> "TargetEnvironment":
        env = cls(load_target(path))
        env.check_reachable()
        return env

    def check_reachable(self) -> None:
        """Every service and the Toxiproxy API answer, before any load or fault."""
        problems = []
        with httpx.Client(timeout=PROBE_TIMEOUT) as client:
            urls = dict(self.service_urls())
            api = self.toxiproxy_api()
            if api:
                urls["Toxiproxy API"] = api.rstrip("/") + "/version"
            for name, url in urls.items():
                require_loopback(url, allow_hosts=self.allow_hosts, what=f"{name} URL")
                try:
                    client.get(url)
                except httpx.HTTPError as exc:
                    problems.append(f"{name} at {url}: {type(exc).__name__}")
        if problems:
            raise TargetUnreachableError(f"target file {self.target.path}: not reachable: " + "; ".join(problems),
                                         hint="start the deployment (and Toxiproxy) first, or fix the URLs")

    def service_urls(self) -> dict[str, str]:
        return {str(app): url for app, url in self.target.services.items()}

    def provision_options(self, opts: ProvisionOptions) -> ProvisionOptions:
        """The target file's credentials and tenant."""
        auth = self.target.auth
        opts.username, opts.password, opts.tenant_id = auth.username, auth.password, auth.tenant_id
        return opts

    def toxiproxy_api(self) -> str | None:
        return self.target.toxiproxy.api if self.target.toxiproxy else None

    def link_map(self) -> LinkMap:
        return LinkMap([Link(n, s.listen, s.upstream) for n, s in self.target.links.items()],
                       allow_hosts=self.allow_hosts)

    def ensure_links(self, links: LinkMap) -> None:
        """A target with `manage_links: populate` gets its proxies created (and re-enabled)."""
        tox = self.target.toxiproxy
        if tox is None or not tox.api or tox.manage_links != "populate":
            return
        with ToxiproxyClient(tox.api, allow_hosts=self.allow_hosts) as client:
            links.ensure(client)

    def events_files(self) -> dict[str, Path]:
        return {}

    def outbox_probe(self) -> Callable[[], Hashable | None] | None:
        return None  # a real target's outbox lives in MongoDB; quiescence uses the streams only

    def check_inputs(self, run_dir: Path) -> CheckInputs:
        """Only the target file's observation sources: its logs (copied into run_dir/logs
        first, and parsed from there), its Redis and its MongoDB; never stand-in events."""
        obs = self.target.observe
        logs = gather_logs(obs.logs, self.target.path, run_dir)
        sources = ObservationSources(logs=logs.files, redis_url=obs.redis_url, mongo_url=obs.mongodb_url,
                                     allow_hosts=self.allow_hosts,
                                     max_call_seconds=self.target.breaker.max_call_seconds,
                                     since_wall=self.opened_wall, tenant_id=_provisioned_tenant(run_dir))
        inputs = load_kugelpos_inputs(run_dir, sources)
        inputs.notes.extend(logs.notes)
        return inputs

    def breaker_params(self) -> BreakerParams:
        b = self.target.breaker
        return BreakerParams(threshold=b.threshold, reset_seconds=b.reset_seconds,
                             half_open_max_calls=b.half_open_max_calls, mode=b.failures)

    def republish_policy(self) -> RepublishPolicy:
        p = self.target.publisher
        return RepublishPolicy(interval_seconds=p.republish_interval_seconds, min_age_seconds=p.republish_min_age_seconds,
                               window_seconds=p.republish_window_seconds,
                               max_call_seconds=self.target.breaker.max_call_seconds)

    def save_into(self, run_dir: Path) -> None:
        RunFolder(run_dir).target_yaml.write_text(dump_target(self.target), encoding="utf-8")

    def process_control(self) -> ProcessControl | None:
        """The target file's process command templates, or None when it names none."""
        if self.target.processes is None:
            return None
        if self._processes is None:
            from kugeldrill.target_processes import TargetProcesses

            self._processes = TargetProcesses(self.target)
        return self._processes

    def heal_parts(self, process_targets: list[str]) -> list[Healable]:
        """Our faults only: every `kugeldrill.*` proxy and toxic, and the process targets the
        drill's faults acted on (running and not paused, through the file's commands)."""
        parts: list[Healable] = []
        api = self.toxiproxy_api()
        if api:
            parts.append(LinkSweep(api, allow_hosts=self.allow_hosts))
        control = self.process_control()
        if process_targets and control is not None:
            parts.append(ProcessSweep(control, process_targets))
        return parts

    def teardown(self) -> None:
        """Nothing to stop: only our faults are healed (by heal())."""


def _provisioned_tenant(run_dir: Path) -> str | None:
    """The tenant this drill provisioned: a deployment's outbox also holds other tenants' events."""
    try:
        tenant = load_provision(RunFolder(run_dir).provision_json).get("tenant_id")
    except DrillError:
        return None
    return str(tenant) if tenant else None


def open_environment(scenario: Scenario, run_dir: Path, scenario_path: Path) -> DrillEnvironment:
    """`embedded` starts the stand-in; anything else is a target file (relative to the scenario)."""
    if scenario.target == "embedded":
        return EmbeddedEnvironment.start(scenario, run_dir)
    path = Path(scenario.target)
    if not path.is_absolute() and not path.exists():
        path = scenario_path.parent / path
    return TargetEnvironment.open(path)
