"""The sidecar runtime: loads resources, owns the components, discovers subscriptions.

Why separate from the HTTP routes (`api.py`): the launcher and the tests start and stop a
runtime, and the start-up order matters to drills (components first, then the outbound
API, then wait for the app, then subscriptions — only then `/v1.0/healthz` is 204).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.sidecar.delivery import Deliverer
from kugeldrill.stack.sidecar.metrics import Metrics
from kugeldrill.stack.sidecar.pubsub import ACK_MODELS, RedisStreamsPubsub
from kugeldrill.stack.sidecar.resiliency import Policy, component_policy
from kugeldrill.stack.sidecar.resources import Resources, Subscription, load_resources
from kugeldrill.stack.sidecar.sidelog import DAPR_VERSION, SidecarLog
from kugeldrill.stack.sidecar.state import RedisStateStore


class ComponentInitError(DrillError):
    """A component could not reach Redis at start-up; like daprd, the sidecar exits."""


@dataclass
class SidecarOptions:
    """Everything `python -m stack.sidecar` takes on its command line."""

    app_id: str
    dapr_http_port: int
    app_port: int
    resources_path: Path
    app_host: str = "127.0.0.1"
    host: str = "127.0.0.1"
    log_file: Path | None = None
    ack_model: str = "1.18"
    block_ms: int = 2000  # XREADGROUP BLOCK; daprd blocks forever (see pubsub.py)
    app_timeout: float = 600.0  # daprd has none; a cap so that no call hangs forever
    init_timeout: float = 5.0  # component PING at start-up (spec.initTimeout default)
    debug: bool = False

    def validate(self) -> None:
        if self.ack_model not in ACK_MODELS:
            raise ConfigError(f"--ack-model must be one of {', '.join(ACK_MODELS)}, not {self.ack_model!r}")
        if not self.app_id or "||" in self.app_id:
            raise ConfigError(f"--app-id {self.app_id!r} is empty or contains '||'")
        for name, port in (("--dapr-http-port", self.dapr_http_port), ("--app-port", self.app_port)):
            if not 0 < port < 65536:
                raise ConfigError(f"{name} {port} is not a TCP port")
        require_loopback(self.app_host, what="--app-host")
        require_loopback(self.host, what="listen host")


@dataclass
class SubscriptionState:
    sub: Subscription
    deliverer: Deliverer | None = None
    error: str | None = None


class Sidecar:
    """One daprd-like runtime for one app."""

    def __init__(self, opts: SidecarOptions) -> None:
        opts.validate()
        self.opts = opts
        self.app_id = opts.app_id
        self.log = SidecarLog(opts.app_id, path=opts.log_file, version=DAPR_VERSION[opts.ack_model], debug=opts.debug)
        self.metrics = Metrics(opts.app_id)
        self.resources: Resources = load_resources(opts.resources_path, opts.app_id)
        self.pubsubs: dict[str, RedisStreamsPubsub] = {}
        self.states: dict[str, RedisStateStore] = {}
        self.subscriptions: list[SubscriptionState] = []
        self.outbound_ready = False
        self.ready = False
        self.app_client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []
        self.outbound_policies: dict[str, Policy] = {}

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Init components (exit on failure, like daprd), then discover subscriptions in the background."""
        self.log.info(f"Starting Dapr Runtime -- version {self.log.version} (kugeldrill stand-in, ack model "
                      f"{self.opts.ack_model})")
        for warning in self.resources.warnings:
            self.log.warning(warning, scope="dapr.runtime.processor")
        for res in self.resources.resiliencies:
            self.log.info(f"Resiliency configuration loaded: {res.name}", scope="dapr.runtime")
            self.metrics.inc("dapr_resiliency_loaded", app_id=self.app_id, name=res.name, namespace="")
        for name, comp in self.resources.states.items():
            store = RedisStateStore(comp)
            if await self._init_component(name, "state.redis", store, comp.ignore_errors):
                self.states[name] = store
                self.outbound_policies[name] = component_policy(self.resources.resiliencies, name, "Statestore", "Outbound")
        for name, comp in self.resources.pubsubs.items():
            ps = RedisStreamsPubsub(comp, log=self.log, ack_model=self.opts.ack_model, block_ms=self.opts.block_ms)
            if await self._init_component(name, "pubsub.redis", ps, comp.ignore_errors):
                self.pubsubs[name] = ps
                self.outbound_policies[name] = component_policy(self.resources.resiliencies, name, "Pubsub", "Outbound")
        self.outbound_ready = True
        concurrency = sum(p.comp.concurrency for p in self.pubsubs.values()) or 1
        self.app_client = httpx.AsyncClient(
            base_url=f"http://{self.opts.app_host}:{self.opts.app_port}",
            timeout=httpx.Timeout(self.opts.app_timeout, connect=5.0),
            limits=httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4),
            headers={"user-agent": "Go-http-client/1.1", "accept-encoding": "gzip"},
        )
        self.app_client.headers.pop("accept", None)
        self._tasks.append(asyncio.create_task(self._connect_app()))

    async def _init_component(self, name: str, ctype: str, comp, ignore_errors: bool) -> bool:
        try:
            await comp.init(self.opts.init_timeout)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001
            await comp.close()
            msg = (f"Failed to init component {name} ({ctype}/v1): [INIT_COMPONENT_FAILURE]: initialization "
                   f"error occurred for {name} ({ctype}/v1): redis: cannot reach "
                   f"{comp.settings.host}:{comp.settings.port} within {self.opts.init_timeout:g}s ({exc!r})")
            self.log.error(msg, scope="dapr.runtime.processor")
            if ignore_errors:
                self.log.warning(f"Ignoring error processing component {name}", scope="dapr.runtime.processor")
                return False
            self.log.error("Error processing component, daprd will exit gracefully", scope="dapr.runtime")
            raise ComponentInitError(msg)
        self.log.info(f"Component loaded: {name} ({ctype}/v1)", scope="dapr.runtime.processor")
        self.metrics.inc("dapr_runtime_component_loaded", app_id=self.app_id, namespace="")
        return True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ps in self.pubsubs.values():
            await ps.close()
        for store in self.states.values():
            await store.close()
        if self.app_client is not None:
            await self.app_client.aclose()
        self.log.info("Dapr shutdown completed")
        self.log.close()

    # -- app connection and subscriptions -------------------------------------------
    async def _connect_app(self) -> None:
        try:
            await self._connect_app_inner()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged, not silently lost in a task
            self.log.error(f"failed to start subscriptions: {exc!r}")
            raise

    async def _connect_app_inner(self) -> None:
        await self._wait_app_port()
        subs = [SubscriptionState(s) for s in self.resources.subscriptions]
        programmatic = await self._get_programmatic()
        subs.extend(SubscriptionState(s) for s in programmatic)
        seen: set[tuple[str, str]] = set()
        for state in subs:
            key = (state.sub.pubsubname, state.sub.topic)
            if key in seen:
                self.log.warning(f"duplicate subscription to topic {key[1]} on pubsub {key[0]} ignored")
                continue
            seen.add(key)
            await self._start_subscription(state)
            self.subscriptions.append(state)
        self.ready = True
        self.log.info(f"dapr initialized. Status: Running. {len(self.subscriptions)} subscription(s)")

    async def _wait_app_port(self) -> None:
        host, port = self.opts.app_host, self.opts.app_port
        logged = False
        delay = 0.05
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2.0)
                writer.close()
                return
            except (OSError, TimeoutError):
                if not logged:
                    self.log.info(f"application protocol: http. waiting on port {port}. "
                                  f"This will block until the app is listening on that port.")
                    logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.5)  # quick when the app is nearly up, quiet when it is not

    async def _get_programmatic(self) -> list[Subscription]:
        """GET /dapr/subscribe; transport errors are retried until the app answers."""
        assert self.app_client is not None
        delay = 0.1
        while True:
            try:
                resp = await self.app_client.get("/dapr/subscribe", headers={"dapr-app-id": self.app_id},
                                                 timeout=10.0)
                break
            except httpx.HTTPError as exc:
                self.log.warning(f"error getting topic list from app: {exc!r}; retrying in {delay:.1f}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if resp.status_code == 404:
            self.log.debug("app has no programmatic subscriptions (404 from /dapr/subscribe)")
            return []
        if resp.status_code != 200:
            self.log.error(f"app returned http status code {resp.status_code} from subscription endpoint")
            return []
        if not resp.content.strip():
            return []
        try:
            items = json.loads(resp.content)
        except ValueError as exc:
            self.log.error(f"error unmarshalling subscriptions from app: {exc}")
            return []
        if not isinstance(items, list):
            self.log.error("subscriptions from app are not a JSON array")
            return []
        return [s for s in (self._parse_programmatic(item) for item in items) if s is not None]

    def _parse_programmatic(self, item) -> Subscription | None:
        if not isinstance(item, dict) or not item.get("pubsubname") or not item.get("topic"):
            self.log.warning(f"ignoring invalid subscription from app: {item!r}")
            return None
        routes = item.get("routes") or {}
        route = routes.get("default") or item.get("route") or ""
        rules = routes.get("rules") or []
        if not route and not rules:
            self.log.warning(f"topic {item['topic']} has an empty routes. removing from subscriptions list")
            return None
        return Subscription(
            pubsubname=str(item["pubsubname"]),
            topic=str(item["topic"]),
            route=str(route),
            metadata={str(k): str(v) for k, v in (item.get("metadata") or {}).items()},
            dead_letter_topic=item.get("deadLetterTopic") or None,
            kind="PROGRAMMATIC",
            rules=list(rules),
        )

    async def _start_subscription(self, state: SubscriptionState) -> None:
        sub = state.sub
        ps = self.pubsubs.get(sub.pubsubname)
        if ps is None:
            state.error = f"pubsub {sub.pubsubname} is not found"
            self.log.warning(f"subscription to topic {sub.topic} ignored: {state.error}")
            return
        if sub.rules and any(r.get("match") for r in sub.rules):
            self.log.warning(f"subscription to topic {sub.topic}: CEL routing rules are not implemented; "
                             f"only the default route {sub.route or '(none)'} is used")
        policy = component_policy(self.resources.resiliencies, sub.pubsubname, "Pubsub", "Inbound")
        name = self.resources.resiliencies[0].name if self.resources.resiliencies else ""
        assert self.app_client is not None
        state.deliverer = Deliverer(sub=sub, pubsub=ps, client=self.app_client, policy=policy, metrics=self.metrics,
                                    log=self.log, ack_model=self.opts.ack_model, resiliency_name=name)
        await ps.subscribe(sub.topic, state.deliverer)
        self.log.info(f"app is subscribed to the following topics: [{sub.topic}] through pubsub={sub.pubsubname} "
                      f"(consumer group {ps.group})", scope="dapr.runtime.processor.pubsub")

    # -- /v1.0/metadata ---------------------------------------------------------------
    def metadata(self) -> dict:
        caps = {"state.redis": ["ETAG", "TRANSACTIONAL", "TTL"], "pubsub.redis": []}
        return {
            "id": self.app_id,
            "runtimeVersion": self.log.version,
            "enabledFeatures": [],
            "actors": [],
            "components": [
                {**c, "capabilities": caps.get(c["type"], [])}
                for c in self.resources.components
                if c["name"] in self.states or c["name"] in self.pubsubs
            ],
            "extended": {"appCommand": "", "kugeldrill.ackModel": self.opts.ack_model},
            "subscriptions": [
                {
                    "pubsubname": s.sub.pubsubname,
                    "topic": s.sub.topic,
                    "metadata": s.sub.metadata,
                    "rules": [{"match": "", "path": s.sub.route}] if s.sub.route else [],
                    "deadLetterTopic": s.sub.dead_letter_topic or "",
                    "type": s.sub.kind,
                }
                for s in self.subscriptions
                if s.deliverer is not None
            ],
            "httpEndpoints": [],
            "appConnectionProperties": {
                "port": self.opts.app_port,
                "protocol": "http",
                "channelAddress": self.opts.app_host,
                "maxConcurrency": -1,
            },
        }
