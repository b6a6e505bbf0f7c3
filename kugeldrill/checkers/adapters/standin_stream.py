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
Files are decoded a block at a time by msgspec with only the fields the checkers read,
typed where the block allows (adapters.event_lines). Publishers' files are read first, so
an application finds its event's row as it is counted; an application read before its
event's publication (files in another order) waits among the unmatched ones and is counted
into its row once the publication is read. Every other kind of event (breaker transitions
and calls, mark writes, crashes, ...) becomes its usual record through
`standin.EventConverter`.

Once the publishers' files made the table, a large run's subscribers' files are cut into
pieces shared between this process and a forked reader (adapters.aside; the history is read
in another one meanwhile), each taking the next piece from its own end until none is left:
the forked reader inherits the table, counts its pieces into counts of its own, and hands
them back with the records it converted; they add up to what one reader would have counted,
in the same order (`read_folded`). This process merges the history as soon as its reader
ended, between two pieces, while the forked reader goes on claiming: neither core waits.
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from kugeldrill.checkers.adapters.aside import Aside, AsideFailed, can_fork
from kugeldrill.checkers.adapters.event_lines import (
    AppliedLine,
    LooseLine,
    PublishLine,
    decode_events,
    decode_loose,
    payload_of,
    payloads_of,
    wall_of,
)
from kugeldrill.checkers.columnar import (
    CodedColumn,
    HashIndex,
    StrColumn,
    Taken,
)
from kugeldrill.checkers.hashindex import sorted_unique, stable_argsort
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
from kugeldrill.checkers.keys import (
    event_key,
    plain_event_keys,
    plain_tran_keys,
    scoped_cash_tokens,
)
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_TRANLOG, Application
from kugeldrill.ground.gzfiles import GZ_SUFFIX
from kugeldrill.ground.jsonl import line_start, read_blocks
from kugeldrill.ground.malloc import freed_memory_kept

_CAP = 65535
PUBLISHERS = ("cart", "terminal")  # their files are read first (see the module docstring)


def _all_str(values: list[Any]) -> bool:
    return set(map(type, values)) <= {str}


def _bit(outcome: Any, attempt: Any) -> int:
    if outcome == "ok":
        return OK_INITIAL if attempt == "initial" else OK_REPUBLISH
    return REJECTED if outcome == "rejected_open" else FAILED


def application_of(rec: LooseLine) -> Application:
    """The `Application` record of an `applied` line (as `standin.EventConverter` makes it)."""
    topic = str(rec.topic if rec.topic is not None else "")
    return Application(
        subscriber=str(rec.subscriber or rec.service), event_id=str(rec.event_id) if rec.event_id else None,
        topic=topic, key=event_key(topic, payload_of(rec.payload_keys)), mono=float(rec.mono or 0.0),
        wall=wall_of(rec), attempt=rec.attempt, dedup=str(rec.dedup or ""))


def reread_applications(parts: Sequence[Part]) -> Iterator[Application]:
    """Every application of the files again, in read order (checkers.index.ApplicationStore):
    each part as far as it was read the first time, so lines a service wrote since are not
    among them."""
    for path, start, stop in parts:
        for _base, block in read_blocks(path, limit=stop, start=start):
            for rec in decode_loose(block):
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
        self.cash_tokens = array("q")  # hashes of the cash tokens of every cashlog key (fanout's bulk match)
        self.dropped = self.cash_tokens_lost = False  # see drop_hashes
        self.key_rows: np.ndarray | None = None  # the publications the last table's rows are (None: all)

    def add(self, recs: list[Any]) -> None:
        """A block's publications: typed lines (event_lines.PublishLine) as they are, loose
        ones converted value by value (the same values for the same line)."""
        self._restore_hashes()
        if type(recs[0]) is PublishLine:
            eids = [r.event_id for r in recs]
            topics = [r.topic for r in recs]
            ids = [r.payload_keys for r in recs]
            tokens: list[str] | None = None
            if topics.count(TOPIC_TRANLOG) == len(recs) and None not in ids and [
                    p.transaction_no for p in ids].count(None) == 0:
                keys = plain_tran_keys(ids)  # a cart's block: typed ids, every key a tranlog's
            else:
                keys, tokens = plain_event_keys(topics, ids)
            outcomes = [r.outcome for r in recs]
            attempts = [r.attempt for r in recs]
            publishers = [r.service for r in recs]
            monos = [r.mono for r in recs]
            walls = [r.ts for r in recs]
        else:
            tokens = None
            eids = [str(r.event_id or "") for r in recs]
            topics = [str(r.topic if r.topic is not None else "") for r in recs]
            keys = list(map(event_key, topics, payloads_of([r.payload_keys for r in recs])))
            outcomes = [r.outcome if r.outcome is not None else "ok" for r in recs]
            attempts = [r.attempt if r.attempt is not None else "initial" for r in recs]
            publishers = [str(r.service) for r in recs]
            monos = [float(r.mono or 0.0) for r in recs]
            walls = [wall_of(r) for r in recs]
        n = len(recs)
        self.event_id.extend(eids)
        self.hash.frombytes(np.fromiter(map(hash, eids), np.int64, n).tobytes())
        self.key.extend(keys)
        self.key_hash.frombytes(np.fromiter(map(hash, keys), np.int64, n).tobytes())
        self.topic.extend(topics)
        self.outcome.extend(outcomes)
        self.attempt.extend(attempts)
        self.publisher.extend(publishers)
        if outcomes.count("ok") == n and attempts.count("initial") == n:
            self.bit.extend(bytes((OK_INITIAL,)) * n)
        else:
            self.bit.extend(map(_bit, outcomes, attempts))
        self.mono.extend(array("d", monos))
        self.wall.extend(array("d", walls))
        if TOPIC_CASHLOG in topics:
            if tokens is None:
                cash = [k for t, k in zip(topics, keys) if t == TOPIC_CASHLOG and k.startswith("cash|")]
                tokens = list(chain.from_iterable(map(scoped_cash_tokens, cash)))
            self.cash_tokens.frombytes(np.fromiter(map(hash, tokens), np.int64, len(tokens)).tobytes())

    def __len__(self) -> int:
        return len(self.bit)

    def table(self) -> EventTable:
        """The event table: rows in order of first publication (an empty id is no event)."""
        self._restore_hashes()
        h = np.frombuffer(self.hash, dtype=np.int64) if len(self.hash) else np.zeros(0, np.int64)
        key_h = np.frombuffer(self.key_hash, dtype=np.int64) if len(self.key_hash) else np.zeros(0, np.int64)
        lengths = self.event_id.lengths()
        if len(h) and bool(lengths.all()):
            order = stable_argsort(h)
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
        self.key_rows = first_pub
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
        self.key_rows = None
        t.source, t.published_records = "publications", True
        # Every publication its own row: the rows' cash tokens are the publications'.
        if not self.cash_tokens_lost:
            t.cash_token_hashes = sorted_unique(np.frombuffer(self.cash_tokens, dtype=np.int64)) if len(
                self.cash_tokens) else np.zeros(0, np.int64)
        return t

    def index_keys(self, table: EventTable) -> None:
        """The table's key index (key -> first row holding it), a second sort of every key:
        built before the subscribers' files are shared, while only the history reader runs
        beside this process, rather than after, when it would hold up the merge."""
        if len(self.key_hash) != len(self.bit):  # dropped (drop_hashes): computed again
            self.key_hash = array("q", map(hash, self.key))
        key_h = np.frombuffer(self.key_hash, dtype=np.int64) if len(self.key_hash) else np.zeros(0, np.int64)
        table.key_index = HashIndex(table.key, key_h if self.key_rows is None else key_h[self.key_rows])

    def drop_hashes(self) -> None:
        """Once the table and its key index are built: the indexes keep their own sorted
        copies (16 bytes a publication: 160 MB at ten million). Should publications come
        after all (a file read later holds some), the hashes are computed again from the
        columns, and the cash tokens are left to fan-out."""
        self.hash, self.key_hash, self.cash_tokens = array("q"), array("q"), array("q")
        self.dropped = True

    def _restore_hashes(self) -> None:
        if not self.dropped:
            return
        if len(self.hash) != len(self.bit):
            self.hash = array("q", map(hash, self.event_id))
        if len(self.key_hash) != len(self.bit):
            self.key_hash = array("q", map(hash, self.key))
        self.dropped, self.cash_tokens_lost = False, True


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
        self.waiting: list[tuple[list[Any], Any]] = []  # (applications, block) read before any publication table existed

    def add(self, recs: list[Any], table: EventTable | None, block: Any = None) -> None:
        """A block's applications: typed ones (event_lines.AppliedLine) counted as they are
        when each has an id the table holds; else the block's applications read again as
        loose lines (`block`), which keep their topic and business ids for those it lacks."""
        if table is None:
            self.waiting.append((recs, block))
            return
        if type(recs[0]) is AppliedLine:
            if self._add_typed(recs, table):
                return
            recs = [r for r in decode_loose(block) if r.kind == "applied"]
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
        self._new_subscribers(subs, table)
        if not _all_str(eids) or "" in eids:
            for r, sub, eid in zip(recs, subs, eids):
                if not eid:
                    key = event_key(str(r.topic if r.topic is not None else ""), payload_of(r.payload_keys))
                    if key:
                        d = self.noid.setdefault(sub, {})
                        d[key] = d.get(key, 0) + 1
            keep = [i for i, e in enumerate(eids) if e]
            recs, subs, eids = [recs[i] for i in keep], [subs[i] for i in keep], [str(eids[i]) for i in keep]
        if not eids:
            return
        rows = table.row.lookup(eids)  # type: ignore[attr-defined]
        self._count(subs, rows, table)
        for i in np.flatnonzero(rows < 0).tolist():
            sub, eid, r = subs[i], eids[i], recs[i]
            d = self.extra.setdefault(sub, {})
            d[eid] = d.get(eid, 0) + 1
            if eid not in self.extra_topic:
                self.extra_topic[eid] = str(r.topic if r.topic is not None else "")
                raw = r.payload_keys  # a view into the decoded block: copied, so the block is not kept
                self.extra_payload[eid] = raw.copy() if isinstance(raw, msgspec.Raw) else raw

    def _add_typed(self, recs: list[AppliedLine], table: EventTable) -> bool:
        """Typed applications counted (ids and names are text, the decoder said so); False,
        nothing counted, when one has no id or one the table lacks."""
        eids = [r.event_id for r in recs]
        if "" in eids:
            return False
        rows = table.row.lookup(eids)  # type: ignore[attr-defined]
        if len(rows) and int(rows.min()) < 0:
            return False
        self.records += len(recs)
        dedups = [r.dedup for r in recs]
        subs = [r.subscriber or r.service for r in recs]
        if "db_existing" in dedups:
            keep = np.array([d != "db_existing" for d in dedups], dtype=np.bool_)
            rows, subs = rows[keep], [s for s, k in zip(subs, keep.tolist()) if k]
            self.db_existing += len(dedups) - len(subs)
        self.total += len(subs)
        self._count(subs, rows, table)
        return True

    def _new_subscribers(self, subs: list[str], table: EventTable) -> None:
        """Every subscriber that applied anything has its counts (zeros until it counts)."""
        n_rows = len(table.state)
        for sub in set(subs) - self.counts.keys():
            self.counts[sub] = np.zeros(n_rows, dtype=np.uint16)

    def _count(self, subs: list[str], rows: np.ndarray, table: EventTable) -> None:
        """Add one to each (subscriber, row) of a block; rows < 0 (no row) are not counted here."""
        self._new_subscribers(subs, table)
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

    def merge(self, other: _Applications) -> None:
        """Add another reader's counts of the same table (a forked reader's piece)."""
        self.merge_counts(other.counts)
        self._merge_rest(other)

    def merge_counts(self, counts: dict[str, np.ndarray]) -> None:
        for sub, acc in counts.items():
            mine = self.counts.get(sub)
            if mine is None:
                self.counts[sub] = acc
                continue
            n = max(len(mine), len(acc))  # a table grown here since the share was handed out
            total = np.zeros(n, dtype=np.uint32)  # 4 bytes a row: at ten million rows, 40 MB
            total[:len(mine)] += mine
            total[:len(acc)] += acc
            np.minimum(total, _CAP, out=total)
            self.counts[sub] = total.astype(np.uint16)

    def _merge_rest(self, other: _Applications) -> None:
        for sub, d in other.extra.items():
            mine_d = self.extra.setdefault(sub, {})
            for eid, n in d.items():
                mine_d[eid] = mine_d.get(eid, 0) + n
        for eid, topic in other.extra_topic.items():
            self.extra_topic.setdefault(eid, topic)
            self.extra_payload.setdefault(eid, other.extra_payload[eid])
        for sub, d in other.noid.items():
            mine_d = self.noid.setdefault(sub, {})
            for key, n in d.items():
                mine_d[key] = mine_d.get(key, 0) + n
        self.total += other.total
        self.db_existing += other.db_existing
        self.records += other.records

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
            idx.extra_key[eid] = event_key(self.extra_topic[eid], payload_of(self.extra_payload[eid]))
        idx.noid_by_key = self.noid
        idx.total, idx.db_existing = self.total, self.db_existing
        return idx


class _PublishInShare(Exception):
    """A file handed to the forked reader holds publications: the event table it was
    given is not the whole one, so the file is read here after all (`_read_share`)."""


class _Folder:
    """One reader's pass over events files: publications into the table, applications
    counted against it, other kinds of event to its converter, in the order read."""

    def __init__(self, converter: Any, table: EventTable | None = None, *, publishing: bool = True) -> None:
        self.converter = converter
        self.pubs, self.apps = _Publications(), _Applications()
        self.table, self.sealed_at = table, 0
        self.publishing = publishing  # False: a share of subscribers' files (the table is final)
        self.app_files: list[Part] = []  # the parts read that held applications, as far as read

    def read(self, path: Path, start: int = 0, stop: int | None = None) -> None:
        """The lines of `path` from `start` (a line's start) to `stop` (None: its end)."""
        pubs, apps = self.pubs, self.apps
        has_apps = False
        size = start
        for base, block in read_blocks(path, limit=stop, start=start):
            size = base + len(block)
            recs = decode_events(block)
            kinds = [r.kind for r in recs]
            published: list[LooseLine] = []
            applied: list[LooseLine] = []
            if kinds.count("applied") == len(recs):  # a subscriber's file: nothing else in the block
                applied = recs
            elif kinds.count("publish") == len(recs):  # a publisher's
                published = recs
            else:
                for kind, rec in zip(kinds, recs):
                    if kind == "applied":
                        applied.append(rec)
                    elif kind == "publish":
                        published.append(rec)
                    else:
                        self.converter.add_line(rec)
            if published:
                if not self.publishing:
                    raise _PublishInShare(str(path))
                pubs.add(published)
            if applied:
                has_apps = True
                if self.publishing and (self.table is None or len(pubs) != self.sealed_at):
                    self._seal()
                apps.add(applied, self.table, block)
        if has_apps:
            self.app_files.append((path, start, size))

    def _seal(self) -> None:
        """The table of the publications read so far; waiting applications counted into it."""
        pubs, apps = self.pubs, self.apps
        if len(pubs):
            self.table = pubs.table()
            self.sealed_at = len(pubs)
            apps.rehome(self.table)
            for waiting, block in apps.waiting:
                apps.add(waiting, self.table, block)
            apps.waiting.clear()
        else:
            self.table = None

    def finish(self) -> EventTable:
        """The final table, every application counted into it."""
        if len(self.pubs) != self.sealed_at or self.table is None:
            self.table = self.pubs.table()
            self.sealed_at = len(self.pubs)
            self.apps.rehome(self.table)
        for waiting, block in self.apps.waiting:
            self.apps.add(waiting, self.table, block)
        self.apps.waiting.clear()
        return self.table


def _count_share(emit: Any, pieces: list[Part], claims: _Claims, table: EventTable, make_converter: Any) -> None:
    """In the forked reader: count the applications of the pieces it claims, from the last
    one back, against the (final) table, and send back the counts with each piece's parts as
    far as read and other records, converted, in file order."""
    counts: dict[str, np.ndarray] = {}
    done: list[tuple[int, _Share]] = []
    while (i := claims.take_back()) is not None:
        folder = _Folder(make_converter(), table, publishing=False)
        folder.apps.counts = counts  # one sum over every piece; the rest is kept per piece
        try:
            folder.read(*pieces[i])
        except _PublishInShare:
            emit(None)
            return
        folder.apps.counts = {}
        done.append((i, _Share(folder.apps, folder.app_files, folder.converter)))
    emit(_Counted(counts, [share for _i, share in sorted(done, key=lambda d: d[0])]))


class _Share:
    """What the forked reader counted of one piece: merged into this process's counts
    (`_adopt`)."""

    def __init__(self, apps: _Applications, app_files: list[Part], converter: Any) -> None:
        self.apps, self.app_files = apps, app_files
        self.inputs, self.seq, self.skipped = converter.inputs, converter.counted(), converter.skipped


class _Counted:
    """The forked reader's counts of every piece it read, and each piece's `_Share` in file order."""

    def __init__(self, counts: dict[str, np.ndarray], shares: list[_Share]) -> None:
        self.counts, self.shares = counts, shares


#: A piece of an events file: its path, the offset of its first line, where it stops (None: the end).
Part = tuple[Path, int, "int | None"]

#: The subscribers' files are cut into pieces of about this many bytes, claimed one at a time
#: by this process from the first and by the forked reader from the last (`_Claims`): whichever
#: is slower (it merged the history meanwhile, or the machine lent it less) reads fewer, and
#: they finish within one piece of each other (~0.15 s here).
PIECE_BYTES = 32 << 20


def _pieces(paths: list[Path], size: int | None = None) -> list[Part]:
    """The subscribers' files as pieces in file order, every byte once: a plain file cut at
    line starts about every `size` bytes (`PIECE_BYTES`), a gzipped one whole (it cannot be
    entered midway)."""
    size = size or PIECE_BYTES
    out: list[Part] = []
    for path in paths:
        total = _size(path)
        if path.name.endswith(GZ_SUFFIX) or total <= size:
            out.append((path, 0, None))
            continue
        start = 0
        while start < total:
            cut = line_start(path, start + size) if start + size < total else None
            if cut is None or cut >= total:
                out.append((path, start, None))
                break
            out.append((path, start, cut))
            start = cut
    return out


class _Claims:
    """Which pieces are taken: this process takes them from the front, the forked reader from
    the back, so each one's pieces are a run of consecutive ones and their records merge in
    file order (this process's, then the reader's). Shared across the fork (a lock and two
    integers in shared memory)."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.n = n
        self._lock = ctx.Lock()
        self._ends = ctx.RawArray("q", [0, n])  # the next piece from the front; one past the last from the back

    def take_front(self) -> int | None:
        with self._lock:
            front, back = self._ends
            if front >= back:
                return None
            self._ends[0] = front + 1
            return front

    def take_back(self) -> int | None:
        with self._lock:
            front, back = self._ends
            if front >= back:
                return None
            self._ends[1] = back - 1
            return back - 1

    def boundary(self) -> int:
        """Where this process's pieces end and the reader's begin (once no piece is left)."""
        with self._lock:
            return int(self._ends[1])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_folded(files: Mapping[str, Path], converter: Any, make_converter: Any = None,
                while_counted: Any = None, ready: Any = None) -> tuple[PublicationStore, ApplicationStore]:
    """Read the events files (publishers' first) in one pass each; other kinds of event go
    to `converter` (standin.EventConverter) in file order.

    With `make_converter` (a fresh converter, for another process) and where a second
    process pays (`aside.can_fork`), the subscribers' files are shared with a forked reader
    once the publishers' files made the event table: cut into pieces (`_pieces`), claimed by
    each from its own end (`_Claims`), the reader's counted against the same table
    (inherited, not copied) and merged here. A piece of the reader's that holds a
    publication makes this process read all of the reader's pieces instead, so the result is
    the same. `while_counted`: called once, between pieces as soon as `ready()` says it can
    run without waiting (the caller merges the history, whose reader has ended), else once
    this process has read its pieces, before it waits for the forked reader."""
    ordered = [path for _app, path in sorted(files.items(), key=lambda kv: kv[0] not in PUBLISHERS)]
    first = [p for (app, p) in files.items() if app in PUBLISHERS]
    rest = [p for p in ordered if p not in first]
    folder = _Folder(converter)
    aside = claims = None
    pieces: list[Part] = [(p, 0, None) for p in rest]
    pending = [while_counted] if while_counted is not None else []
    # Blocks of lines are allocated and freed by the megabyte: glibc keeps them meanwhile
    # (ground.malloc; the forked reader inherits it). Not beyond: the merges grow arrays.
    with freed_memory_kept():
        for path in [p for p in ordered if p in first]:
            folder.read(path)
        if make_converter is not None and rest and not folder.apps.waiting and can_fork(sum(map(_size, rest))):
            pieces = _pieces(rest)
            if len(pieces) > 1:
                table = folder.finish()
                folder.pubs.index_keys(table)  # while the history reader runs: both cores busy
                folder.pubs.drop_hashes()
                claims = _Claims(len(pieces))
                aside = Aside(_count_share, pieces, claims, table, make_converter)
    in_order = iter(range(len(pieces)))
    take = claims.take_front if claims is not None else lambda: next(in_order, None)
    while (i := take()) is not None:
        with freed_memory_kept():
            folder.read(*pieces[i])
        if pending and ready is not None and ready():
            pending.pop()()
    if pending:
        pending.pop()()
    if aside is not None and claims is not None:
        _adopt(folder, aside, pieces[claims.boundary():], table)
    table = folder.finish()
    if table.key_index is None:
        folder.pubs.index_keys(table)
    pubs, apps = folder.pubs, folder.apps
    pubs.drop_hashes()
    app_files = folder.app_files
    publication_store = PublicationStore(table, {
        "publisher": pubs.publisher, "event_id": pubs.event_id, "topic": pubs.topic, "key": pubs.key,
        "mono": pubs.mono, "wall": pubs.wall, "outcome": pubs.outcome, "attempt": pubs.attempt})
    app_store = ApplicationStore(apps.index(table), apps.records, lambda: reread_applications(app_files))
    return publication_store, app_store


def _adopt(folder: _Folder, aside: Aside, share: list[Part], table: EventTable) -> None:
    """Merge the forked reader's counts and records, or read its pieces here if it could not."""
    got: _Counted | None = None
    try:
        for record in aside.records():
            got = record
    except AsideFailed:
        got = None
    if got is None:
        for part in share:
            folder.read(*part)
        return
    folder.apps.merge_counts(got.counts)
    for piece in got.shares:
        folder.apps.merge(piece.apps)
        folder.app_files.extend(piece.app_files)
        folder.converter.adopt(piece.inputs, piece.seq, piece.skipped)
    if folder.table is not table:  # publications read here since: count into the grown table
        folder.apps.rehome(folder.finish() if folder.table is None else folder.table)
