"""Compact columns for tens of millions of records: typed numpy arrays and string buffers.

Why numpy (and not pyarrow or polars): the checkers' records arrive as JSON lines that
msgspec decodes fastest of all the readers measured here (about 1 µs a line with only the
needed fields typed; pyarrow's and polars' JSON readers took 2-3x the CPU on the same
lines and hold whole files as they read). What remains is to keep what a record leaves
behind compact and to join events, applications and operations without a Python object per
record: numpy's typed arrays, sorts and `searchsorted` do exactly that, with no second
data model (a DataFrame) between the adapters and the checkers, which keep reading plain
sequences (`StrColumn`, `CodedColumn`, `array`).

* `StrColumn` -- many distinct strings (event ids, business keys) in one bytes buffer with
  offsets: ~4 bytes per string beside its text, instead of ~50 for a `str` object and a
  list slot. Indexing gives a `str`.
* `CodedColumn` -- few distinct strings (topics, subscribers): one byte per value.
* `HashIndex` (checkers.hashindex) -- string -> position through 64-bit hashes kept sorted.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

import numpy as np

from kugeldrill.checkers.hashindex import HashIndex, hash_of, hashes  # noqa: F401 - where callers find them
from kugeldrill.checkers.load_figures import LoadRecordProblem
from kugeldrill.checkers.op_facts import block_facts, value_facts
from kugeldrill.ground.history_read import LineReader, Op

class StrColumn(Sequence[str]):
    """Strings stored end to end in one buffer; `col[i]` decodes the i-th.

    Appended a block at a time (`extend`); an ASCII block (ids and keys are) is encoded
    in one call."""

    __slots__ = ("_buf", "_ends")

    def __init__(self, strings: Iterable[str] = ()) -> None:
        self._buf = bytearray()
        self._ends = array("I")  # 4 bytes an offset while the buffer is below 4 GiB, then 8
        self.extend(list(strings))

    def _room(self, added: int) -> None:
        if self._ends.typecode == "I" and len(self._buf) + added > 0xFFFFFFFF:
            self._ends = array("q", self._ends)

    def extend(self, strings: Sequence[str]) -> None:
        if not strings:
            return
        joined = "".join(strings)
        base = len(self._buf)
        if joined.isascii():
            data = joined.encode("ascii")
            lengths: Iterable[int] = map(len, strings)
        else:
            encoded = [s.encode() for s in strings]
            data = b"".join(encoded)
            lengths = map(len, encoded)
        self._room(len(data))
        self._buf += data
        self._ends.extend(islice(accumulate(lengths, initial=base), 1, None))

    def append(self, s: str) -> None:
        self.extend([s])

    def extend_encoded(self, data: bytes, lengths: list[int]) -> None:
        """Append strings given as their UTF-8 bytes end to end and each one's length in bytes."""
        base = len(self._buf)
        self._room(len(data))
        self._buf += data
        self._ends.extend(islice(accumulate(lengths, initial=base), 1, None))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        ends = self._ends
        if i < 0:
            i += len(ends)
        start = ends[i - 1] if i > 0 else 0
        return self._buf[start:ends[i]].decode()

    def __iter__(self) -> Iterator[str]:
        buf, start = self._buf, 0
        for end in self._ends:
            yield buf[start:end].decode()
            start = end

    def lengths(self) -> np.ndarray:
        """Each string's length in bytes (0: an empty string)."""
        if not len(self._ends):
            return np.zeros(0, np.int64)
        ends = np.frombuffer(self._ends, dtype=np.uint32 if self._ends.typecode == "I" else np.int64)
        return np.diff(ends.astype(np.int64), prepend=0)

    def nbytes(self) -> int:
        return len(self._buf) + self._ends.itemsize * len(self._ends)


class CodedColumn(Sequence[str]):
    """A column of few distinct strings: a code per value (one byte while there are at most
    256 distinct ones, then two, then four), the strings once."""

    __slots__ = ("codes", "names", "_code")

    def __init__(self) -> None:
        self.codes: Any = bytearray()
        self.names: list[str] = []
        self._code: dict[str, int] = {}

    def code(self, name: str) -> int:
        c = self._code.get(name)
        if c is None:
            c = self._code[name] = len(self.names)
            self.names.append(name)
            if c == 256:
                self.codes = array("H", self.codes)
            elif c == 65536:
                self.codes = array("I", self.codes)
        return c

    def extend(self, strings: Iterable[str]) -> None:
        strings = strings if isinstance(strings, list) else list(strings)
        try:
            codes = map(self._code.__getitem__, strings)  # known values: at C speed
            block = bytes(codes) if isinstance(self.codes, bytearray) else array(self.codes.typecode, codes)
        except KeyError:
            for name in dict.fromkeys(strings):
                self.code(name)
            codes = map(self._code.__getitem__, strings)
            block = bytes(codes) if isinstance(self.codes, bytearray) else array(self.codes.typecode, codes)
        self.codes += block

    def append(self, s: str) -> None:
        self.extend([s])

    def extend_coded(self, block: "Coded") -> None:
        """Append a block coded on its own (`Coded.of`): its codes translated into this column's."""
        if not block.names:
            return
        mine = np.array([self.code(name) for name in block.names], dtype=np.int64)
        codes = mine[np.frombuffer(block.codes, dtype=np.uint8 if len(block.names) <= 256 else np.uint32)]
        if isinstance(self.codes, bytearray):
            self.codes += codes.astype(np.uint8).tobytes()
        else:
            self.codes.frombytes(codes.astype(np.uint16 if self.codes.typecode == "H" else np.uint32).tobytes())

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self.names[self.codes[i]]

    def __iter__(self) -> Iterator[str]:
        return map(self.names.__getitem__, self.codes)

    def array(self) -> np.ndarray:
        if isinstance(self.codes, bytearray):
            return np.frombuffer(self.codes, dtype=np.uint8)
        return np.frombuffer(self.codes, dtype=np.uint16 if self.codes.typecode == "H" else np.uint32)


@dataclass(slots=True)
class Coded:
    """A block of strings coded on its own: the distinct ones, and a code per string (a byte
    while there are at most 256, else four)."""

    names: list[str]
    codes: bytes

    @classmethod
    def of(cls, strings: list[str]) -> "Coded":
        names = list(dict.fromkeys(strings))
        if len(names) == 1:
            return cls(names, bytes(len(strings)))
        codes = map(dict(zip(names, range(len(names)))).__getitem__, strings)
        return cls(names, bytes(codes) if len(names) <= 256 else array("I", codes).tobytes())

    def array(self) -> np.ndarray:
        """Each string's code."""
        return np.frombuffer(self.codes, dtype=np.uint8 if len(self.names) <= 256 else np.uint32)


class BytesColumn(StrColumn):
    """As `StrColumn`, for bytes (raw JSON kept for later): `col[i]` is the i-th bytes."""

    __slots__ = ()

    def extend(self, items: Sequence[bytes]) -> None:  # type: ignore[override]
        if not items:
            return
        base = len(self._buf)
        data = b"".join(items)
        self._room(len(data))
        self._buf += data
        self._ends.extend(islice(accumulate(map(len, items), initial=base), 1, None))

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        ends = self._ends
        if i < 0:
            i += len(ends)
        start = ends[i - 1] if i > 0 else 0
        return bytes(self._buf[start:ends[i]])

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        buf, start = self._buf, 0
        for end in self._ends:
            yield bytes(buf[start:end])
            start = end


class Taken(Sequence[Any]):
    """base[positions[i]] for each i: a column seen through a selection, without a copy."""

    __slots__ = ("base", "positions")

    def __init__(self, base: Sequence[Any], positions: np.ndarray) -> None:
        self.base, self.positions = base, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        return self.base[int(self.positions[i])]

    def __iter__(self) -> Iterator[Any]:
        base = self.base
        return (base[p] for p in self.positions.tolist())


def coded(column: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(codes, names) of a column of few distinct strings: a `CodedColumn`, one seen through a
    selection (`Taken`), or any sequence (coded here)."""
    if isinstance(column, CodedColumn):
        return column.array(), column.names
    if isinstance(column, Taken) and isinstance(column.base, CodedColumn):
        return column.base.array()[column.positions], column.base.names
    col = CodedColumn()
    col.extend(list(column))
    return col.array(), col.names


class OpColumns:
    """The load history's operations in columns.

    Per operation: its kind, outcome, worker and user (coded), four times (NaN: none), where
    its invoke and completion lines are in the history (16 bytes), and what the checkers need
    of its value (`checkers.op_facts`: how it matches its event, the figures it lacks). Its id
    and value -- hundreds of bytes, a sale's items, taxes and payments -- stay on disk and are
    read again only when asked for. Filled by `ground.history_read.pair_history` (this is its
    sink) or, when the history is read in another process, from the block columns it sends
    (`add_invokes` / `add_completions`, adapters.history). Iterating gives `Op` records
    ordered by invoke time, like `ground.history_read.load_ops`; about 60 bytes an operation."""

    def __init__(self, path: str | Path) -> None:
        self.lines = LineReader(path)
        self.op_id = _OpIds(self)  # read again from the invoke line when asked (ids are 36 bytes apiece)
        self.f = CodedColumn()
        self.outcome = CodedColumn()  # "" while in flight (outcome None)
        self.worker = CodedColumn()
        self.user = CodedColumn()
        self.invoke_mono, self.invoke_wall = array("d"), array("d")
        self.complete_mono, self.complete_wall = array("d"), array("d")
        self.invoked_at = array("q")
        self.completed_at = array("q")  # -1: no completion
        self.errors: dict[int, Any] = {}
        self.order: np.ndarray | None = None  # by invoke time, where the file was not already
        # What the checkers need of each value (checkers.op_facts), computed as it is read:
        self.match_kind = bytearray()  # op_facts.NO_KEY / BY_KEY / BY_CASH_TOKEN
        self.match_hash = array("q")  # hash() of its event key, or of its cash token's "scope|token"
        self.lacking: dict[int, list[str]] = {}  # figures its record lacks (load_figures), where any
        self._from_invoke: list[int] = []  # completed without a value: the invoke's value counts

    # -- the sink (ground.history_read.OpSink), a block of lines at a time
    def invoke_block(self, lines: list[Any], at: list[int]) -> int:
        return self.add_invokes(invoke_rows(lines, at))

    def complete_block(self, indexes: list[int], lines: list[Any], at: list[int]) -> None:
        self.add_completions(completion_rows(indexes, lines, at))

    def add_invokes(self, rows: "InvokeRows") -> int:
        """Append a block's invoked operations (outcome none yet); the index of the first."""
        first, n = len(self.invoke_mono), len(rows.mono) // 8
        self.f.extend_coded(rows.f)
        self.outcome.extend_coded(Coded([""], bytes(n)))
        self.worker.extend_coded(rows.worker)
        self.user.extend_coded(rows.user)
        self.invoke_mono.frombytes(rows.mono)
        self.invoke_wall.frombytes(rows.wall)
        self.complete_mono.frombytes(_NAN * n)
        self.complete_wall.frombytes(_NAN * n)
        self.invoked_at.frombytes(rows.at)
        self.completed_at.frombytes(_NONE * n)
        self.match_kind.extend(bytes(n))
        self.match_hash.frombytes(bytes(8 * n))
        return first

    def add_completions(self, rows: "CompletionRows") -> None:
        """Complete a block's operations (by index), with the facts of their values."""
        if not rows.indexes:
            return
        idx = np.frombuffer(rows.indexes, dtype=np.int64)
        for col, values, dtype in ((self.complete_mono, rows.mono, np.float64), (self.complete_wall, rows.wall, np.float64),
                                   (self.completed_at, rows.at, np.int64), (self.match_hash, rows.match_hash, np.int64),
                                   (self.match_kind, rows.match_kind, np.uint8)):
            view = np.frombuffer(col, dtype=dtype)
            view[idx] = np.frombuffer(values, dtype=dtype)
            del view
        outcome = self.outcome
        codes = np.array([outcome.code(t) for t in rows.kinds.names], dtype=np.int64)[rows.kinds.array()]
        view = outcome.array()
        view[idx] = codes
        del view
        self.errors.update(rows.errors)
        self.lacking.update(rows.lacking)  # an operation is completed once: nothing of it is there yet
        self._from_invoke.extend(rows.from_invoke)

    def op_id_of(self, i: int) -> str:
        return self.op_id[i]

    def outcome_of(self, i: int) -> str | None:
        return self.outcome[i] or None

    def finish(self) -> "OpColumns":
        """Order by invoke time (stable), as load_ops does; the facts of operations without a
        completion's value from their invoke's."""
        c_at = np.frombuffer(self.completed_at, dtype=np.int64) if len(self.completed_at) else np.zeros(0, np.int64)
        for i in sorted({*np.flatnonzero(c_at < 0).tolist(), *self._from_invoke}):
            kind, h, missing = value_facts(self.f[i], self.outcome[i] or None, self._value(i))
            self.match_kind[i], self.match_hash[i] = kind, h
            if missing:
                self.lacking[i] = missing
            else:
                self.lacking.pop(i, None)
        self._from_invoke = []
        mono = np.frombuffer(self.invoke_mono, dtype=np.float64) if len(self.invoke_mono) else np.zeros(0)
        if len(mono) > 1 and not bool(np.all(mono[1:] >= mono[:-1])):
            self.order = np.argsort(mono, kind="stable")
        return self

    # -- what the checkers read
    def __len__(self) -> int:
        return len(self.invoke_mono)

    def __bool__(self) -> bool:
        return len(self.invoke_mono) > 0

    def _positions(self) -> Iterable[int]:
        return range(len(self)) if self.order is None else self.order.tolist()

    def _field(self, name: str, i: int) -> Any:
        if name == "value":
            return self._value(i)
        if name == "error":
            return self.errors.get(i)
        if name == "outcome":
            return self.outcome[i] or None
        if name in ("complete_mono", "complete_wall"):
            v = getattr(self, name)[i]
            return None if v != v else v
        return getattr(self, name)[i]

    def column(self, name: str) -> Iterator[Any]:
        """One field of every operation, in invoke order (without building `Op`s)."""
        if name == "value":
            return map(self._value, self._positions())
        if name == "error":
            return map(self.errors.get, self._positions())
        if name == "outcome":
            names = [n or None for n in self.outcome.names]
            return map(names.__getitem__, self._in_order(self.outcome.codes))
        if name in ("complete_mono", "complete_wall"):
            return (None if v != v else v for v in self._in_order(getattr(self, name)))
        return iter(self._in_order(getattr(self, name)))

    def _in_order(self, col: Any) -> Any:
        return col if self.order is None else map(col.__getitem__, self.order.tolist())

    def _value(self, i: int) -> dict[str, Any]:
        """The completion's value (the whole value as the load last knew it), else the invoke's."""
        j = self.completed_at[i]
        value = self.lines.value(j) if j >= 0 else None
        if value is None:
            value = self.lines.value(self.invoked_at[i]) or {}
        return value

    def rows(self, *names: str) -> Iterator[tuple[Any, ...]]:
        return zip(*(self.column(n) for n in names))

    def record_problems(self) -> list[LoadRecordProblem]:
        """`load_figures.load_record_problems` of these operations, from the facts computed as
        they were read (the values of the few that lack figures read again for their ids)."""
        where = sorted(self.lacking)
        if self.order is not None and where:
            rank = np.empty(len(self.order), dtype=np.int64)
            rank[self.order] = np.arange(len(self.order))
            where.sort(key=lambda i: int(rank[i]))
        out = []
        for i in where:
            value = self._value(i)
            out.append(LoadRecordProblem(self.op_id[i], self.f[i], self.outcome[i] or "info", self.lacking[i],
                                         value.get("terminal_no"), value.get("transaction_no")))
        return out

    def __getitem__(self, k: int) -> Op:
        i = k if self.order is None else int(self.order[k])
        return Op(*(self._field(n, i) for n in _OP_FIELDS))

    def __iter__(self) -> Iterator[Op]:
        return (Op(*values) for values in self.rows(*_OP_FIELDS))


class _OpIds(Sequence[str]):
    """The operations' ids, read from their invoke lines (`OpColumns.invoked_at`) when asked."""

    __slots__ = ("_ops",)

    def __init__(self, ops: "OpColumns") -> None:
        self._ops = ops

    def __len__(self) -> int:
        return len(self._ops.invoked_at)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self._ops.lines.op_id(self._ops.invoked_at[i])

    def __iter__(self) -> Iterator[str]:
        return map(self._ops.lines.op_id, self._ops.invoked_at)


_NAN = array("d", [math.nan]).tobytes()
_NONE = array("q", [-1]).tobytes()


@dataclass(slots=True)
class InvokeRows:
    """The invoke lines of a block as `OpColumns` keeps them (made where the lines are read,
    possibly in another process: adapters.history), the numbers as the bytes of their arrays
    (cheap to send, appended with one `frombytes` each)."""

    f: Coded
    worker: Coded
    user: Coded
    mono: bytes  # float64 each
    wall: bytes  # float64 each
    at: bytes  # int64 each


@dataclass(slots=True)
class CompletionRows:
    """The completion lines of a block, by operation index, with their values' facts."""

    indexes: bytes  # int64 each: the operation each line completes
    kinds: Coded  # each completion's outcome
    mono: bytes  # float64 each
    wall: bytes  # float64 each
    at: bytes  # int64 each
    match_kind: bytes  # uint8 each
    match_hash: bytes  # int64 each
    errors: dict[int, Any]
    lacking: dict[int, list[str]]
    from_invoke: list[int]  # completed without a value: the facts come from the invoke's


def invoke_rows(lines: list[Any], at: list[int]) -> InvokeRows:
    """`lines`: typed as ground.history_read.OpSink says (names text, times floats)."""
    return InvokeRows(Coded.of([r.f for r in lines]), Coded.of([r.worker for r in lines]),
                      Coded.of([r.user for r in lines]), array("d", [r.mono for r in lines]).tobytes(),
                      array("d", [r.wall for r in lines]).tobytes(), array("q", at).tobytes())


def completion_rows(indexes: np.ndarray, lines: list[Any], at: list[int]) -> CompletionRows:
    """`lines`: typed as ground.history_read.OpSink says; `indexes`: int64, the operation of each."""
    types = [r.type for r in lines]
    errs = [r.error for r in lines]
    errors = {} if errs.count(None) == len(errs) else {
        i: e for i, e in zip(indexes.tolist(), errs) if e is not None}
    kinds = Coded.of(types)
    facts = block_facts([r.f for r in lines], types, [r.value for r in lines], coded=(kinds.names, kinds.array()))
    lacking = {int(indexes[k]): missing for k, missing in facts.lacking.items()}
    return CompletionRows(indexes.astype(np.int64, copy=False).tobytes(), kinds,
                          array("d", [r.mono for r in lines]).tobytes(), array("d", [r.wall for r in lines]).tobytes(),
                          array("q", at).tobytes(), facts.kind.tobytes(), facts.hash.tobytes(), errors, lacking,
                          indexes[facts.others].tolist())


_OP_FIELDS = ("op_id", "f", "outcome", "worker", "user", "invoke_mono", "invoke_wall", "complete_mono",
              "complete_wall", "value", "error")
