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

import orjson

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
    merged in, and replaces the invoke's for readers (`load_ops`).
    """

    __slots__ = ("sink", "op_id", "f", "user", "value", "done", "wall", "mono", "written")

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

    def durable(self) -> None:
        """Return once the invoke is durable: call it just before the effecting request."""
        self.sink.durable(self)

    def ok(self, **value: Any) -> None:
        self._complete("ok", None, value)

    def fail(self, error: str, **value: Any) -> None:
        self._complete("fail", error, value)

    def info(self, error: str, **value: Any) -> None:
        self._complete("info", error, value)

    def _complete(self, kind: str, error: str | None, value: dict[str, Any]) -> None:
        if self.done is not None:
            raise HistoryError(f"operation {self.op_id} ({self.f}) completed twice: {self.done}, then {kind}")
        self.done = kind
        self.sink.complete(self, kind, error, value)


def history_line(kind: str, op_id: str, f: str, worker: str, user: str, wall: float, mono: float,
                 value: dict[str, Any], error: str | None = None) -> bytes:
    """One history line (contracts §4) as UTF-8 JSON, newline included.

    One orjson call per line: the history is the load generator's hot path, and json.dumps
    cost about ten times as much. Values it cannot encode are written as their str; a
    non-string key (never in Kugelpos' answers) takes orjson's slower path."""
    line: dict[str, Any] = {"type": kind, "op": op_id, "f": f, "worker": worker, "user": user, "wall": wall,
                            "mono": mono, "value": value}
    if kind != "invoke":
        line["error"] = error
    try:
        return orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


class HistoryBuffer:
    """Write-ahead history of one Locust process; subclasses say where lines go (`_emit`).

    Lines wait in memory until `durable()` needs them out, `FLUSH_LINES` are waiting, or the
    oldest has waited `FLUSH_SECONDS`. Made for Locust's users, which are greenlets of one
    thread: no method switches greenlets before its lines are out of the shared buffer, so
    no lock is needed (a lock cost more than the rest of a line under gevent). Not for
    several OS threads at once.
    """

    FLUSH_LINES = 64
    FLUSH_SECONDS = 0.25

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._lines: list[bytes] = []
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

    def _invoke_line(self, op: OpRecord) -> bytes:
        op.written = True
        dw, dm = self.clock_offset
        return history_line("invoke", op.op_id, op.f, self.worker, op.user, op.wall + dw, op.mono + dm, op.value)

    def durable(self, op: OpRecord) -> None:
        """Write `op`'s invoke (and everything waiting before it) out now."""
        if op.written:
            return
        self._lines.append(self._invoke_line(op))
        lines, self._lines = self._lines, []
        self._emit(lines, durable=True)

    def complete(self, op: OpRecord, kind: str, error: str | None, value: dict[str, Any]) -> None:
        """The completion line: `op.value` with `value` merged in (the invoke's line first, as
        known before the completion, if it was not written yet)."""
        invoke = None if op.written else self._invoke_line(op)
        if value:
            op.value.update(value)
        now_wall, now_mono = time.time(), time.monotonic()
        dw, dm = self.clock_offset
        line = history_line(kind, op.op_id, op.f, self.worker, op.user, now_wall + dw, now_mono + dm, op.value, error)
        pending = self._lines
        if not pending:
            self._oldest = now_mono
        if invoke is not None:
            pending.append(invoke)
        pending.append(line)
        if len(pending) < self.FLUSH_LINES and now_mono - self._oldest < self.FLUSH_SECONDS:
            return
        self._lines = []
        self._emit(pending, durable=False)

    def flush(self) -> None:
        """Write out whatever is waiting (the end of a test, a periodic tick)."""
        lines, self._lines = self._lines, []
        if lines:
            self._emit(lines, durable=False)

    def _emit(self, lines: list[bytes], durable: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.flush()


class HistoryWriter(HistoryBuffer):
    """One worker's shard file, appended to in batches of lines.

    Durable lines (an invoke before its effect, with what waited before it) go to a journal
    in shared memory (kugeldrill.ground.journal) that outlives this process; the journal and
    the other lines reach the shard with one `os.write` per batch. Without shared memory
    (not Linux) durable lines are written at once. `journal=False` for a writer that has
    no durable lines (a Locust master writing what its workers sent)."""

    def __init__(self, directory: str | Path, worker: str, *, journal: bool = True) -> None:
        super().__init__(worker)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{worker}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._journal = Journal.open(self.path, self._fd) if journal else None
        self._journal_since = 0.0  # when the journal's oldest undrained line went in
        # A writer dropped without close() still puts its durable lines in the shard and
        # gives back its shared memory (at garbage collection, or when the interpreter exits).
        self._finalizer = weakref.finalize(self, _release, self._fd, self._journal)

    def _emit(self, lines: list[bytes], durable: bool) -> None:
        journal = self._journal
        if not durable or journal is None:
            self.write_lines(lines)
            return
        data = b"".join(lines)
        now = time.monotonic()
        if journal.room() >= len(data) and not (self._journal_since and now - self._journal_since
                                                  >= self.FLUSH_SECONDS):
            if not self._journal_since:
                self._journal_since = now
            journal.append(data)
            return
        self._drain(data)

    def write_lines(self, lines: list[bytes]) -> None:
        """Append complete lines in one write, after what the journal holds (also how a Locust
        master writes a worker's shard)."""
        self._drain(b"".join(lines))

    def _drain(self, data: bytes) -> None:
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
