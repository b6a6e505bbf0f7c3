"""The operation history read back: invoke and completion lines paired into operations.

The history (kugeldrill.ground.history, docs/contracts.md §4) holds each logical operation
as an `invoke` line and at most one completion (`ok`, `fail`, `info`). Checkers judge
operations, not lines, so this module is the one place lines become operations:
`pair_history` pairs them in one pass into a sink (a list of `Op` for `load_ops`, or a
column store, kugeldrill.checkers.columnar), judging a corrupt history (a completion
without invoke, a second invoke or completion) with an error naming the op and the file;
`LineReader` reads a line again by its place, for values left on disk.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from itertools import compress, repeat
from operator import not_
from typing import Annotated, Any, Literal, Protocol

import msgspec
import numpy as np

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.gzfiles import open_stored, stored
from kugeldrill.ground.journal import recover
from kugeldrill.ground.jsonl import decode_block, read_blocks

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


def shard_paths(directory: str | Path) -> list[Path]:
    """The shard files of a history directory, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HistoryError(f"history directory {directory} does not exist")
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


class _Line(msgspec.Struct, gc=False):
    """One history line (contracts §4) of a block `_TypedLine` does not take, any field of
    any type; `value` kept raw. Checked (`_check_lines`) and made typed in place
    (`_as_typed`) before a sink sees it."""

    type: Any = None
    op: Any = None
    f: Any = ""
    worker: Any = ""
    user: Any = ""
    wall: Any = _ABSENT
    mono: Any = _ABSENT
    value: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    error: Any = None


class _TypedLine(msgspec.Struct, gc=False, kw_only=True):
    """One history line as the load writes it, its types checked by the decoder (a known
    kind, an op id, text names, numeric times): a block of them needs no check in Python.
    A block holding any other line is read again as `_Line`s, so that odd lines are judged
    (and named) exactly as before."""

    type: Literal["invoke", "ok", "fail", "info"]
    op: Annotated[str, msgspec.Meta(min_length=1)]
    f: str = ""
    worker: str = ""
    user: str = ""
    wall: float
    mono: float
    value: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    error: Any = None


class _ValueOnly(msgspec.Struct, gc=False):
    value: Any = None


_LINE = msgspec.json.Decoder(_Line)
_TYPED = msgspec.json.Decoder(_TypedLine)
_VALUE_ONLY = msgspec.json.Decoder(_ValueOnly)
_VALUE = msgspec.json.Decoder()


def _coerce(rec: dict[str, Any]) -> _Line:
    """A line the loose decoder could not take (see ground.jsonl.decode_block)."""
    line = _Line(**{k: v for k, v in rec.items() if k in _Line.__struct_fields__ and k != "value"})
    value = rec.get("value")
    line.value = msgspec.Raw(msgspec.json.encode(value)) if value is not None else msgspec.Raw()  # type: ignore[assignment]
    return line


class _Untyped(Exception):
    """A block holds a line `_TypedLine` does not take: it is read as `_Line`s."""


def _untyped(rec: dict[str, Any]) -> Any:
    raise _Untyped


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
    The lines are typed as `_TypedLine` declares (`f`, `worker`, `user` text, `mono`, `wall`
    floats; `op` is whatever the line holds). `at`: where each line is (`line_at` reads it
    again): its file's number (in the order `history_files` gives them) times 2**40 plus its
    offset. `indexes`: an int64 array, the operation each completion completes."""

    def invoke_block(self, lines: list[Any], at: list[int]) -> int: ...  # the index of the first

    def complete_block(self, indexes: np.ndarray, lines: list[Any], at: list[int]) -> None: ...

    def op_id_of(self, i: int) -> str: ...

    def outcome_of(self, i: int) -> str | None: ...


_KINDS = frozenset(("invoke", *COMPLETIONS))
_IS_INVOKE = "invoke".__eq__


def pair_history(path: str | Path, sink: OpSink) -> None:
    """Pair invoke and completion lines into operations, one pass over the file(s).

    `path` is a merged history file or a directory of shards. Memory beside the sink's:
    the operations invoked and not yet completed (a few hundred at any moment of a load),
    and 8 bytes per operation until the end, where a completion of an operation no longer
    in flight is judged: completed twice, or never invoked. A completion without an
    invoke, a second invoke or a second completion of one op means the history is
    corrupt: HistoryError names the op and the file.

    A block is paired with C-level steps (maps, compress, numpy) and no Python code per
    line; only a block where a completion does not pair at once (an orphan, or a
    completion before its invoke) is paired again line by line, to judge it."""
    path = Path(path)
    in_flight: dict[str, int] = {}
    ids = array("q")  # the hash of every invoked op id, by sink index
    orphans: list[tuple[str, str, int]] = []  # (op id, kind, ops invoked before it)
    for lines, at, typed in _line_blocks(path):
        types = [r.type for r in lines]
        if not typed:
            _check_lines(path, lines, types)
        is_inv = list(map(_IS_INVOKE, types))
        n_inv = is_inv.count(True)
        first = len(ids)
        if n_inv:
            if n_inv == len(lines):
                invokes, inv_at = lines, at
            else:
                invokes, inv_at = list(compress(lines, is_inv)), list(compress(at, is_inv))
            inv_ids = [r.op for r in invokes]
            if not in_flight.keys().isdisjoint(inv_ids):
                raise HistoryError(f"{path}: operation {next(i for i in inv_ids if i in in_flight)} invoked twice")
            before = len(in_flight)
            in_flight.update(zip(inv_ids, range(first, first + n_inv)))
            if len(in_flight) != before + n_inv:
                raise HistoryError(f"{path}: operation {_repeated(inv_ids)} invoked twice")
            sink.invoke_block(invokes if typed else _as_typed(invokes), inv_at)
            ids.frombytes(np.fromiter(map(hash, inv_ids), np.int64, n_inv).tobytes())
        if n_inv == len(lines):
            continue
        if n_inv:
            is_done = list(map(not_, is_inv))
            completions, done_at = list(compress(lines, is_done)), list(compress(at, is_done))
        else:
            completions, done_at = lines, at
        got = np.fromiter(map(in_flight.pop, [r.op for r in completions], repeat(-1)), np.int64, len(completions))
        if _paired(got, first, is_inv):
            sink.complete_block(got, completions if typed else _as_typed(completions), done_at)
            continue
        in_flight.update((r.op, i) for r, i in zip(completions, got.tolist()) if i >= 0)  # undone: judged line by line
        indexes, done, done_at = _pair_one_by_one(lines, at, types, first, in_flight, orphans)
        sink.complete_block(np.array(indexes, dtype=np.int64), done if typed else _as_typed(done), done_at)
    _judge_leftovers(path, sink, ids, orphans)


def _paired(got: np.ndarray, first: int, is_inv: list[bool]) -> bool:
    """Every completion of a block found its operation in flight (`got`: its index, -1 if
    none), invoked before it: an operation invoked in this block (index >= first) by a line
    earlier in the block."""
    if not len(got) or int(got.min()) < 0:
        return not len(got)
    here = got >= first
    if not here.any():
        return True
    mask = np.frombuffer(bytes(is_inv), dtype=np.bool_)
    inv_pos, done_pos = np.flatnonzero(mask), np.flatnonzero(~mask)
    return not bool((inv_pos[got[here] - first] > done_pos[here]).any())


def _pair_one_by_one(lines: list[Any], at: list[int], types: list[str], first: int, in_flight: dict[str, int],
                     orphans: list[tuple[str, str, int]]) -> tuple[list[int], list[Any], list[int]]:
    """A block's completions paired in file order: those of operations not in flight, or
    invoked later in the block, are orphans, judged at the end (`_judge_leftovers`)."""
    inv_pos = [pos for pos, t in enumerate(types) if t == "invoke"]
    indexes, done, done_at = [], [], []
    pop = in_flight.pop
    for pos, r in enumerate(lines):
        if types[pos] == "invoke":
            continue
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
    return indexes, done, done_at


def _check_lines(path: Path, lines: list[_Line], types: list[Any]) -> None:
    """A block of loosely read lines: the first line without an op id or a known kind, or
    without mono or wall, is named (as reading the file line by line would)."""
    if all(r.op for r in lines) and _KINDS.issuperset(types) and not any(
            r.mono is _ABSENT or r.wall is _ABSENT for r in lines):
        return
    for r in lines:
        if not r.op or r.type not in _KINDS:
            raise HistoryError(f"{path}: malformed history line {_shown(r)!r}")
        _number(r, "mono"), _number(r, "wall")


def _as_typed(lines: list[_Line]) -> list[_Line]:
    """Checked loose lines made typed in place, as a sink takes them: names as text, times
    as floats (a time that is no number raises here, for the first such line)."""
    columns = {"f": [str(r.f) for r in lines], "worker": [str(r.worker) for r in lines],
               "user": [str(r.user) for r in lines], "mono": [float(r.mono) for r in lines],
               "wall": [float(r.wall) for r in lines]}
    for name, values in columns.items():
        deque(map(setattr, lines, repeat(name), values), maxlen=0)
    return lines


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


def _line_blocks(path: Path) -> Iterator[tuple[list[Any], list[int], bool]]:
    """(lines, where each starts, typed) of each block: `_TypedLine`s, else `_Line`s. A file
    that held a line `_TypedLine` does not take (written by hand or by another tool) is read
    as `_Line`s from there on, rather than each block twice."""
    for n, file in enumerate(history_files(path)):
        typed = True
        for base, block in read_blocks(file):
            base += n << FILE_SHIFT
            if typed:
                try:
                    lines, at = decode_block(_TYPED, block, base, coerce=_untyped)
                    yield lines, at, True
                    continue
                except _Untyped:
                    typed = False
            lines, at = decode_block(_LINE, block, base, coerce=_coerce)
            yield lines, at, False


class LineReader:
    """Lines of a history read again by their place (`at`), for values kept on disk."""

    WINDOW = 1 << 20  # read ahead: operations are asked for in about the order of their lines

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
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

    def op_id(self, at: int) -> str:
        """The operation id of the line at `at`."""
        return str(_LINE.decode(self.line(at)).op)

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

    def invoke_block(self, lines: list[Any], at: list[int]) -> int:
        first = len(self.ops)
        self.ops.extend(Op(str(r.op), r.f, None, r.worker, r.user, r.mono, r.wall, value=value_of(r.value) or {})
                        for r in lines)
        return first

    def complete_block(self, indexes: np.ndarray, lines: list[Any], at: list[int]) -> None:
        for i, r in zip(indexes.tolist(), lines):
            op = self.ops[i]
            op.outcome, op.complete_mono, op.complete_wall, op.error = r.type, r.mono, r.wall, r.error
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
