"""The operation history: what the load did, as Jepsen-style invoke/completion records.

Checkers judge a drill by comparing what the load *believes* happened with what the
system recorded, so every logical operation (a sale, a cash-in, an open...) is written
twice (docs/contracts.md §4): an `invoke` line before the first request, then exactly one
completion — `ok` (confirmed), `fail` (definitely not applied) or `info` (unknown: the
effecting request may or may not have taken effect).

Each Locust worker process writes its own shard (`<dir>/<worker>.jsonl`), one flushed
`os.write` per line, so a crashed worker loses nothing it already recorded and no two
processes share a file. The runner merges shards with `merge_shards` and checkers read
`load_ops`, which pairs lines into `Op` records (the one reader of a history).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import numpy as np

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.gzfiles import open_stored, stored
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

    The business ids known at invoke time are kept in `value`; each completion merges
    what was learnt since (transaction number, receipt number, amounts...).
    """

    __slots__ = ("writer", "op_id", "f", "user", "value", "done")

    def __init__(self, writer: "HistoryWriter", f: str, user: str, value: dict[str, Any]) -> None:
        self.writer = writer
        self.op_id = str(uuid.uuid4())
        self.f = f
        self.user = user
        self.value = value
        self.done: str | None = None

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
        self.value.update(value)
        self.writer._write(kind, self.op_id, self.f, self.user, self.value, error)


class HistoryWriter:
    """Writes one worker's shard. Thread/greenlet safe: a single os.write per line."""

    def __init__(self, directory: str | Path, worker: str) -> None:
        self.directory = Path(directory)
        self.worker = worker
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{worker}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self._dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode

    def invoke(self, f: str, user: str, **value: Any) -> OpRecord:
        """Record the start of an operation; returns the handle that completes it."""
        record = OpRecord(self, f, user, value)
        self._write("invoke", record.op_id, f, user, value, None, invoke=True)
        return record

    def _write(self, kind: str, op_id: str, f: str, user: str, value: dict[str, Any],
               error: str | None, invoke: bool = False) -> None:
        line: dict[str, Any] = {
            "type": kind, "op": op_id, "f": f, "worker": self.worker, "user": user,
            "wall": time.time(), "mono": time.monotonic(), "value": value,
        }
        if not invoke:
            line["error"] = error
        data = (self._dumps(line) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                raise HistoryError(f"history shard {self.path} is closed")
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


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
    line.value = msgspec.Raw(msgspec.json.encode(value)) if value else msgspec.Raw()  # type: ignore[assignment]
    return line


def value_of(raw: Any) -> dict[str, Any]:
    """A line's `value` as a dict (absent or null: empty)."""
    if not len(raw):
        return {}
    value = _VALUE.decode(raw)
    return dict(value or {})


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
        return shard_paths(path)
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

    def value(self, at: int) -> dict[str, Any]:
        """The `value` of the line at `at`."""
        line = self.line(at)
        try:
            return dict(_VALUE_ONLY.decode(line).value or {})
        except msgspec.DecodeError:
            return dict(_VALUE.decode(line).get("value") or {})

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
                           value=value_of(r.value)) for r in lines)
        return first

    def complete_block(self, indexes: list[int], lines: list[_Line], at: list[int]) -> None:
        for i, r in zip(indexes, lines):
            op = self.ops[i]
            op.outcome, op.complete_mono, op.complete_wall, op.error = r.type, float(r.mono), float(r.wall), r.error
            op.value.update(value_of(r.value))

    def op_id_of(self, i: int) -> str:
        return self.ops[i].op_id

    def outcome_of(self, i: int) -> str | None:
        return self.ops[i].outcome


def load_ops(path: str | Path) -> list[Op]:
    """Pair invoke and completion lines into `Op` records, ordered by invoke time.

    `path` is a merged history file or a directory of shards. An invoke without a
    completion (the worker died) gives `outcome=None`, which checkers treat like info.
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
