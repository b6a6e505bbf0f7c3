"""Counting indexes over events and applications, built once per CheckInputs.

A million operations mean about a million events and three million applications, so the
indexes avoid per-application objects: every published event gets a dense row number
(event id -> row), per-row facts live in lists/arrays, and each subscriber's applications
are counted in an `array('H')` indexed by row (2 bytes per event). Only applications of
events no publisher recorded go to a small per-subscriber dict. Both the duplicate and the
fan-out checker read the same cached index (`inputs.cache`).

Records in lists (tests, diagnostics, a real deployment's logs) are indexed here; the
stand-in's events files are folded into the same index as they are read
(`adapters.standin_stream`): `PublicationStore` and `ApplicationStore` carry the finished
table and counts, with ids, keys and per-row facts in `checkers.columnar` columns.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from kugeldrill.checkers.columns import rows
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import Application, Publication

OK_INITIAL, OK_REPUBLISH, FAILED, REJECTED = 1, 2, 4, 8
_CAP = 65535


@dataclass(slots=True)
class EventTable:
    """Events by dense row: from publications, else outbox entries, else application ids.

    state: bit set of OK_INITIAL / OK_REPUBLISH / FAILED / REJECTED over its publications
    (events known only from applications have state 0). source says which it came from.
    """

    row: dict[str, int] = field(default_factory=dict)
    event_id: list[str] = field(default_factory=list)
    topic: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    state: bytearray = field(default_factory=bytearray)
    mono: array = field(default_factory=lambda: array("d"))
    wall: array = field(default_factory=lambda: array("d"))
    source: str = ""
    published_records: bool = False  # True when rows come from publisher records
    key_index: Any = None  # columnar.HashIndex: key -> first row holding it (streamed tables)
    # The sorted hashes of the cash tokens of its cashlog keys ("scope|token", keys.scoped_cash_tokens),
    # when its reader computed them as it read (fanout computes them from the keys otherwise).
    cash_token_hashes: Any = None

    def by_key(self) -> Mapping[str, str]:
        """Business key -> the id of its first event (rows without a key left out).

        A dict for a table of records; for a streamed table (adapters.standin_stream) a view
        through a `columnar.HashIndex` over the keys, so the table's ten million keys are not
        copied into a dict of strings."""
        if self.key_index is not None:
            return _KeyView(self)
        out = dict(zip(reversed(self.key), reversed(self.event_id)))
        out.pop("", None)
        return out

    def add(self, eid: str, topic: str, key: str, state: int, mono: float, wall: float) -> int:
        r = len(self.event_id)
        self.row[eid] = r
        self.event_id.append(eid)
        self.topic.append(topic)
        self.key.append(key)
        self.state.append(state)
        self.mono.append(mono)
        self.wall.append(wall)
        return r


def event_table(inputs: CheckInputs) -> EventTable:
    cached = inputs.cache.get("events")
    if cached is not None:
        return cached
    if isinstance(inputs.publications, PublicationStore):
        inputs.cache["events"] = inputs.publications.table
        return inputs.publications.table
    t = EventTable()
    row, state = t.row, t.state
    if inputs.publications:
        t.source, t.published_records = "publications", True
        for eid, topic, key, o, attempt, mono, wall in rows(
                inputs.publications, "event_id", "topic", "key", "outcome", "attempt", "mono", "wall"):
            if not eid:
                continue
            bit = (OK_INITIAL if attempt == "initial" else OK_REPUBLISH) if o == "ok" else (
                REJECTED if o == "rejected_open" else FAILED)
            r = row.get(eid)
            if r is None:
                t.add(eid, topic, key, bit, mono, wall)
            else:
                state[r] |= bit
    elif inputs.outbox:
        t.source, t.published_records = "outbox", True
        for o in inputs.outbox:
            if o.event_id and o.event_id not in row:
                t.add(o.event_id, o.topic, o.key, FAILED if o.status == "failed" else OK_INITIAL, 0.0, 0.0)
    inputs.cache["events"] = t
    return t


def count_view(counts: Any) -> Any:
    """A subscriber's counts (array("H") per event row, or a list) as a numpy array, so that
    scans over ten million rows (`most`, `rows_above`) run at C speed."""
    if isinstance(counts, array) and counts.typecode == "H":
        return np.frombuffer(counts, dtype=np.uint16) if len(counts) else np.zeros(0, np.uint16)
    return np.asarray(counts, dtype=np.int64)


def most(counts: Any) -> int:
    """The largest count (0 for none)."""
    view = count_view(counts)
    return int(view.max()) if len(view) else 0


def rows_above(counts: Any, n: int) -> list[int]:
    """The rows counted more than `n` times, in order."""
    return np.flatnonzero(count_view(counts) > n).tolist() if len(counts) else []


@dataclass(slots=True)
class ApplicationIndex:
    """counts[subscriber][row] = applications of that event (capped at 65535);
    extra[subscriber][event_id] for events not in the table (never published, as far as
    the publisher records go); noid_by_key for records without an event id.
    Applications marked dedup="db_existing" are not effects: counted in db_existing only.
    """

    events: EventTable
    counts: dict[str, array] = field(default_factory=dict)
    extra: dict[str, dict[str, int]] = field(default_factory=dict)
    extra_topic: dict[str, str] = field(default_factory=dict)
    extra_key: dict[str, str] = field(default_factory=dict)
    noid_by_key: dict[str, dict[str, int]] = field(default_factory=dict)
    db_existing: int = 0
    total: int = 0

    def applied(self, subscriber: str, event_id: str) -> int:
        r = self.events.row.get(event_id)
        if r is not None:
            c = self.counts.get(subscriber)
            return c[r] if c is not None else 0
        return self.extra.get(subscriber, {}).get(event_id, 0)

    def subscribers(self) -> list[str]:
        return sorted(set(self.counts) | set(self.extra) | set(self.noid_by_key))


def application_index(inputs: CheckInputs) -> ApplicationIndex:
    cached = inputs.cache.get("applications")
    if cached is not None:
        return cached
    ev = event_table(inputs)
    if isinstance(inputs.applications, ApplicationStore) and inputs.applications.index.events is ev:
        inputs.cache["applications"] = inputs.applications.index
        return inputs.applications.index
    # Otherwise (the publications were replaced after the files were read) count the records
    # again against the table at hand.
    idx = ApplicationIndex(ev)
    row_get = ev.row.get
    n_rows = len(ev.event_id)
    counts, extra, noid = idx.counts, idx.extra, idx.noid_by_key
    last_sub, arr = None, None
    total = db_existing = 0
    for sub, eid, topic, key, dedup in rows(inputs.applications, "subscriber", "event_id", "topic", "key", "dedup"):
        if dedup == "db_existing":
            db_existing += 1
            continue
        total += 1
        if sub is not last_sub:
            arr = counts.get(sub)
            if arr is None:
                arr = counts[sub] = array("H", bytes(2 * n_rows))
            last_sub = sub
        if eid:
            r = row_get(eid)
            if r is not None:
                if arr[r] < _CAP:
                    arr[r] += 1
                continue
            d = extra.get(sub)
            if d is None:
                d = extra[sub] = {}
            d[eid] = d.get(eid, 0) + 1
            if eid not in idx.extra_topic:
                idx.extra_topic[eid] = topic
                idx.extra_key[eid] = key
        elif key:
            k = noid.get(sub)
            if k is None:
                k = noid[sub] = {}
            k[key] = k.get(key, 0) + 1
    idx.total, idx.db_existing = total, db_existing
    inputs.cache["applications"] = idx
    return idx


def key_index(inputs: CheckInputs) -> dict[str, dict[str, int]]:
    """by_key[subscriber][business key] = applications (all records with a key); built on demand.

    Needed only when events must be matched by business key (no publisher records);
    kept out of the main index to save memory on large runs.
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


class _KeyView(Mapping[str, str]):
    """EventTable.by_key for a streamed table."""

    def __init__(self, table: EventTable) -> None:
        self._t = table

    def __getitem__(self, key: str) -> str:
        r = self._t.key_index.get(key) if key else None
        if r is None:
            raise KeyError(key)
        return self._t.event_id[r]

    def __iter__(self) -> Iterator[str]:
        keys = self._t.key
        rows = self._t.key_index.firsts()[::-1]  # latest row first, as the dict of `by_key` gives them
        for start in range(0, len(rows), 65536):  # a slice at a time: no list of every row number
            yield from (k for k in map(keys.__getitem__, rows[start:start + 65536].tolist()) if k)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PublicationStore:
    """Publications folded into their event table as they were read (adapters.standin_stream).

    The table (one row per event id) is what the checkers judge; the publications' own
    columns (`columns`: name -> sequence, as `Publication`'s fields) stay compact, so
    iterating still gives every `Publication` record in read order."""

    def __init__(self, table: EventTable, columns: dict[str, Any]) -> None:
        self.table = table
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns["mono"])

    def __bool__(self) -> bool:
        return len(self) > 0

    def column(self, name: str) -> Any:
        return self._columns[name]

    def rows(self, *names: str) -> Iterator[tuple[Any, ...]]:
        return zip(*(self._columns[n] for n in names))

    def __iter__(self) -> Iterator[Publication]:
        return (Publication(*values) for values in self.rows(
            "publisher", "event_id", "topic", "key", "mono", "wall", "outcome", "attempt"))


class ApplicationStore:
    """Applications folded into counts per subscriber and event row as they were read.

    No record is kept: `index` holds the counts (and the few applications of events no
    publisher recorded). The records themselves are read again from their files when a
    checker needs them -- every one (`__iter__`, for small runs and reports), or only those
    of the events applied more than once (`records_of`, the duplicate checker)."""

    def __init__(self, index: ApplicationIndex, total: int, reread: Callable[[], Iterator[Application]]) -> None:
        self.index = index
        self._total = total
        self._reread = reread

    def __len__(self) -> int:
        return self._total

    def __bool__(self) -> bool:
        return self._total > 0

    def __iter__(self) -> Iterator[Application]:
        return self._reread()

    def rows(self, *names: str) -> Iterator[tuple[Any, ...]]:
        return map(attrgetter(*names), self._reread()) if len(names) > 1 else (
            (getattr(a, names[0]),) for a in self._reread())
