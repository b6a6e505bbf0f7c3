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
durable once the master acknowledged it. The runner merges shards with `merge_shards`;
reading a history back (pairing lines into `Op` records) is kugeldrill.ground.history_read.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import msgspec

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.history_read import HistoryError, load_ops, shard_paths, summarize
from kugeldrill.ground.journal import Journal, recover
from kugeldrill.ground.jsonfile import atomic_file
from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.ground.runfolder import RunFolder


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
