"""The audit rules: each takes the loaded resources and yields findings."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from kugeldrill.audit import dapr_facts as facts
from kugeldrill.audit.model import Finding, Resource, Severity

_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def _components(resources: list[Resource], type_: str) -> list[Resource]:
    return [r for r in resources if r.kind == "Component" and r.type == type_]


def ignored_fields(resources: list[Resource]) -> Iterator[Finding]:
    """Metadata keys Dapr does not read for the component's type."""
    for res in resources:
        known = facts.KNOWN_KEYS.get(res.type)
        if res.kind != "Component" or known is None:
            continue
        for key in res.metadata():
            low = key.lower()
            if low in known and not (low == "maxretries" and res.type == "pubsub.redis"):
                continue
            instead = facts.MISTAKEN_KEYS.get(low, "a key from the component's documented metadata")
            yield Finding(
                rule="ignored-field",
                severity=Severity.WARNING,
                file=res.file,
                component=res.name,
                field=key,
                message=f"Dapr ignores metadata '{key}' on {res.type} (unknown keys are dropped without a log line)",
                fix=f"use {instead}",
            )


def shared_consumer_group(resources: list[Resource], subscribers: dict[str, tuple[str, ...]]) -> Iterator[Finding]:
    """Several subscribing apps with one literal consumerID become competing consumers."""
    for res in _components(resources, "pubsub.redis"):
        meta = {k.lower(): v for k, v in res.metadata().items()}
        consumer = meta.get("consumerid", "")
        if not consumer or any(t in consumer.lower() for t in facts.TEMPLATE_MARKERS):
            continue
        apps = subscribers.get(res.name, ())
        if res.scopes:
            apps = tuple(a for a in apps if a in res.scopes)
        if len(apps) > 1:
            yield Finding(
                rule="shared-consumer-group",
                severity=Severity.ERROR,
                file=res.file,
                component=res.name,
                field="consumerID",
                message=f"apps {', '.join(apps)} subscribe through '{res.name}' with the same consumerID "
                f"'{consumer}': they join one consumer group, so each message reaches only one of them "
                "(fan-out breaks)",
                fix="remove consumerID (it defaults to the app id: one group per app), or use '{appID}'",
            )


def duration_units(resources: list[Resource]) -> Iterator[Finding]:
    """processingTimeout bare numbers are ms; redeliverInterval honours only ms integers."""
    for res in _components(resources, "pubsub.redis"):
        for key, value in res.metadata().items():
            low, text = key.lower(), value.strip()
            if low == "processingtimeout" and text.isdigit() and text != "0":
                yield Finding(
                    "duration-units", Severity.ERROR, res.file, res.name,
                    f"processingTimeout '{text}' is a bare number, which Dapr reads as {text} ms, not seconds: "
                    "pending messages are reclaimed and redelivered (duplicates) almost at once",
                    f"write a Go duration, e.g. '{text}s'", key,
                )
            if low == "redeliverinterval" and text and not text.lstrip("-").isdigit():
                yield Finding(
                    "duration-units", Severity.WARNING, res.file, res.name,
                    f"redeliverInterval '{text}' is ignored: only a bare integer in milliseconds is honoured, "
                    "so the default 15 s applies",
                    "write milliseconds as a bare integer, e.g. '30000'", key,
                )
    for res in resources:
        if res.kind != "Component" or not res.type.endswith(".redis"):
            continue
        for key, value in res.metadata().items():
            if key.lower() in facts.REDIS_DURATION_FIELDS and value.strip().isdigit() and value.strip() != "0":
                yield Finding(
                    "duration-units", Severity.WARNING, res.file, res.name,
                    f"{key} '{value}' is a bare number, read as {value} ms",
                    f"write a Go duration, e.g. '{value}s' if seconds were meant", key,
                )


def _inbound_retry_targets(resources: list[Resource]) -> tuple[set[str], bool]:
    """(components with an inbound retry policy, whether a default inbound retry applies)."""
    targeted: set[str] = set()
    has_default = False
    for res in resources:
        if res.kind != "Resiliency":
            continue
        retries = (res.spec.get("policies") or {}).get("retries") or {}
        if any(name in retries and _retries_at_all(retries[name]) for name in facts.DEFAULT_INBOUND_RETRY_NAMES):
            has_default = True
        comps = ((res.spec.get("targets") or {}).get("components")) or {}
        for comp_name, comp in comps.items():
            inbound = (comp or {}).get("inbound") or {}
            policy = retries.get(inbound.get("retry", ""))
            if policy is not None and _retries_at_all(policy):
                targeted.add(str(comp_name))
    return targeted, has_default


def _retries_at_all(policy: object) -> bool:
    if not isinstance(policy, dict):
        return False
    try:
        return int(str(policy.get("maxRetries", -1))) != 0
    except ValueError:
        return True


def lost_deliveries(resources: list[Resource], dapr_version: tuple[int, int]) -> Iterator[Finding]:
    """Under >= 1.17 a failed delivery without retry policy or DLQ is acknowledged and lost."""
    if dapr_version < (1, 17):
        return
    targeted, has_default = _inbound_retry_targets(resources)
    dlq = {
        str(r.spec.get("pubsubname"))
        for r in resources
        if r.kind == "Subscription" and r.spec.get("deadLetterTopic")
    }
    for res in _components(resources, "pubsub.redis"):
        if res.name in targeted or has_default or res.name in dlq:
            continue
        yield Finding(
            "no-retry-no-dead-letter", Severity.ERROR, res.file, res.name,
            f"no Resiliency inbound retry and no dead-letter topic for '{res.name}': with Dapr >= 1.17 a "
            "delivery that fails (5xx, RETRY, app down) is acknowledged after one attempt and lost",
            "add a Resiliency resource with targets.components."
            f"{res.name}.inbound.retry (or a DefaultPubsubComponentInboundRetryPolicy), or a deadLetterTopic",
        )


def unpinned_images(images: list[tuple[str, str, str]]) -> Iterator[Finding]:
    """daprd images without a fixed version change Dapr's ack model under your feet."""
    for file, service, image in images:
        if "daprd" not in image:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if tag in ("", "latest") and "@sha256:" not in image:
            yield Finding(
                "unpinned-daprd-image", Severity.WARNING, file, service,
                f"service '{service}' runs '{image}': the Dapr version (and with it the pub/sub ack model, "
                "<=1.16 redeliver vs >=1.17 ack-and-lose) depends on when the image was pulled",
                "pin a version, e.g. daprio/daprd:1.18.3", "image",
            )


def shared_state_keys(resources: list[Resource]) -> Iterator[Finding]:
    """State stores in one Redis DB share `<appid>||<key>` keys (and TTLs)."""
    by_db: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    for res in _components(resources, "state.redis"):
        meta = {k.lower(): v for k, v in res.metadata().items()}
        by_db[(meta.get("redishost", ""), meta.get("redisdb", "0") or "0")].append(res)
    for (host, db), stores in by_db.items():
        if len(stores) > 1:
            names = ", ".join(s.name for s in stores)
            yield Finding(
                "shared-state-keyspace", Severity.INFO, stores[0].file, names,
                f"state stores {names} all use {host} DB {db}: with the default keyPrefix (the app id) the "
                "same key in two stores of one app is one Redis key, and the last writer sets its TTL",
                "give each store its own redisDB, or a distinct keyPrefix",
            )
