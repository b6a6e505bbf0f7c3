"""Counting indexes over applications and publications, built once per CheckInputs.

The duplicate and fan-out checkers both need "how many times did subscriber S apply
event E"; at a million operations that is several million records, so the index is a
plain dict per subscriber keyed by the (interned) event id string -- no per-record tuples
or objects -- and is cached in `inputs.cache` for the next checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from checkers.inputs import CheckInputs


@dataclass(slots=True)
class ApplicationIndex:
    """by_event[subscriber][event_id] = applications; noid_by_key likewise for records without ids.

    Applications marked dedup="db_existing" (the repository skipped an existing document)
    are not effects and are counted apart in `db_existing`.
    """

    by_event: dict[str, dict[str, int]] = field(default_factory=dict)
    noid_by_key: dict[str, dict[str, int]] = field(default_factory=dict)  # records with no event id
    keys_by_event: dict[str, str] = field(default_factory=dict)  # event id -> business key (first seen)
    topic_by_event: dict[str, str] = field(default_factory=dict)
    db_existing: int = 0
    total: int = 0


def application_index(inputs: CheckInputs) -> ApplicationIndex:
    cached = inputs.cache.get("applications")
    if cached is not None:
        return cached
    idx = ApplicationIndex()
    by_event, noid = idx.by_event, idx.noid_by_key
    keys_by_event, topic_by_event = idx.keys_by_event, idx.topic_by_event
    for a in inputs.applications:
        if a.dedup == "db_existing":
            idx.db_existing += 1
            continue
        idx.total += 1
        eid = a.event_id
        if eid:
            d = by_event.get(a.subscriber)
            if d is None:
                d = by_event[a.subscriber] = {}
            d[eid] = d.get(eid, 0) + 1
            if eid not in keys_by_event:
                keys_by_event[eid] = a.key
                topic_by_event[eid] = a.topic
        elif a.key:
            k = noid.get(a.subscriber)
            if k is None:
                k = noid[a.subscriber] = {}
            k[a.key] = k.get(a.key, 0) + 1
    inputs.cache["applications"] = idx
    return idx


def key_index(inputs: CheckInputs) -> dict[str, dict[str, int]]:
    """by_key[subscriber][business key] = applications (all records with a key); built on demand.

    Needed only when events must be matched by business key (no publisher records, or
    history operations); kept out of the main index to save memory on large runs.
    """
    cached = inputs.cache.get("applications_by_key")
    if cached is not None:
        return cached
    by_key: dict[str, dict[str, int]] = {}
    for a in inputs.applications:
        if a.dedup == "db_existing" or not a.key:
            continue
        k = by_key.get(a.subscriber)
        if k is None:
            k = by_key[a.subscriber] = {}
        k[a.key] = k.get(a.key, 0) + 1
    inputs.cache["applications_by_key"] = by_key
    return by_key
