"""A real Kugelpos deployment's observable traces -> CheckInputs (contracts §8).

Kugelpos exposes no breaker state, no event ids to clients and no application records, so
this adapter reads what it does leave behind (docs/kugelpos-facts.md §5.7 "usable signals"): its
plain-text logs (breakers, applications, skips), Dapr's Redis (idempotency markers and
stream consumer groups) and, when pymongo is installed, the publishers' outboxes in
MongoDB. History and timeline come from the run folder as for the stand-in. Log times
are wall clock; they are put on the run's monotonic axis with the timeline's t0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from kugeldrill.checkers.adapters.history import load_history
from kugeldrill.checkers.adapters.kugelpos_logs import DEFAULT_MAX_CALL_SECONDS, LOG_FIELDS, parse_log_files
from kugeldrill.checkers.adapters.mongo import read_outbox
from kugeldrill.checkers.adapters.redis_state import SUBSCRIBERS, TOPICS, connect, read_markers, read_stream_groups
from kugeldrill.checkers.adapters.timeline import load_timeline
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.ground.runfolder import RunFolder


@dataclass(slots=True)
class ObservationSources:
    """Where a target's traces are (the target file's observation sources).

    logs: app -> log files; the app "" means compose-style streams whose line prefix
    (`report-1  | ...`) names the service. clock_offset: mono − wall; None = from timeline.
    max_call_seconds: the longest one Dapr call of the target can take (a call logged while
    OPEN within this of the opening was admitted before it). since_wall: log lines older
    than this (before the drill) only set breaker state, and outbox events published
    earlier are not this drill's; tenant_id: the tenant the drill provisioned (outbox
    events of other tenants are not this drill's).
    """

    logs: Mapping[str, Iterable[str | Path]] = field(default_factory=dict)
    redis_url: str | None = None
    mongo_url: str | None = None
    mongo_db_prefix: str = "db"
    subscribers: tuple[str, ...] = SUBSCRIBERS
    topics: tuple[str, ...] = TOPICS
    allow_hosts: tuple[str, ...] = ()
    timeout: float = 5.0
    clock_offset: float | None = None
    max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS
    since_wall: float | None = None
    tenant_id: str | None = None  # the drill's own tenant: the outbox holds only its events


def load_kugelpos_inputs(run_dir: str | Path | None, sources: ObservationSources) -> CheckInputs:
    """History + timeline of the run, then logs, Redis and MongoDB of the target."""
    inputs = CheckInputs()
    base = Path(run_dir) if run_dir is not None else None
    if base is not None:
        inputs.merge(load_history(RunFolder(base).history_jsonl))
        inputs.merge(load_timeline(RunFolder(base).timeline_json))
    else:
        inputs.mark_missing("ops", "no run folder")
        inputs.mark_missing("faults", "no run folder")
    offset = sources.clock_offset
    if offset is None:
        offset = inputs.clock_offset
    if offset is None:
        offset = 0.0
        inputs.notes.append("no clock offset: log times are compared as wall clock")
    if sources.logs:
        inputs.merge(parse_log_files(sources.logs, clock_offset=offset, max_call_seconds=sources.max_call_seconds,
                                     since_wall=sources.since_wall))
    else:
        for name in LOG_FIELDS:
            inputs.mark_missing(name, "no log source in the target's observation sources")
    if sources.redis_url:
        try:
            client = connect(sources.redis_url, timeout=sources.timeout, allow_hosts=sources.allow_hosts)
            try:
                inputs.markers = read_markers(client, sources.subscribers)
                inputs.mark("markers", f"Redis {sources.redis_url} <app>||<event_id> hashes")
                inputs.stream_groups = read_stream_groups(client, sources.topics)
                inputs.mark("stream_groups", f"Redis {sources.redis_url} XINFO GROUPS")
            finally:
                client.close()
        except redis.RedisError as exc:
            inputs.mark_missing("markers", f"Redis unreachable: {exc}")
            inputs.mark_missing("stream_groups", f"Redis unreachable: {exc}")
    else:
        inputs.mark_missing("markers", "no Redis URL in the observation sources")
        inputs.mark_missing("stream_groups", "no Redis URL in the observation sources")
    if sources.mongo_url:
        inputs.merge(read_outbox(sources.mongo_url, db_prefix=sources.mongo_db_prefix, timeout=sources.timeout,
                                 allow_hosts=sources.allow_hosts, since_wall=sources.since_wall,
                                 tenant_id=sources.tenant_id))
    else:
        inputs.mark_missing("outbox", "no MongoDB URL in the observation sources")
    inputs.mark_missing("publications", "Kugelpos records publications only in its outbox (see outbox)")
    return inputs
