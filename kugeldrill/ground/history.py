"""The operation history: what the load did, as Jepsen-style invoke/completion records.

Checkers judge a drill by comparing what the load *believes* happened with what the
system recorded, so every logical operation (a sale, a cash-in, an open...) is written
twice (docs/contracts.md §4): an `invoke` line, then exactly one completion — `ok`
(confirmed), `fail` (definitely not applied) or `info` (unknown: the effecting request may
or may not have taken effect).

The one rule that keeps a history honest across crashes is write-ahead: an operation's
invoke is durable *before* its effecting request is sent (`OpRecord.durable()`, called by
the load users just before that request). Then whatever dies afterwards — the Locust
process, its host, the link to the master — the operation is in the history, and with no
completion it counts as `info`; an operation whose invoke never became durable never sent
its effect, so its absence changes nothing. Everything else may be buffered: completions
and the invokes of operations that never reach an effect are written in batches (a
completion lost in a crash only makes its operation `info`), so a batch of many operations
costs one write.

Two sinks share this logic (`HistoryBuffer`): `HistoryWriter` appends to one shard file per
Locust process (`<dir>/<worker>.jsonl`; durable lines go first to a journal in shared memory,
kugeldrill.ground.journal, which the kernel keeps when the process dies and the next reader
puts back), and the worker's stream to a Locust master (kugeldrill.locustfiles.stream),
durable once the master acknowledged it. The runner merges shards with `merge_shards` and
checkers read `load_ops`, which pairs lines into `Op` records (the one reader of a history).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import weakref
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import numpy as np

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.gzfiles import open_stored, stored
from kugeldrill.ground.journal import Journal, recover
from kugeldrill.ground.jsonfile import atomic_file
from kugeldrill.ground.jsonl import decode_block, read_blocks, read_jsonl
from kugeldrill.ground.runfolder import RunFolder

COMPLETIONS = ("ok", "fail", "info")
_ABSENT = object()  # a line without mono / wall (corrupt: KeyError, as reading it as a dict would)
Outcome = Literal["ok", "fail", "info"]


@dataclass(slots=True)
class Op:
    """One logical load operation: its invoke and (if any) its completion, merged.

    outcome is None when the history has an invoke and no completion (the process died):
    such an op counts like `info` (may or may not have taken effect).
    """

    op_id: str
    f: str  # sale | cancel | void | return | cash_in | cash_out | open | close | ...
    outcome: Outcome | None
    worker: str
    user: str
    invoke_mono: float
    invoke_wall: float
    complete_mono: float | None = None
    complete_wall: float | None = None
    value: dict[str, Any] = field(default_factory=dict)  # business ids (see docs/contracts.md)
    error: str | None = None


OP_KINDS = ("sale", "cancel", "void", "return", "cash_in", "cash_out", "open", "close")


class HistoryError(DrillError):
    """A history file or directory is missing or inconsistent."""


class OpRecord:
    """One logical operation in flight; complete it exactly once with ok/fail/info.

    `value` holds what the load knows of the operation (business ids, figures); the body
    of an operation adds to it (and may correct or drop what an earlier answer said). The
    invoke line carries the value as known when it is written (at `durable()`, or just before
    the completion when the operation never reached its effecting call); the completion line
    carries the whole value as the load last knew it, the completion's keyword arguments
    merged in, and replaces the invoke's for readers (`load_ops`). After its completion an
    operation's value belongs to the history: its lines are encoded with the next batch.
    """

    __slots__ = ("sink", "op_id", "f", "user", "value", "done", "error", "wall", "mono", "end_wall", "end_mono",
                 "written", "known")

    def __init__(self, sink: "HistoryBuffer", f: str, user: str, value: dict[str, Any]) -> None:
        self.sink = sink
        self.op_id = f"{sink._id_prefix}{next(sink._ids):012x}"
        self.f = f
        self.user = user
        self.value = value
        self.done: str | None = None
        self.wall = time.time()
        self.mono = time.monotonic()
        self.written = False  # the invoke line is in the sink
        # Set by the completion (`HistoryBuffer.complete`): error, end_wall and end_mono (the
        # completion's clocks) and known (the invoke's value, when the invoke line is written
        # with the completion's, else None).

    def durable(self) -> None:
        """Return once the invoke is durable: call it just before the effecting request."""
        self.sink.durable(self)

    def ok(self, **value: Any) -> None:
        self.sink.complete(self, "ok", None, value)

    def fail(self, error: str, **value: Any) -> None:
        self.sink.complete(self, "fail", error, value)

    def info(self, error: str, **value: Any) -> None:
        self.sink.complete(self, "info", error, value)


class _Invoke(msgspec.Struct, gc=False):
    """An invoke line (contracts §4): the field order is the line's key order. (Not tracked
    by the garbage collector: a line is encoded and dropped, and holds no cycle.)"""

    type: str
    op: str
    f: str
    worker: str
    user: str
    wall: float
    mono: float
    value: dict[str, Any]


class _Completion(_Invoke, gc=False):
    """An ok / fail / info line: an invoke's keys, then `error` (None for ok)."""

    error: str | None


def _as_text(obj: Any) -> str:
    """A value msgspec has no JSON form for (an object of some other type, a dict key that is
    not a string or a number) is written as its str, never dropped — a figure the checkers
    cannot read is named, a line lost is not; and one whose str fails cannot take a whole
    batch of lines with it."""
    try:
        return str(obj)
    except Exception:  # noqa: BLE001 - any failure of a foreign __str__
        return f"<{type(obj).__name__} without a str>"


_ENCODER = msgspec.json.Encoder(enc_hook=_as_text)
encode_lines = _ENCODER.encode_lines  # records -> JSON lines, one call
_encode_into = _ENCODER.encode_into


def history_line(kind: str, op_id: str, f: str, worker: str, user: str, wall: float, mono: float,
                 value: dict[str, Any], error: str | None = None) -> bytes:
    """One history line (contracts §4) as UTF-8 JSON, newline included."""
    if kind == "invoke":
        return encode_lines((_Invoke(kind, op_id, f, worker, user, wall, mono, value),))
    return encode_lines((_Completion(kind, op_id, f, worker, user, wall, mono, value, error),))


class HistoryBuffer:
    """Write-ahead history of one Locust process; subclasses say where lines go (`_emit`).

    An invoke made durable is encoded and sent out at once (`durable`). A completed
    operation waits in memory, as it is, until `FLUSH_OPS` are waiting or the oldest has
    waited `FLUSH_SECONDS`; then the waiting lines are encoded in one call (msgspec's
    encode_lines) and go out together. Encoding a line as the operation completes cost the
    load generator three times as much CPU as the same work done in a batch: between two
    operations a busy Locust process runs everything else, and the encoder's code and data
    had to come back into the CPU's caches every time. A line therefore reaches the sink
    after the durable invokes written meanwhile; each operation's completion always follows
    its invoke, which is what readers rely on (`load_ops`, the master's collector).

    Made for Locust's users, which are greenlets of one thread: no method switches greenlets
    before its lines are out of the shared buffer, so no lock is needed (a lock cost more
    than the rest of a line under gevent). Not for several OS threads at once.
    """

    FLUSH_OPS = 64
    FLUSH_SECONDS = 0.25

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._waiting: list[OpRecord] = []  # completed operations whose lines are not out yet
        self._oldest = 0.0
        # Operation ids are uuid-shaped: 80 random bits for this sink, then a counter. Unique
        # across processes (a sink is made after Locust forks its workers) at a fifth of the
        # cost of uuid4 per operation.
        prefix = os.urandom(10).hex()
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-"
        self._ids = itertools.count()
        self.operations = 0  # invoked through this sink (a worker reports it when it ends)
        # Added to this process's (wall, monotonic) clocks: a worker on another host writes
        # its lines in its master's clocks (kugeldrill.locustfiles.nodes).
        self.clock_offset = (0.0, 0.0)

    def invoke(self, f: str, user: str, **value: Any) -> OpRecord:
        """Start an operation; nothing is written until it is made durable or completed."""
        return self.start(f, user, value)

    def start(self, f: str, user: str, value: dict[str, Any]) -> OpRecord:
        """`invoke` for a value dict the caller hands over (no copy: the load's hot path)."""
        self.operations += 1
        return OpRecord(self, f, user, value)

    def _invoke_record(self, op: OpRecord) -> _Invoke:
        """`op`'s invoke line with its value as it is now, to be encoded; the invoke is then written."""
        op.written = True
        dw, dm = self.clock_offset
        return _Invoke("invoke", op.op_id, op.f, self.worker, op.user, op.wall + dw, op.mono + dm, op.value)

    def durable(self, op: OpRecord) -> None:
        """Return once `op`'s invoke (`_invoke_record`) outlives this process."""
        raise NotImplementedError

    def complete(self, op: OpRecord, kind: str, error: str | None, value: dict[str, Any]) -> None:
        """`op` is done: merge `value` into its value and let it wait for the next batch (with
        its invoke, as known before the completion, if that was not written yet)."""
        if op.done is not None:
            raise HistoryError(f"operation {op.op_id} ({op.f}) completed twice: {op.done}, then {kind}")
        op.done = kind
        op.error = error
        if op.written:
            op.known = None
        else:
            op.written = True
            op.known = dict(op.value) if value else op.value
        if value:
            op.value.update(value)
        op.end_wall = time.time()
        op.end_mono = now = time.monotonic()
        waiting = self._waiting
        if not waiting:
            self._oldest = now
        waiting.append(op)
        if len(waiting) >= self.FLUSH_OPS or now - self._oldest >= self.FLUSH_SECONDS:
            self.flush()

    def _lines_of(self, ops: list[OpRecord]) -> bytes:
        """The lines of completed operations, encoded in one call."""
        dw, dm = self.clock_offset
        worker = self.worker
        records: list[_Invoke | _Completion] = []
        for op in ops:
            if op.known is not None:
                records.append(_Invoke("invoke", op.op_id, op.f, worker, op.user, op.wall + dw, op.mono + dm,
                                       op.known))
            records.append(_Completion(op.done, op.op_id, op.f, worker, op.user, op.end_wall + dw,
                                       op.end_mono + dm, op.value, op.error))
        return encode_lines(records)

    def _take_waiting(self) -> bytes:
        waiting, self._waiting = self._waiting, []
        return self._lines_of(waiting) if waiting else b""

    def flush(self) -> None:
        """Write out whatever is waiting (the end of a test, a periodic tick)."""
        data = self._take_waiting()
        if data:
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        """Send out `data`, a batch of complete lines."""
        raise NotImplementedError

    def close(self) -> None:
        self.flush()


class HistoryWriter(HistoryBuffer):
    """One worker's shard file, appended to in batches of lines.

    Durable lines (an invoke before its effect) go to a journal in shared memory
    (kugeldrill.ground.journal) that outlives this process; the journal and the other lines
    reach the shard with one `os.write` per batch, at least every `FLUSH_SECONDS` while
    lines come. Without shared memory (not Linux) durable lines are written at once.
    `journal=False` for a writer that has no durable lines (a Locust master writing what
    its workers sent)."""

    def __init__(self, directory: str | Path, worker: str, *, journal: bool = True) -> None:
        super().__init__(worker)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{worker}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._journal = Journal.open(self.path, self._fd) if journal else None
        self._journal_since = 0.0  # when the journal's oldest undrained line went in
        self._line = bytearray()  # where a durable invoke line is encoded
        # A writer dropped without close() still puts its durable lines in the shard and
        # gives back its shared memory (at garbage collection, or when the interpreter exits).
        self._finalizer = weakref.finalize(self, _release, self._fd, self._journal)

    def durable(self, op: OpRecord) -> None:
        """Write `op`'s invoke out now: a copy into the journal, or (no room, or the journal's
        oldest line waited `FLUSH_SECONDS`) one write of the journal and the line to the shard.

        The load's hot path: the line is encoded into a buffer this writer keeps (no new
        object per line) and goes out at once; nothing else waiting goes with it."""
        if op.written:
            return
        line = self._line
        _encode_into(self._invoke_record(op), line)
        line += b"\n"
        journal = self._journal
        if journal is not None:
            now = time.monotonic()
            since = self._journal_since
            if not since or now - since < self.FLUSH_SECONDS:
                if journal.append(line):
                    if not since:
                        self._journal_since = now
                    return
        self._drain(line)

    def _emit(self, data: bytes) -> None:
        self._drain(data)

    def write_lines(self, lines: list[bytes]) -> None:
        """Append complete lines in one write, after what the journal holds (also how a Locust
        master writes a worker's shard)."""
        self._drain(b"".join(lines))

    def _drain(self, data: bytes | bytearray) -> None:
        if self._fd < 0:
            raise HistoryError(f"history shard {self.path} is closed")
        if self._journal is not None:
            self._journal.drain(self._fd, data)
            self._journal_since = 0.0
            return
        while data:  # a regular file takes it all at once; a short write is still handled
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            self._finalizer()
            self._journal = None
            self._fd = -1


def _release(fd: int, journal: Journal | None) -> None:
    """Drain the journal into the shard, remove it, close the shard."""
    try:
        if journal is not None:
            journal.drain(fd)
            journal.close()
    finally:
        os.close(fd)


def shard_paths(directory: str | Path) -> list[Path]:
    """The shard files of a history directory, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HistoryError(f"history directory {directory} does not exist")
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


def first_record(directory: str | Path) -> tuple[float, float] | None:
    """(wall, mono) of the earliest first complete line among the shards (None: nothing yet).

    The drill's t0 while the load runs: fault times count from the load's first operation.
    A shard whose first line is still being written is skipped until it is complete.
    """
    best: tuple[float, float] | None = None
    for shard in Path(directory).glob("*.jsonl"):
        try:
            with open(shard, "rb") as fh:
                line = fh.readline()
        except OSError:
            continue
        if not line.endswith(b"\n"):
            continue
        try:
            rec = json.loads(line)
            cand = (float(rec["wall"]), float(rec["mono"]))
        except (ValueError, KeyError, TypeError):
            continue
        if best is None or cand[1] < best[1]:
            best = cand
    return best


def merge_shards(directory: str | Path, out: str | Path | None = None) -> Path:
    """Merge every shard of `directory` into one file ordered by monotonic time.

    Default output: `<directory>/../history.jsonl` (the run folder layout, contracts §7).
    Lines are kept verbatim; a torn last line of a crashed worker is dropped. The merge
    is written to a temporary file and renamed, so readers never see half a merge.
    """
    directory = Path(directory)
    shards = shard_paths(directory)
    for shard in shards:  # a process that died left its last durable lines in its journal
        recover(shard)
    target = Path(out) if out is not None else RunFolder(directory.parent).history_jsonl
    records: list[dict[str, Any]] = []
    for shard in shards:
        records.extend(read_jsonl(shard))
    # Within one op the invoke comes first even if two records share a timestamp.
    records.sort(key=lambda r: (float(r.get("mono", 0.0)), r.get("type") != "invoke"))
    with atomic_file(target) as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
    return target


class _Line(msgspec.Struct, gc=False):
    """One history line (contracts §4), decoded a block at a time; `value` kept raw."""

    type: Any = None
    op: Any = None
    f: Any = ""
    worker: Any = ""
    user: Any = ""
    wall: Any = _ABSENT
    mono: Any = _ABSENT
    value: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    error: Any = None


class _ValueOnly(msgspec.Struct, gc=False):
    value: Any = None


_LINE = msgspec.json.Decoder(_Line)
_VALUE_ONLY = msgspec.json.Decoder(_ValueOnly)
_VALUE = msgspec.json.Decoder()


def _coerce(rec: dict[str, Any]) -> _Line:
    """A line the typed decoder could not take (see ground.jsonl.decode_block)."""
    line = _Line(**{k: v for k, v in rec.items() if k in _Line.__struct_fields__ and k != "value"})
    value = rec.get("value")
    line.value = msgspec.Raw(msgspec.json.encode(value)) if value is not None else msgspec.Raw()  # type: ignore[assignment]
    return line


def value_of(raw: Any) -> dict[str, Any] | None:
    """A line's `value` as a dict (None: absent, null, or not an object)."""
    if not len(raw):
        return None
    value = _VALUE.decode(raw)
    return value if isinstance(value, dict) else None


def _number(line: _Line, name: str) -> float:
    value = getattr(line, name)
    if value is _ABSENT:
        raise KeyError(name)
    return float(value)


class OpSink(Protocol):
    """Where `pair_history` puts the operations it pairs (a list of `Op`, or a column store),
    a block of lines at a time: the invokes of a block in file order get consecutive indexes.
    `at`: where each line is (`line_at` reads it again): its file's number (in the order
    `history_files` gives them) times 2**40 plus its offset."""

    def invoke_block(self, lines: list[_Line], at: list[int]) -> int: ...  # the index of the first

    def complete_block(self, indexes: list[int], lines: list[_Line], at: list[int]) -> None: ...

    def op_id_of(self, i: int) -> str: ...

    def outcome_of(self, i: int) -> str | None: ...


_KINDS = frozenset(("invoke", *COMPLETIONS))


def pair_history(path: str | Path, sink: OpSink) -> None:
    """Pair invoke and completion lines into operations, one pass over the file(s).

    `path` is a merged history file or a directory of shards. Memory beside the sink's:
    the operations invoked and not yet completed (a few hundred at any moment of a load),
    and 8 bytes per operation until the end, where a completion of an operation no longer
    in flight is judged: completed twice, or never invoked. A completion without an
    invoke, a second invoke or a second completion of one op means the history is
    corrupt: HistoryError names the op and the file."""
    path = Path(path)
    in_flight: dict[str, int] = {}
    ids = array("q")  # the hash of every invoked op id, by sink index
    orphans: list[tuple[str, str, int]] = []  # (op id, kind, ops invoked before it)
    for lines, at in _line_blocks(path):
        types = [r.type for r in lines]
        op_ids = [r.op for r in lines]
        if not all(op_ids) or not _KINDS.issuperset(types) or any(
                r.mono is _ABSENT or r.wall is _ABSENT for r in lines):
            for r in lines:  # name the first bad line as reading it line by line would
                if not r.op or r.type not in _KINDS:
                    raise HistoryError(f"{path}: malformed history line {_shown(r)!r}")
                _number(r, "mono"), _number(r, "wall")
        n_inv = types.count("invoke")
        if n_inv == len(lines):
            invokes, inv_at, completions = lines, at, []
        else:
            invokes = [r for t, r in zip(types, lines) if t == "invoke"]
            inv_at = [a for t, a in zip(types, at) if t == "invoke"]
            completions = [(pos, r) for pos, (t, r) in enumerate(zip(types, lines)) if t != "invoke"]
        first = len(ids)
        if invokes:
            inv_ids = [r.op for r in invokes]
            for op_id in inv_ids:
                if op_id in in_flight:
                    raise HistoryError(f"{path}: operation {op_id} invoked twice")
            before = len(in_flight)
            in_flight.update(zip(inv_ids, range(first, first + len(invokes))))
            if len(in_flight) != before + len(inv_ids):
                raise HistoryError(f"{path}: operation {_repeated(inv_ids)} invoked twice")
            sink.invoke_block(invokes, inv_at)
            ids.extend(map(hash, inv_ids))
        if not completions:
            continue
        inv_pos = [pos for pos, t in enumerate(types) if t == "invoke"] if invokes else []
        indexes, done, done_at = [], [], []
        pop = in_flight.pop
        for pos, r in completions:
            i = pop(r.op, None)
            if i is not None and i >= first and inv_pos[i - first] > pos:  # completed before invoked
                in_flight[r.op] = i
                i = None
            if i is None:
                orphans.append((r.op, r.type, first + sum(1 for p in inv_pos if p < pos)))
                continue
            indexes.append(i)
            done.append(r)
            done_at.append(at[pos])
        sink.complete_block(indexes, done, done_at)
    _judge_leftovers(path, sink, ids, orphans)


def _repeated(names: list[str]) -> str:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return ""


def _shown(line: _Line) -> dict[str, Any]:
    return {k: getattr(line, k) for k in _Line.__struct_fields__ if k != "value" and getattr(line, k) is not _ABSENT}


def _judge_leftovers(path: Path, sink: OpSink, ids: array, orphans: list[tuple[str, str, int]]) -> None:
    """The errors only the whole file shows: completions of ops not in flight, ops invoked twice."""
    if not orphans:
        srt = np.sort(np.frombuffer(ids, dtype=np.int64)) if len(ids) else np.zeros(0, np.int64)
        if not bool((srt[1:] == srt[:-1]).any()):
            return  # no op id hashed twice: none invoked twice
    where: dict[int, list[int]] = {}
    for i, h in enumerate(ids):
        where.setdefault(h, []).append(i)
    for op_id, kind, invoked_before in orphans:
        mine = [i for i in where.get(hash(op_id), []) if sink.op_id_of(i) == op_id]
        if mine and mine[0] < invoked_before:
            raise HistoryError(f"{path}: operation {op_id} completed twice ({sink.outcome_of(mine[0])}, then {kind})")
        raise HistoryError(f"{path}: {kind} for operation {op_id} that was never invoked")
    for same in where.values():
        if len(same) > 1:
            names = [sink.op_id_of(i) for i in same]
            for n, name in enumerate(names):
                if name in names[:n]:
                    raise HistoryError(f"{path}: operation {name} invoked twice")


FILE_SHIFT = 40  # a line's place: file number << 40 | offset (files up to a terabyte)


def history_files(path: str | Path) -> list[Path]:
    """The files of a history: the merged file, or the shards of a directory."""
    path = Path(path)
    if path.is_dir():
        shards = shard_paths(path)
        for shard in shards:
            recover(shard)  # a worker's journal finished before its shard is read
        return shards
    if stored(path).is_file():  # the merged history, or its gzip in a compacted run folder
        return [path]
    raise HistoryError(f"history {path} does not exist")


def _line_blocks(path: Path) -> Iterator[tuple[list[_Line], list[int]]]:
    for n, file in enumerate(history_files(path)):
        for base, block in read_blocks(file):
            lines, at = decode_block(_LINE, block, base + (n << FILE_SHIFT), coerce=_coerce)
            yield lines, at


class LineReader:
    """Lines of a history read again by their place (`at`), for values kept on disk."""

    WINDOW = 1 << 20  # read ahead: operations are asked for in about the order of their lines

    def __init__(self, path: str | Path) -> None:
        self.files = history_files(path)
        self._open: dict[int, Any] = {}
        self._window: tuple[int, int, bytes] = (-1, 0, b"")  # (file, offset, bytes)

    def line(self, at: int) -> bytes:
        """The line at `at` (without its newline)."""
        n, offset = at >> FILE_SHIFT, at & ((1 << FILE_SHIFT) - 1)
        wn, base, data = self._window
        if wn == n and base <= offset:
            end = data.find(b"\n", offset - base)
            if end >= 0:
                return data[offset - base:end]
        fh = self._open.get(n)
        if fh is None:
            fh = self._open[n] = open_stored(self.files[n], "rb")
        fh.seek(offset)
        data = fh.read(self.WINDOW)
        end = data.find(b"\n")
        if end < 0:  # a line longer than the window, or the last one
            data += fh.readline()
            end = len(data)
        self._window = (n, offset, data)
        return data[:end]

    def value(self, at: int) -> dict[str, Any] | None:
        """The `value` of the line at `at` (None: absent, null or not an object)."""
        line = self.line(at)
        try:
            value = _VALUE_ONLY.decode(line).value
        except msgspec.DecodeError:
            value = _VALUE.decode(line).get("value")
        return value if isinstance(value, dict) else None

    def close(self) -> None:
        for fh in self._open.values():
            fh.close()
        self._open.clear()


class _OpList:
    """`pair_history`'s sink for `load_ops`: `Op` records with their values as dicts."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def invoke_block(self, lines: list[_Line], at: list[int]) -> int:
        first = len(self.ops)
        self.ops.extend(Op(str(r.op), str(r.f), None, str(r.worker), str(r.user), float(r.mono), float(r.wall),
                           value=value_of(r.value) or {}) for r in lines)
        return first

    def complete_block(self, indexes: list[int], lines: list[_Line], at: list[int]) -> None:
        for i, r in zip(indexes, lines):
            op = self.ops[i]
            op.outcome, op.complete_mono, op.complete_wall, op.error = r.type, float(r.mono), float(r.wall), r.error
            value = value_of(r.value)
            if value is not None:  # the operation's whole value as the load last knew it
                op.value = value

    def op_id_of(self, i: int) -> str:
        return self.ops[i].op_id

    def outcome_of(self, i: int) -> str | None:
        return self.ops[i].outcome


def load_ops(path: str | Path) -> list[Op]:
    """Pair invoke and completion lines into `Op` records, ordered by invoke time.

    `path` is a merged history file or a directory of shards. An invoke without a
    completion (the worker died) gives `outcome=None`, which checkers treat like info. A
    completion's value is the operation's whole value as the load last knew it: it replaces
    the invoke's (which may hold what a later answer corrected or dropped, such as a figure
    the subtotal lacked and the bill carried); a completion without a value keeps it.
    A corrupt history raises HistoryError (see `pair_history`, the one pairing of lines)."""
    sink = _OpList()
    pair_history(path, sink)
    return sorted(sink.ops, key=lambda o: o.invoke_mono)


def summarize(ops: Iterable[Op]) -> dict[str, dict[str, int]]:
    """Counts per operation kind and outcome (`pending` = no completion), Jepsen's `stats`."""
    out: dict[str, dict[str, int]] = {}
    for op in ops:
        row = out.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0, "pending": 0})
        row[op.outcome or "pending"] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m kugeldrill.ground.history merge DIR [OUT]` / `stats FILE|DIR`."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) in (2, 3) and args[0] == "merge":
            print(merge_shards(args[1], args[2] if len(args) == 3 else None))
            return 0
        if len(args) == 2 and args[0] == "stats":
            print(json.dumps(summarize(load_ops(args[1])), indent=2))
            return 0
    except DrillError as err:
        print(f"kugeldrill.ground.history: error: {err}", file=sys.stderr)
        return 2
    print("usage: python -m kugeldrill.ground.history merge DIR [OUT] | stats FILE|DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
