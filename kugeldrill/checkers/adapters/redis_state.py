"""Dapr's Redis layout -> idempotency markers and stream consumer groups.

Markers: Dapr's state.redis stores key `<app-id>||<key>` as a hash with `data` and
`version` in DB 0 (Kugelpos' `databaseIndex` is ignored, docs/kugelpos-facts.md Surprise 13); the
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


def inventory(client: redis.Redis, apps: Sequence[str] = SUBSCRIBERS, topics: Sequence[str] = TOPICS,
              *, batch: int = 1000) -> dict[str, object]:
    """What Redis holds for the drill, as numbers: what a restart without persistence loses.

    keys (every database, from INFO keyspace), idempotency markers per subscriber
    (`<app>||<id>`, health checks excluded) in whichever database the state store uses
    (Kugelpos: 0, its `databaseIndex` being ignored; the stand-in's spec-true `redisDB`: 1),
    stream entries per topic, consumer groups per topic with their pending entries (read
    but unacknowledged) and lag, and the totals.
    """
    keyspace = client.info("keyspace")
    markers: dict[str, int] = dict.fromkeys(apps, 0)
    clients = _db_clients(client)
    try:
        for _db, c in clients:
            for app in apps:
                prefix = f"{app}||"
                markers[app] += sum(1 for k in c.scan_iter(match=f"{prefix}*", count=batch)
                                    if not _text(k)[len(prefix):].startswith("health-check"))
    finally:
        for _db, c in clients:
            if c is not client:
                c.close()
    streams: dict[str, int] = {}
    for topic in topics:
        try:
            streams[topic] = int(client.xlen(topic))
        except redis.ResponseError:
            streams[topic] = 0
    groups = read_stream_groups(client, topics)
    return {
        "keys": sum(int(v.get("keys", 0)) for k, v in keyspace.items() if k.startswith("db") and isinstance(v, dict)),
        "markers": markers,
        "markers_total": sum(markers.values()),
        "stream_entries": streams,
        "stream_entries_total": sum(streams.values()),
        "groups": [{"topic": g.topic, "group": g.group, "pending": g.pending, "lag": g.lag} for g in groups],
        "groups_total": len(groups),
        "pending_total": sum(g.pending for g in groups),
    }


_CLIENT_KWARGS = ("host", "port", "username", "password", "socket_timeout", "socket_connect_timeout",
                  "decode_responses")


def _same_server(client: redis.Redis, db: int) -> redis.Redis:
    """A client for database `db` of the server `client` talks to (same address and timeouts)."""
    base = client.connection_pool.connection_kwargs
    return redis.Redis(db=db, **{k: base[k] for k in _CLIENT_KWARGS if k in base})


def _db_clients(client: redis.Redis) -> list[tuple[int, redis.Redis]]:
    """(db number, client) for every database INFO keyspace lists (callers close the extra ones)."""
    keyspace = client.info("keyspace")
    own = client.connection_pool.connection_kwargs.get("db", 0)
    out = []
    for name in sorted(keyspace):
        if name.startswith("db") and name[2:].isdigit():
            db = int(name[2:])
            out.append((db, client if db == own else _same_server(client, db)))
    return out


def survival_reference(client: redis.Redis, apps: Sequence[str] = SUBSCRIBERS, topics: Sequence[str] = TOPICS,
                       *, batch: int = 1000, max_markers: int = 100_000) -> dict[str, object]:
    """Identities to look for after a restart: marker keys, each stream's last entry id, each
    group's last-delivered id. Kept in memory by the observer (not written anywhere)."""
    marker_keys: list[tuple[int, str]] = []
    clients = _db_clients(client)
    try:
        for db, c in clients:
            for app in apps:
                for k in c.scan_iter(match=f"{app}||*", count=batch):
                    if len(marker_keys) < max_markers and not _text(k)[len(app) + 2:].startswith("health-check"):
                        marker_keys.append((db, _text(k)))
    finally:
        for _, c in clients:
            if c is not client:
                c.close()
    last_ids: dict[str, str] = {}
    groups: dict[tuple[str, str], str] = {}
    for topic in topics:
        try:
            last = client.xrevrange(topic, count=1)
            for g in client.xinfo_groups(topic):
                groups[(topic, _text(g.get("name", "")))] = _text(g.get("last-delivered-id", "0-0"))
        except redis.ResponseError:
            continue
        if last:
            last_ids[topic] = _text(last[0][0])
    return {"marker_keys": marker_keys, "stream_last_ids": last_ids, "group_last_ids": groups}


def survival(client: redis.Redis, reference: dict[str, object], *, chunk: int = 1000,
             cap: int = 1_000_000) -> dict[str, int]:
    """How much of what `reference` saw is still there after a restart: the markers (by
    key), the stream entries up to each stream's old last id, and — on streams whose old
    entries survived (a lost stream takes its groups with it; a group the sidecar
    re-created on the new stream is not a survivor) — the groups and their pending entries
    up to the old last id."""
    marker_keys: list[tuple[int, str]] = list(reference.get("marker_keys") or [])  # type: ignore[arg-type]
    clients = dict(_db_clients(client))
    survived_markers = 0
    try:
        by_db: dict[int, list[str]] = {}
        for db, key in marker_keys:
            by_db.setdefault(db, []).append(key)
        for db, keys in by_db.items():
            c = clients.get(db)
            if c is None:
                continue  # that database is empty now
            for i in range(0, len(keys), chunk):
                survived_markers += int(c.exists(*keys[i:i + chunk]))
    finally:
        for c in clients.values():
            if c is not client:
                c.close()
    entries = pending = groups = 0
    last_ids: dict[str, str] = reference.get("stream_last_ids") or {}  # type: ignore[assignment]
    group_ids: dict[tuple[str, str], str] = reference.get("group_last_ids") or {}  # type: ignore[assignment]
    for topic, last in last_ids.items():
        try:
            old = len(client.xrange(topic, "-", last, count=cap))
        except redis.ResponseError:
            old = 0
        entries += old
        if not old:
            continue
        try:
            now = {_text(g.get("name", "")) for g in client.xinfo_groups(topic)}
        except redis.ResponseError:
            continue
        for (t, group) in group_ids:
            if t == topic and group in now:
                groups += 1
                try:
                    pending += len(client.xpending_range(topic, group, min="-", max=last, count=cap))
                except redis.ResponseError:
                    pass
    return {"markers_survived": survived_markers, "stream_entries_survived": entries,
            "groups_survived": groups, "pending_survived": pending}
