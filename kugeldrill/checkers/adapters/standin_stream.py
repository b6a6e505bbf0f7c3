"""The stand-in's events files read in one pass, publications and applications folded as they come.

A drill of millions of operations writes tens of millions of `publish` and `applied` lines
(one publication and two or three applications per operation). Kept as records they cost
hundreds of bytes each; what the checkers judge is per *event*: which event ids were
published (and how), and how often each subscriber applied each one. So:

* publications become the event table (`index.EventTable`: one row per event id, its
  topic, business key, outcome bits and first time; ids and keys in `columnar.StrColumn`s,
  looked up through a `columnar.HashIndex`), plus a few bytes per publication;
* applications are counted per subscriber and event row as each block of lines is decoded
  (`index.ApplicationIndex`); only those of events no publisher recorded are kept by id.

Memory therefore grows with the number of distinct events, not with the number of lines.
Files are decoded a block at a time by msgspec with only the fields the checkers read
(`ground.jsonl.decode_block`). Publishers' files are read first, so an application finds
its event's row as it is counted; an application read before its event's publication
(files in another order) waits among the unmatched ones and is counted into its row once
the publication is read. Every other kind of event (breaker transitions and calls, mark
writes, crashes, ...) becomes its usual record through `standin.EventConverter`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from kugeldrill.checkers.columnar import CodedColumn, HashIndex, StrColumn, Taken, hashes
from kugeldrill.checkers.index import (
    FAILED,
    OK_INITIAL,
    OK_REPUBLISH,
    REJECTED,
    ApplicationIndex,
    ApplicationStore,
    EventTable,
    PublicationStore,
)
from kugeldrill.checkers.keys import event_key
from kugeldrill.checkers.model import Application
from kugeldrill.ground.jsonl import decode_block, read_blocks

_CAP = 65535
PUBLISHERS = ("cart", "terminal")  # their files are read first (see the module docstring)


class _Raw(msgspec.Struct, gc=False, rename={"from_": "from", "to_": "to"}):
    """One events-file line (docs/contracts.md §3): every field any kind carries, untyped
    (`Any`) so that no value of an unexpected type sends a block to the slow path;
    payload_keys stays raw JSON until a key is needed."""

    kind: Any = None
    service: Any = ""
    mono: Any = 0.0
    ts: Any = None
    wall: Any = None
    event_id: Any = None
    topic: Any = ""
    subscriber: Any = None
    attempt: Any = None
    dedup: Any = None
    outcome: Any = None
    payload_keys: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    breaker: Any = None
    from_: Any = None
    to_: Any = None
    failures: Any = None
    reason: Any = None
    state: Any = None
    op: Any = None
    admitted_mono: Any = None
    key: Any = None
    error: Any = None
    ok: Any = None
    started_mono: Any = None


_DECODER = msgspec.json.Decoder(_Raw)
_PAYLOAD = msgspec.json.Decoder()
_FIELDS = tuple(_Raw.__struct_fields__)
_NAMES = tuple({"from_": "from", "to_": "to"}.get(f, f) for f in _FIELDS)


def _payload(raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, msgspec.Raw):
        if not len(raw):  # absent from the line
            return {}
        value = _PAYLOAD.decode(raw)
        return value if isinstance(value, Mapping) else {}
    return raw if isinstance(raw, Mapping) else {}


def _payloads(raws: list[Any]) -> list[Mapping[str, Any]]:
    """The payload_keys of a block of lines, decoded in one call where all are raw objects."""
    if all(type(r) is msgspec.Raw and len(r) for r in raws):
        try:
            values = _PAYLOAD.decode_lines(b"\n".join(raws))
        except msgspec.DecodeError:
            values = []
        if len(values) == len(raws) and all(type(v) is dict for v in values):
            return values
    return [_payload(r) for r in raws]


def _as_record(rec: dict[str, Any]) -> _Raw:
    """A line the typed decoder could not take, as a plain dict (see decode_block), as an `_Raw`."""
    d = {f: rec.get(n) for f, n in zip(_FIELDS, _NAMES) if n in rec}
    d.setdefault("service", "")
    d.setdefault("mono", 0.0)
    d.setdefault("topic", "")
    return _Raw(**d)


def _as_dict(rec: _Raw) -> dict[str, Any]:
    """An event of another kind as the dict `EventConverter` takes."""
    d = {n: v for n, v in zip(_NAMES, (getattr(rec, f) for f in _FIELDS)) if v is not None}
    d["payload_keys"] = _payload(rec.payload_keys)
    return d


def _all_str(values: list[Any]) -> bool:
    return set(map(type, values)) <= {str}


def _wall(rec: _Raw) -> float:
    return float((rec.ts if rec.ts is not None else rec.wall) or 0.0)


def _bit(outcome: Any, attempt: Any) -> int:
    if outcome == "ok":
        return OK_INITIAL if attempt == "initial" else OK_REPUBLISH
    return REJECTED if outcome == "rejected_open" else FAILED


def application_of(rec: _Raw) -> Application:
    """The `Application` record of an `applied` line (as `standin.EventConverter` makes it)."""
    topic = str(rec.topic if rec.topic is not None else "")
    return Application(
        subscriber=str(rec.subscriber or rec.service), event_id=str(rec.event_id) if rec.event_id else None,
        topic=topic, key=event_key(topic, _payload(rec.payload_keys)), mono=float(rec.mono or 0.0),
        wall=_wall(rec), attempt=rec.attempt, dedup=str(rec.dedup or ""))


def reread_applications(files: Sequence[tuple[Path, int]]) -> Iterator[Application]:
    """Every application of the files again, in read order (checkers.index.ApplicationStore):
    (path, bytes read the first time) each, so lines a service wrote since are not among them."""
    for path, size in files:
        for _base, block in read_blocks(path, limit=size):
            for rec in decode_block(_DECODER, block, coerce=_as_record):
                if rec.kind == "applied":
                    yield application_of(rec)


class _Publications:
    """Every publication as read: ids and keys in buffers, the rest in typed arrays."""

    def __init__(self) -> None:
        self.event_id = StrColumn()
        self.key = StrColumn()
        self.hash = array("q")
        self.key_hash = array("q")
        self.topic = CodedColumn()
        self.outcome = CodedColumn()
        self.attempt = CodedColumn()
        self.publisher = CodedColumn()
        self.bit = bytearray()
        self.mono = array("d")
        self.wall = array("d")

    def add(self, recs: list[_Raw]) -> None:
        eids = [str(r.event_id or "") for r in recs]
        topics = [str(r.topic if r.topic is not None else "") for r in recs]
        self.event_id.extend(eids)
        self.hash.extend(hashes(eids).tolist())
        keys = list(map(event_key, topics, _payloads([r.payload_keys for r in recs])))
        self.key.extend(keys)
        self.key_hash.extend(hashes(keys).tolist())
        self.topic.extend(topics)
        outcomes = [r.outcome if r.outcome is not None else "ok" for r in recs]
        attempts = [r.attempt if r.attempt is not None else "initial" for r in recs]
        self.outcome.extend(outcomes)
        self.attempt.extend(attempts)
        self.publisher.extend([str(r.service) for r in recs])
        self.bit.extend(map(_bit, outcomes, attempts))
        self.mono.extend([float(r.mono or 0.0) for r in recs])
        self.wall.extend([_wall(r) for r in recs])

    def __len__(self) -> int:
        return len(self.bit)

    def table(self) -> EventTable:
        """The event table: rows in order of first publication (an empty id is no event)."""
        h = np.frombuffer(self.hash, dtype=np.int64) if len(self.hash) else np.zeros(0, np.int64)
        key_h = np.frombuffer(self.key_hash, dtype=np.int64) if len(self.key_hash) else np.zeros(0, np.int64)
        lengths = self.event_id.lengths()
        if len(h) and bool(lengths.all()):
            order = np.argsort(h, kind="stable")
            srt = h[order]
            if not bool((srt[1:] == srt[:-1]).any()):
                del h
                return self._one_row_each(srt, order, key_h)
        pos = np.flatnonzero(lengths > 0)
        _u, first, inverse = np.unique(h[pos], return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        by_first = np.argsort(first, kind="stable")
        rank[by_first] = np.arange(len(first))
        pub_row = np.full(len(h), -1, dtype=np.int64)
        pub_row[pos] = rank[inverse]
        first_pub = pos[first[by_first]]  # row -> its first publication
        # Publications merged into an earlier row by hash: the ids must be equal (else two ids
        # share a 64-bit hash: give the later one a row of its own).
        later = pos[np.flatnonzero(first_pub[pub_row[pos]] != pos)]
        extra_rows: list[int] = []
        eid_col = self.event_id
        for i in later.tolist():
            r = int(pub_row[i])
            if eid_col[int(first_pub[r])] != eid_col[i]:
                pub_row[i] = len(first_pub) + len(extra_rows)
                extra_rows.append(i)
        if extra_rows:
            first_pub = np.concatenate([first_pub, np.array(extra_rows, dtype=np.int64)])
        state = np.zeros(len(first_pub), dtype=np.uint8)
        np.bitwise_or.at(state, pub_row[pos], np.frombuffer(self.bit, dtype=np.uint8)[pos])
        t = EventTable()
        t.event_id = Taken(eid_col, first_pub)  # type: ignore[assignment]
        t.key = Taken(self.key, first_pub)  # type: ignore[assignment]
        t.topic = Taken(self.topic, first_pub)  # type: ignore[assignment]
        t.state = bytearray(state.tobytes())
        mono = np.frombuffer(self.mono, dtype=np.float64)
        wall = np.frombuffer(self.wall, dtype=np.float64)
        t.mono = array("d", mono[first_pub].tobytes()) if len(first_pub) else array("d")
        t.wall = array("d", wall[first_pub].tobytes()) if len(first_pub) else array("d")
        t.row = HashIndex(t.event_id, h[first_pub])  # type: ignore[assignment]
        t.key_index = HashIndex(t.key, key_h[first_pub])
        if len(self):
            t.source, t.published_records = "publications", True
        return t

    def _one_row_each(self, srt: np.ndarray, order: np.ndarray, key_h: np.ndarray) -> EventTable:
        """The table when every publication is of another event (no republish, no empty id):
        the rows are the publications, the columns shared, not copied."""
        t = EventTable()
        t.event_id, t.key, t.topic = self.event_id, self.key, self.topic  # type: ignore[assignment]
        t.state = bytearray(self.bit)
        t.mono, t.wall = self.mono, self.wall
        t.row = HashIndex.presorted(self.event_id, srt, order)  # type: ignore[assignment]
        t.key_index = HashIndex(self.key, key_h)
        t.source, t.published_records = "publications", True
        return t

    def drop_hashes(self) -> None:
        """Once the last table is built: the indexes keep their own sorted copies."""
        self.hash, self.key_hash = array("q"), array("q")


class _Applications:
    """Applications counted per subscriber and event row, block by block."""

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}  # uint16 per row
        self.extra: dict[str, dict[str, int]] = {}
        self.extra_topic: dict[str, str] = {}
        self.extra_key: dict[str, str] = {}
        self.extra_payload: dict[str, Any] = {}
        self.noid: dict[str, dict[str, int]] = {}
        self.total = self.db_existing = self.records = 0
        self.waiting: list[list[_Raw]] = []  # blocks read before any publication table existed

    def add(self, recs: list[_Raw], table: EventTable | None) -> None:
        if table is None:
            self.waiting.append(recs)
            return
        self.records += len(recs)
        dedups = [r.dedup for r in recs]
        if "db_existing" in dedups:
            recs = [r for r, d in zip(recs, dedups) if d != "db_existing"]
            self.db_existing += len(dedups) - len(recs)
        self.total += len(recs)
        subs = [r.subscriber or r.service for r in recs]
        eids = [r.event_id for r in recs]
        if not _all_str(subs):
            subs = [str(s) for s in subs]
        n_rows = len(table.state)
        for sub in set(subs) - self.counts.keys():  # every subscriber that applied anything has its counts
            self.counts[sub] = np.zeros(n_rows, dtype=np.uint16)
        if not _all_str(eids) or "" in eids:
            for r, sub, eid in zip(recs, subs, eids):
                if not eid:
                    key = event_key(str(r.topic if r.topic is not None else ""), _payload(r.payload_keys))
                    if key:
                        d = self.noid.setdefault(sub, {})
                        d[key] = d.get(key, 0) + 1
            keep = [i for i, e in enumerate(eids) if e]
            recs, subs, eids = [recs[i] for i in keep], [subs[i] for i in keep], [str(eids[i]) for i in keep]
        if not eids:
            return
        rows = table.row.lookup(eids)  # type: ignore[attr-defined]
        distinct = set(subs)
        for sub in distinct:
            if len(distinct) == 1:
                mine = rows[rows >= 0]
            else:
                mask = np.fromiter((s == sub for s in subs), dtype=np.bool_, count=len(subs))
                mine = rows[mask & (rows >= 0)]
            if len(mine):
                u, n = np.unique(mine, return_counts=True)
                acc = self.counts[sub]  # capped at 65535, as index.application_index counts
                acc[u] = np.minimum(acc[u].astype(np.int64) + n, _CAP)
        for i in np.flatnonzero(rows < 0).tolist():
            sub, eid, r = subs[i], eids[i], recs[i]
            d = self.extra.setdefault(sub, {})
            d[eid] = d.get(eid, 0) + 1
            if eid not in self.extra_topic:
                self.extra_topic[eid] = str(r.topic if r.topic is not None else "")
                self.extra_payload[eid] = r.payload_keys

    def rehome(self, table: EventTable) -> None:
        """Grow the counts to a larger table and count the unmatched applications whose
        event a later publication recorded."""
        n_rows = len(table.state)
        for sub, acc in self.counts.items():
            if len(acc) < n_rows:
                self.counts[sub] = np.concatenate([acc, np.zeros(n_rows - len(acc), dtype=np.uint16)])
        for sub, d in self.extra.items():
            for eid in [e for e in d if e in table.row]:
                acc = self.counts.get(sub)
                if acc is None:
                    acc = self.counts[sub] = np.zeros(n_rows, dtype=np.uint16)
                r = table.row.get(eid)
                acc[r] = min(int(acc[r]) + d.pop(eid), _CAP)

    def index(self, table: EventTable) -> ApplicationIndex:
        idx = ApplicationIndex(table)
        order = list(self.counts) + [s for s in self.extra if s not in self.counts]
        for sub in order:
            acc = self.counts.get(sub)
            if acc is None:
                continue
            idx.counts[sub] = array("H", acc.tobytes())
        for sub, d in self.extra.items():
            if d:
                idx.extra[sub] = d
        live = {eid for d in idx.extra.values() for eid in d}
        for eid in live:
            idx.extra_topic[eid] = self.extra_topic[eid]
            idx.extra_key[eid] = event_key(self.extra_topic[eid], _payload(self.extra_payload[eid]))
        idx.noid_by_key = self.noid
        idx.total, idx.db_existing = self.total, self.db_existing
        return idx


def read_folded(files: Mapping[str, Path], converter: Any) -> tuple[PublicationStore, ApplicationStore]:
    """Read the events files (publishers' first) in one pass each; other kinds of event go
    to `converter` (standin.EventConverter) in file order."""
    ordered = sorted(files.items(), key=lambda kv: kv[0] not in PUBLISHERS)  # stable: publishers first
    pubs, apps = _Publications(), _Applications()
    table: EventTable | None = None
    sealed_at = 0
    app_files: list[tuple[Path, int]] = []
    for _app, path in ordered:
        has_apps = False
        size = 0
        for base, block in read_blocks(path):
            size = base + len(block)
            recs = decode_block(_DECODER, block, coerce=_as_record)
            kinds = [r.kind for r in recs]
            published: list[_Raw] = []
            applied: list[_Raw] = []
            if kinds.count("applied") == len(recs):  # a subscriber's file: nothing else in the block
                applied = recs
            else:
                for kind, rec in zip(kinds, recs):
                    if kind == "applied":
                        applied.append(rec)
                    elif kind == "publish":
                        published.append(rec)
                    else:
                        converter.add(_as_dict(rec))
            if published:
                pubs.add(published)
            if applied:
                has_apps = True
                if table is None or len(pubs) != sealed_at:
                    if len(pubs):
                        table = pubs.table()
                        sealed_at = len(pubs)
                        apps.rehome(table)
                        for waiting in apps.waiting:
                            apps.add(waiting, table)
                        apps.waiting.clear()
                    else:
                        table = None
                apps.add(applied, table)
        if has_apps:
            app_files.append((path, size))
    if len(pubs) != sealed_at or table is None:
        table = pubs.table()
        apps.rehome(table)
    for waiting in apps.waiting:
        apps.add(waiting, table)
    apps.waiting.clear()
    pubs.drop_hashes()
    publication_store = PublicationStore(table, {
        "publisher": pubs.publisher, "event_id": pubs.event_id, "topic": pubs.topic, "key": pubs.key,
        "mono": pubs.mono, "wall": pubs.wall, "outcome": pubs.outcome, "attempt": pubs.attempt})
    app_store = ApplicationStore(apps.index(table), apps.records, lambda: reread_applications(app_files))
    return publication_store, app_store
