"""Loading the sidecar's resources folder: Components, Subscriptions and Resiliency.

Why its own module: the rules for reading Dapr YAML (case-insensitive metadata names, unknown
keys ignored, `{appID}` templates, ms-vs-duration fields, `scopes`) decide what a drill
actually runs, so they are kept in one place and tested without Redis.

Unlike daprd, which ignores unknown metadata silently, every ignored key is reported in
`Resources.warnings` so that kugelpos' `databaseIndex` / `streamName` show up in the log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.sidecar.durations import DurationError, parse_ms_or_duration, parse_resiliency_duration

_COMMON_REDIS_KEYS = {
    "redishost", "redisport", "redispassword", "redisusername", "redisdb", "redistype",
    "enabletls", "insecureskiptlsverify", "clientcert", "clientkey", "failover",
    "sentinelmastername", "sentinelusername", "sentinelpassword", "redismaxretries",
    "redisminretryinterval", "redismaxretryinterval", "dialtimeout", "readtimeout",
    "writetimeout", "poolsize", "pooltimeout", "minidleconns", "idletimeout", "maxconnage",
    "idlecheckfrequency", "useentraid", "useoidc",
}
_PUBSUB_KEYS = _COMMON_REDIS_KEYS | {
    "consumerid", "processingtimeout", "redeliverinterval", "queuedepth", "concurrency",
    "maxlenapprox", "streamttl", "publishingscopes", "subscriptionscopes", "allowedtopics",
    "protectedtopics",
}
_STATE_KEYS = _COMMON_REDIS_KEYS | {
    "ttlinseconds", "keyprefix", "actorstatestore", "maxretries", "maxretrybackoff", "queryindexes",
}

DEFAULT_PROCESSING_TIMEOUT = 60.0
DEFAULT_REDELIVER_INTERVAL = 15.0


@dataclass
class RedisSettings:
    """Connection settings shared by the Redis state store and pub/sub."""

    host: str
    port: int
    db: int = 0
    password: str | None = None
    username: str | None = None
    max_retries: int = 3
    min_retry_interval: float = 0.008
    max_retry_interval: float = 0.512
    dial_timeout: float = 5.0
    read_timeout: float = 3.0
    write_timeout: float = 3.0
    pool_size: int = 20


@dataclass
class PubsubComponent:
    name: str
    redis: RedisSettings
    consumer_id: str
    processing_timeout: float = DEFAULT_PROCESSING_TIMEOUT
    redeliver_interval: float = DEFAULT_REDELIVER_INTERVAL
    queue_depth: int = 100
    concurrency: int = 10
    max_len_approx: int = 0
    ignore_errors: bool = False
    publishing_scopes: dict[str, list[str]] | None = None


@dataclass
class StateComponent:
    name: str
    redis: RedisSettings
    key_prefix: str
    ttl_in_seconds: int | None = None
    ignore_errors: bool = False
    actor_state_store: bool = False


@dataclass
class Subscription:
    """One (pubsub, topic) subscription, programmatic or declarative."""

    pubsubname: str
    topic: str
    route: str
    metadata: dict[str, str] = field(default_factory=dict)
    dead_letter_topic: str | None = None
    kind: str = "PROGRAMMATIC"
    rules: list[dict[str, str]] = field(default_factory=list)

    @property
    def raw_payload(self) -> bool:
        return str(self.metadata.get("rawPayload", "")).lower() == "true"


@dataclass
class RetryPolicy:
    name: str
    policy: str = "constant"
    duration: float = 5.0
    max_interval: float = 60.0
    max_retries: int = -1
    http_status_codes: list[tuple[int, int]] | None = None


@dataclass
class ComponentPolicyRefs:
    retry: str | None = None
    timeout: str | None = None


@dataclass
class Resiliency:
    name: str
    timeouts: dict[str, float] = field(default_factory=dict)
    retries: dict[str, RetryPolicy] = field(default_factory=dict)
    inbound: dict[str, ComponentPolicyRefs] = field(default_factory=dict)
    outbound: dict[str, ComponentPolicyRefs] = field(default_factory=dict)


@dataclass
class Resources:
    pubsubs: dict[str, PubsubComponent] = field(default_factory=dict)
    states: dict[str, StateComponent] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    resiliencies: list[Resiliency] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    components: list[dict[str, str]] = field(default_factory=list)  # for /v1.0/metadata


def load_resources(path: str | Path, app_id: str) -> Resources:
    """Read every *.yaml / *.yml in `path` the way daprd's `--resources-path` does."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"resources path {folder} is not a directory")
    res = Resources()
    for file in sorted(folder.iterdir()):
        if file.suffix not in (".yaml", ".yml") or not file.is_file():
            continue
        try:
            docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        for doc in docs:
            _load_doc(doc, file, app_id, res)
    return res


def _load_doc(doc: Any, file: Path, app_id: str, res: Resources) -> None:
    if not isinstance(doc, dict):
        raise ConfigError(f"{file}: a resource must be a mapping, got {type(doc).__name__}")
    kind = doc.get("kind")
    scopes = doc.get("scopes")
    if scopes and app_id not in scopes:
        return
    name = (doc.get("metadata") or {}).get("name")
    if kind in ("Component", "Subscription", "Resiliency") and not name:
        raise ConfigError(f"{file}: {kind} without metadata.name")
    spec = doc.get("spec") or {}
    if kind == "Component":
        _load_component(name, spec, file, app_id, res)
    elif kind == "Subscription":
        res.subscriptions.append(_load_subscription(name, doc.get("apiVersion", ""), spec, file))
    elif kind == "Resiliency":
        res.resiliencies.append(_load_resiliency(name, spec, file, res))
    else:
        res.warnings.append(f"{file.name}: resource kind {kind!r} is not supported and was skipped")


def _metadata_map(spec: dict, file: Path, app_id: str) -> dict[str, tuple[str, str]]:
    """lower-case name → (original name, value with templates expanded)."""
    out: dict[str, tuple[str, str]] = {}
    for item in spec.get("metadata") or []:
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{file}: each spec.metadata entry needs a 'name'")
        if "secretKeyRef" in item:
            continue
        value = "" if item.get("value") is None else str(item.get("value"))
        value = (value.replace("{appID}", app_id).replace("{podName}", app_id)
                 .replace("{namespace}", "").replace("{uuid}", str(uuid.uuid4())))
        out[str(item["name"]).lower()] = (str(item["name"]), value)
    return out


def _int(meta: dict, key: str, default: int, file: Path) -> int:
    if key not in meta or meta[key][1] == "":
        return default
    try:
        return int(meta[key][1])
    except ValueError:
        raise ConfigError(f"{file}: metadata {meta[key][0]}={meta[key][1]!r} is not an integer") from None


def _dur(meta: dict, key: str, default: float, file: Path) -> float:
    if key not in meta or meta[key][1] == "":
        return default
    try:
        return parse_ms_or_duration(meta[key][1])
    except DurationError:
        raise ConfigError(f"{file}: metadata {meta[key][0]}={meta[key][1]!r} is not a duration") from None


def _redis_settings(meta: dict, file: Path, *, state: bool) -> RedisSettings:
    host_value = meta.get("redishost", ("", ""))[1]
    if not host_value:
        raise ConfigError(f"{file}: redisHost is required")
    host, _, port_text = host_value.partition(":")
    port_text = port_text or meta.get("redisport", ("", "6379"))[1] or "6379"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{file}: redisHost {host_value!r} has no valid port") from None
    max_retries = _int(meta, "redismaxretries", _int(meta, "maxretries", 3, file) if state else 3, file)
    min_retry = _dur(meta, "redisminretryinterval", 2.0 if state else 0.008, file)
    return RedisSettings(
        host=host,
        port=port,
        db=_int(meta, "redisdb", 0, file),
        password=meta.get("redispassword", ("", ""))[1] or None,
        username=meta.get("redisusername", ("", ""))[1] or None,
        max_retries=0 if max_retries < 0 else max_retries,
        min_retry_interval=max(min_retry, 0.0),
        max_retry_interval=max(_dur(meta, "redismaxretryinterval", 0.512, file), 0.0),
        dial_timeout=_dur(meta, "dialtimeout", 5.0, file),
        read_timeout=_dur(meta, "readtimeout", 3.0, file),
        write_timeout=_dur(meta, "writetimeout", _dur(meta, "readtimeout", 3.0, file), file),
        pool_size=max(_int(meta, "poolsize", 20, file), 4),
    )


def _load_component(name: str, spec: dict, file: Path, app_id: str, res: Resources) -> None:
    ctype = str(spec.get("type", ""))
    meta = _metadata_map(spec, file, app_id)
    ignore_errors = bool(spec.get("ignoreErrors", False))
    if ctype == "pubsub.redis":
        known = _PUBSUB_KEYS
    elif ctype == "state.redis":
        known = _STATE_KEYS
    else:
        res.warnings.append(f"{file.name}: component {name} of type {ctype!r} is not supported and was skipped")
        return
    unknown = sorted(orig for key, (orig, _) in meta.items() if key not in known)
    if unknown:
        res.warnings.append(
            f"component {name}: metadata {', '.join(unknown)} not recognised by {ctype} and ignored "
            f"(as Dapr does){' — the database is chosen only by redisDB' if 'databaseIndex' in unknown else ''}"
        )
    redis = _redis_settings(meta, file, state=ctype == "state.redis")
    res.components.append({"name": name, "type": ctype, "version": str(spec.get("version", "v1"))})
    if ctype == "pubsub.redis":
        redeliver = DEFAULT_REDELIVER_INTERVAL
        if "redeliverinterval" in meta:
            raw = meta["redeliverinterval"][1].strip()
            if raw.lstrip("-").isdigit():
                redeliver = int(raw) / 1000.0
            else:
                res.warnings.append(
                    f"component {name}: redeliverInterval {raw!r} is not an integer of milliseconds; "
                    f"Dapr ignores it, so the default {DEFAULT_REDELIVER_INTERVAL:g}s applies"
                )
        scopes = meta.get("publishingscopes", ("", ""))[1]
        res.pubsubs[name] = PubsubComponent(
            name=name,
            redis=redis,
            consumer_id=meta.get("consumerid", ("", ""))[1] or app_id,
            processing_timeout=_dur(meta, "processingtimeout", DEFAULT_PROCESSING_TIMEOUT, file),
            redeliver_interval=redeliver,
            queue_depth=max(_int(meta, "queuedepth", 100, file), 1),
            concurrency=max(_int(meta, "concurrency", 10, file), 1),
            max_len_approx=_int(meta, "maxlenapprox", 0, file),
            ignore_errors=ignore_errors,
            publishing_scopes=_parse_scopes(scopes) if scopes else None,
        )
    else:
        prefix_mode = meta.get("keyprefix", ("", "appid"))[1] or "appid"
        lowered = prefix_mode.lower()
        if lowered == "appid":
            key_prefix = app_id
        elif lowered == "name":
            key_prefix = name
        elif lowered == "none":
            key_prefix = ""
        elif lowered == "namespace":
            key_prefix = app_id
        else:
            key_prefix = prefix_mode
        if "||" in key_prefix:
            raise ConfigError(f"{file}: keyPrefix {key_prefix!r} must not contain '||'")
        ttl = None
        if "ttlinseconds" in meta and meta["ttlinseconds"][1] != "":
            ttl = _int(meta, "ttlinseconds", 0, file)
        res.states[name] = StateComponent(
            name=name,
            redis=redis,
            key_prefix=key_prefix,
            ttl_in_seconds=ttl,
            ignore_errors=ignore_errors,
            actor_state_store=meta.get("actorstatestore", ("", "false"))[1].lower() == "true",
        )


def _parse_scopes(text: str) -> dict[str, list[str]]:
    """`app1=topic1,topic2;app2=topic3` → {app: [topics]}."""
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        app, _, topics = part.partition("=")
        if app.strip():
            out[app.strip()] = [t.strip() for t in topics.split(",") if t.strip()]
    return out


def _load_subscription(name: str, api_version: str, spec: dict, file: Path) -> Subscription:
    for key in ("pubsubname", "topic"):
        if not spec.get(key):
            raise ConfigError(f"{file}: Subscription {name} needs spec.{key}")
    rules: list[dict[str, str]] = []
    route = spec.get("route")
    routes = spec.get("routes") or {}
    if routes:
        rules = [dict(r) for r in routes.get("rules") or []]
        route = routes.get("default") or route
    if not route and not rules:
        raise ConfigError(f"{file}: Subscription {name} needs spec.route or spec.routes")
    return Subscription(
        pubsubname=str(spec["pubsubname"]),
        topic=str(spec["topic"]),
        route=str(route or ""),
        metadata={str(k): str(v) for k, v in (spec.get("metadata") or {}).items()},
        dead_letter_topic=spec.get("deadLetterTopic") or None,
        kind="DECLARATIVE",
        rules=rules,
    )


def parse_status_ranges(text: str, where: str) -> list[tuple[int, int]]:
    """`"500,502-504"` → [(500, 500), (502, 504)]."""
    ranges: list[tuple[int, int]] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            raise ConfigError(f"{where}: httpStatusCodes entry {part!r} is not a code or range") from None
        if not (100 <= lo <= hi <= 599):
            raise ConfigError(f"{where}: httpStatusCodes entry {part!r} is outside 100-599")
        ranges.append((lo, hi))
    return ranges


def _load_resiliency(name: str, spec: dict, file: Path, res: Resources) -> Resiliency:
    out = Resiliency(name=name)
    policies = spec.get("policies") or {}
    where = f"{file}: Resiliency {name}"
    for pname, value in (policies.get("timeouts") or {}).items():
        try:
            out.timeouts[pname] = parse_resiliency_duration(value)
        except DurationError:
            raise ConfigError(f"{where}: timeout {pname}={value!r} is not a duration") from None
    for pname, body in (policies.get("retries") or {}).items():
        body = body or {}
        policy = str(body.get("policy", "constant")).lower()
        if policy not in ("constant", "exponential"):
            raise ConfigError(f"{where}: retry {pname} policy {policy!r} is not constant or exponential")
        try:
            retry = RetryPolicy(
                name=pname,
                policy=policy,
                duration=parse_resiliency_duration(body.get("duration", "5s")),
                max_interval=parse_resiliency_duration(body.get("maxInterval", "60s")),
                max_retries=int(body.get("maxRetries", -1)),
            )
        except (DurationError, ValueError) as exc:
            raise ConfigError(f"{where}: retry {pname}: {exc}") from None
        matching = body.get("matching") or {}
        if matching.get("httpStatusCodes"):
            retry.http_status_codes = parse_status_ranges(matching["httpStatusCodes"], where)
        out.retries[pname] = retry
    if policies.get("circuitBreakers"):
        res.warnings.append(f"Resiliency {name}: circuitBreakers are not implemented by this sidecar and were ignored")
    targets = spec.get("targets") or {}
    if targets.get("apps") or targets.get("actors"):
        res.warnings.append(f"Resiliency {name}: app and actor targets are not implemented and were ignored")
    for comp, directions in (targets.get("components") or {}).items():
        for direction in ("inbound", "outbound"):
            refs = (directions or {}).get(direction)
            if not refs:
                continue
            ref = ComponentPolicyRefs(retry=refs.get("retry"), timeout=refs.get("timeout"))
            for kind, pname, table in (("retry", ref.retry, out.retries), ("timeout", ref.timeout, out.timeouts)):
                if pname and pname not in table:
                    raise ConfigError(f"{where}: target {comp}.{direction} names unknown {kind} policy {pname!r}")
            getattr(out, direction)[comp] = ref
    return out
