"""Dapr's Redis layout -> idempotency markers and stream consumer groups.

Markers: Dapr's state.redis stores key `<app-id>||<key>` as a hash with `data` and
`version` in DB 0 (Kugelpos' `databaseIndex` is ignored, kugelpos.md Surprise 13); the
subscribers' idempotency key is the bare event id, so `report||<event_id>` says report
processed that event, and `version` counts how often it saved the marker.
Streams: pubsub.redis uses one stream per topic and one consumer group per app id
(consumerID); XINFO GROUPS gives each group's lag (Redis >= 7) and pending entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG, IdempotencyMarker, StreamGroup
from kugeldrill.ground.netguard import require_loopback

TOPICS = (TOPIC_TRANLOG, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG)
SUBSCRIBERS = ("report", "journal", "stock")


def connect(url: str, *, timeout: float = 5.0, allow_hosts: Iterable[str] = ()) -> redis.Redis:
    """A client with connect and socket timeouts, after the loopback guard."""
    require_loopback(url, allow_hosts=allow_hosts, what="Redis URL")
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_markers(client: redis.Redis, apps: Sequence[str] = SUBSCRIBERS, *, batch: int = 1000) -> list[IdempotencyMarker]:
    """Every `<app>||<id>` hash of the given apps with its version and TTL (health-check keys skipped)."""
    out: list[IdempotencyMarker] = []
    for app in apps:
        prefix = f"{app}||"
        keys = [_text(k) for k in client.scan_iter(match=f"{prefix}*", count=batch)]
        for i in range(0, len(keys), batch):
            chunk = [k for k in keys[i:i + batch] if not k[len(prefix):].startswith("health-check")]
            pipe = client.pipeline(transaction=False)
            for k in chunk:
                pipe.type(k)
                pipe.hget(k, "version")
                pipe.ttl(k)
            res = pipe.execute(raise_on_error=False)
            for j, k in enumerate(chunk):
                ktype, version, ttl = res[3 * j], res[3 * j + 1], res[3 * j + 2]
                if _text(ktype) != "hash":
                    continue
                try:
                    ver = int(version) if version is not None else None
                except (TypeError, ValueError):
                    ver = None
                out.append(IdempotencyMarker(app, k[len(prefix):], ver, ttl if isinstance(ttl, int) else None))
    return out


def read_stream_groups(client: redis.Redis, topics: Sequence[str] = TOPICS) -> list[StreamGroup]:
    """XINFO GROUPS of each topic stream; a topic with no stream yet gives no groups."""
    out: list[StreamGroup] = []
    for topic in topics:
        try:
            groups = client.xinfo_groups(topic)
        except redis.ResponseError:  # no such key
            continue
        for g in groups:
            lag = g.get("lag")
            out.append(StreamGroup(
                topic=topic,
                group=_text(g.get("name", "")),
                lag=int(lag) if lag is not None else None,
                pending=int(g.get("pending", 0) or 0),
                consumers=int(g.get("consumers", 0) or 0),
            ))
    return out
