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
* `HashIndex` -- string -> position through 64-bit hashes kept sorted (12 bytes an entry
  instead of ~100 for a dict entry and its key), looked up one at a time or a block at a
  time (`lookup`). Equal hashes of different strings (about 3 in a million runs of ten
  million ids) are resolved exactly by comparing the strings.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, islice
from typing import Any

import numpy as np

#: int64 hashes: Python's own string hash (SipHash), computed once per string object.
hash_of = hash


def hashes(strings: Sequence[str]) -> np.ndarray:
    """The 64-bit hashes of a block of strings (C speed: `map(hash, ...)`)."""
    return np.fromiter(map(hash, strings), dtype=np.int64, count=len(strings))


class StrColumn(Sequence[str]):
    """Strings stored end to end in one buffer; `col[i]` decodes the i-th.

    Appended a block at a time (`extend`); an ASCII block (ids and keys are) is encoded
    in one call."""

    __slots__ = ("_buf", "_ends")

    def __init__(self, strings: Iterable[str] = ()) -> None:
        self._buf = bytearray()
        self._ends = array("q")
        self.extend(list(strings))

    def extend(self, strings: Sequence[str]) -> None:
        if not strings:
            return
        joined = "".join(strings)
        base = len(self._buf)
        if joined.isascii():
            self._buf += joined.encode("ascii")
            lengths: Iterable[int] = map(len, strings)
        else:
            encoded = [s.encode() for s in strings]
            self._buf += b"".join(encoded)
            lengths = map(len, encoded)
        self._ends.extend(islice(accumulate(lengths, initial=base), 1, None))

    def append(self, s: str) -> None:
        self.extend([s])

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
        ends = np.frombuffer(self._ends, dtype=np.int64) if len(self._ends) else np.zeros(0, np.int64)
        return np.diff(ends, prepend=0)

    def nbytes(self) -> int:
        return len(self._buf) + self._ends.itemsize * len(self._ends)


class CodedColumn(Sequence[str]):
    """A column of few distinct strings: one code byte per value, the strings once."""

    __slots__ = ("codes", "names", "_code")

    def __init__(self) -> None:
        self.codes = bytearray()
        self.names: list[str] = []
        self._code: dict[str, int] = {}

    def code(self, name: str) -> int:
        c = self._code.get(name)
        if c is None:
            if len(self.names) == 255:
                raise ValueError("more than 255 distinct values in a coded column")
            c = self._code[name] = len(self.names)
            self.names.append(name)
        return c

    def extend(self, strings: Iterable[str]) -> None:
        code = self.code
        self.codes.extend(code(s) for s in strings)

    def append(self, s: str) -> None:
        self.codes.append(self.code(s))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self.names[self.codes[i]]

    def __iter__(self) -> Iterator[str]:
        names = self.names
        return (names[c] for c in self.codes)

    def array(self) -> np.ndarray:
        return np.frombuffer(self.codes, dtype=np.uint8)


class HashIndex:
    """str -> position in a `StrColumn` (the first position holding it), by sorted hashes.

    Built once (`HashIndex(column, hashes)`); mapping-like for the checkers (`get`, `in`,
    `len`, truth) and vectorised for the adapters (`lookup`)."""

    __slots__ = ("_strings", "_sorted", "_order", "_clash")

    def __init__(self, strings: Sequence[str], hashed: np.ndarray) -> None:
        self._strings = strings
        order = np.argsort(hashed, kind="stable")
        srt = hashed[order]
        self._order = order.astype(np.int32 if len(order) < 2**31 else np.int64)
        self._sorted = srt
        # Hashes held by more than one position: the strings decide (see `get`).
        same = np.flatnonzero(srt[1:] == srt[:-1])
        self._clash = frozenset(srt[same].tolist()) if len(same) else frozenset()

    def __len__(self) -> int:
        return len(self._sorted)

    def __bool__(self) -> bool:
        return len(self._sorted) > 0

    def __contains__(self, s: object) -> bool:
        return isinstance(s, str) and self.get(s) is not None

    def get(self, s: str, default: Any = None) -> Any:
        h = hash_of(s)
        srt = self._sorted
        i = int(np.searchsorted(srt, h))
        while i < len(srt) and srt[i] == h:
            r = int(self._order[i])
            if self._strings[r] == s:
                return r
            i += 1
        return default

    def lookup(self, strings: Sequence[str], hashed: np.ndarray | None = None) -> np.ndarray:
        """Positions of a block of strings (-1 where absent), as an int64 array.

        A string whose hash is held by a stored string is taken to be that string unless
        the hash is held twice (then compared): a different string with the same 64-bit
        hash as one of n stored ones turns up with probability n / 2^64 per lookup."""
        h = hashes(strings) if hashed is None else hashed
        srt = self._sorted
        if not len(srt):
            return np.full(len(h), -1, dtype=np.int64)
        pos = np.searchsorted(srt, h)
        pos[pos == len(srt)] = 0
        found = srt[pos] == h
        rows = np.where(found, self._order[pos], -1).astype(np.int64)
        if self._clash:
            for i in np.flatnonzero(found).tolist():
                if int(h[i]) in self._clash:
                    r = self.get(strings[i])
                    rows[i] = -1 if r is None else r
        return rows


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
