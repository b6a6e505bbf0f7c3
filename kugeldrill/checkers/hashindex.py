"""string -> position through 64-bit hashes: the joins of tens of millions of ids and keys.

`HashIndex` keeps the hashes of a column's strings sorted (12 bytes an entry instead of
~100 for a dict entry and its key), looked up one at a time (`get`) or a block at a time
(`lookup`, `rows_of_hashes`). Equal hashes of different strings (about 3 in a million runs
of ten million ids) are resolved exactly by comparing the strings.

Why a second, chunk-local layer (`_Chunks`) for large columns: a block of lookups in an
index of ten million hashes probes all over 120 MB (hash order scatters neighbours), and
nearly every probe misses the CPU caches: 0.8 µs a lookup, four times the cost at a
million. But the blocks looked up are not scattered in *position*: a subscriber applies
events, and the load completes operations, in about the order they were published, so one
block's positions lie in a narrow range. The chunk layer sorts the hashes within each run
of 65,536 positions (512 KB, cache-sized); a block is first looked up in the chunk the
previous block mostly hit and its neighbours, and only what they miss in the whole index.
The answer is the same either way (a hash held once is found at its one position; one held
more than once is answered -2 whichever layer found it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: int64 hashes: Python's own string hash (SipHash), computed once per string object.
hash_of = hash


def hashes(strings: Sequence[str]) -> np.ndarray:
    """The 64-bit hashes of a block of strings (C speed: `map(hash, ...)`)."""
    return np.fromiter(map(hash, strings), dtype=np.int64, count=len(strings))


#: Lookups handed to the chunk layer at a time (see HashIndex.rows_of_hashes).
_PIECE = 8192


def stable_argsort(hashed: np.ndarray) -> np.ndarray:
    """np.argsort(hashed, kind="stable"), in about half the time: an unstable sort, then the
    runs of equal hashes (rare: hashes of equal strings) put back in position order."""
    order = np.argsort(hashed)
    if len(order) < 2:
        return order
    srt = hashed[order]
    same = np.flatnonzero(srt[1:] == srt[:-1])
    if len(same):
        tied = sorted_unique(np.concatenate((same, same + 1)))  # every place in a run of equal hashes
        order[tied] = order[tied][np.lexsort((order[tied], srt[tied]))]
    return order


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) of an integer array: the distinct values, sorted. NumPy 2 finds an
    integer array's distinct values by hashing unless it is asked for more than the values,
    30-70 times slower than sorting them: a million 64-bit hashes take 0.8 s that way,
    0.01 s this way."""
    if len(values) < 2:
        return np.array(values, copy=True)
    srt = np.sort(values)
    keep = np.empty(len(srt), dtype=np.bool_)
    keep[0] = True
    np.not_equal(srt[1:], srt[:-1], out=keep[1:])
    return srt[keep]


def sorted_search(srt: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """np.searchsorted(srt, needles), the needles looked up in sorted order: random probes
    into a large index miss the CPU caches, ordered ones walk it (about twice as fast for a
    million entries)."""
    if len(needles) < 64:
        return np.searchsorted(srt, needles)
    order = np.argsort(needles)
    pos = np.empty(len(needles), dtype=np.int64)
    pos[order] = np.searchsorted(srt, needles[order])
    return pos


class HashIndex:
    """str -> position in a `StrColumn` (the first position holding it), by sorted hashes.

    Built once (`HashIndex(column, hashes)`); mapping-like for the checkers (`get`, `in`,
    `len`, truth) and vectorised for the adapters (`lookup`)."""

    __slots__ = ("_strings", "_sorted", "_order", "_clash", "_chunks")

    #: Positions per chunk of the chunk-local layer, and the size from which it is built
    #: (below, the whole index is a few MB and stays in the caches anyway).
    CHUNK = 1 << 16
    CHUNKS_FROM = 1 << 20

    def __init__(self, strings: Sequence[str], hashed: np.ndarray) -> None:
        order = stable_argsort(hashed)
        if len(order) < 2**31:
            order = order.astype(np.int32)
        self._set(strings, hashed[order], order)

    @classmethod
    def presorted(cls, strings: Sequence[str], srt: np.ndarray, order: np.ndarray) -> HashIndex:
        """From hashes already sorted (`srt = hashes[order]`, order a stable argsort)."""
        index = cls.__new__(cls)
        index._set(strings, srt, order)
        return index

    def _set(self, strings: Sequence[str], srt: np.ndarray, order: np.ndarray) -> None:
        self._strings = strings
        self._order = order.astype(np.int32, copy=False) if len(order) < 2**31 else order
        self._sorted = srt
        # Hashes held by more than one position: the strings decide (see `get`).
        same = np.flatnonzero(srt[1:] == srt[:-1])
        self._clash = frozenset(srt[same].tolist()) if len(same) else frozenset()
        self._chunks: _Chunks | None = None
        if len(srt) >= self.CHUNKS_FROM:
            hashed = np.empty_like(srt)
            hashed[self._order] = srt  # back in position order
            self._chunks = _Chunks(hashed, self.CHUNK)

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

    def firsts(self) -> np.ndarray:
        """The positions that hold their string first (each distinct string once), in order."""
        srt, order = self._sorted, self._order
        if not len(srt):
            return np.zeros(0, dtype=np.int64)
        new = np.empty(len(srt), dtype=np.bool_)
        new[0] = True
        np.not_equal(srt[1:], srt[:-1], out=new[1:])
        out = order[new].astype(np.int64)
        if self._clash:  # a hash held by different strings: each string's first position
            extra = [int(r) for h in self._clash for r in self._distinct_of(h)]
            out = sorted_unique(np.concatenate((out, np.array(extra, dtype=np.int64))))
        return np.sort(out)

    def _distinct_of(self, h: int) -> list[int]:
        srt = self._sorted
        i = int(np.searchsorted(srt, h))
        seen: dict[str, int] = {}
        while i < len(srt) and srt[i] == h:
            r = int(self._order[i])
            seen.setdefault(self._strings[r], r)
            i += 1
        return list(seen.values())

    def lookup(self, strings: Sequence[str], hashed: np.ndarray | None = None) -> np.ndarray:
        """Positions of a block of strings (-1 where absent), as an int64 array.

        A string whose hash is held by a stored string is taken to be that string unless
        the hash is held twice (then compared): a different string with the same 64-bit
        hash as one of n stored ones turns up with probability n / 2^64 per lookup."""
        rows = self.rows_of_hashes(hashes(strings) if hashed is None else hashed)
        for i in np.flatnonzero(rows == -2).tolist():  # a hash held by different strings: compare them
            r = self.get(strings[i])
            rows[i] = -1 if r is None else r
        return rows

    def rows_of_hashes(self, hashed: np.ndarray) -> np.ndarray:
        """Positions of the strings with these hashes, without the strings: -1 where no stored
        string has the hash, -2 where more than one has (the caller compares the strings)."""
        srt = self._sorted
        if not len(srt):
            return np.full(len(hashed), -1, dtype=np.int64)
        if self._chunks is not None and len(hashed) >= 64:
            # Pieces of a few thousand: each one's positions lie within a chunk or two.
            rows = np.concatenate([self._near(hashed[i:i + _PIECE]) for i in range(0, len(hashed), _PIECE)])
        else:
            rows = self._in_whole(hashed)
        if self._clash:
            clash = np.isin(hashed, np.fromiter(self._clash, dtype=np.int64, count=len(self._clash)))
            rows[clash & (rows >= 0)] = -2
        return rows

    def _near(self, hashed: np.ndarray) -> np.ndarray:
        chunks = self._chunks
        assert chunks is not None
        rows, todo = chunks.find(hashed)
        if len(todo):
            rows[todo] = self._in_whole(hashed[todo])
        chunks.near(rows)
        return rows

    def _in_whole(self, hashed: np.ndarray) -> np.ndarray:
        srt = self._sorted
        pos = sorted_search(srt, hashed)
        pos[pos == len(srt)] = 0
        found = srt[pos] == hashed
        return np.where(found, self._order[pos], -1).astype(np.int64)


class _Chunks:
    """The hashes sorted within each run of `size` positions, with their offsets in the run;
    `find` looks a block up near where the previous block was found (`near`)."""

    __slots__ = ("sorted", "offset", "size", "guesses")

    def __init__(self, hashed: np.ndarray, size: int) -> None:
        n = len(hashed)
        self.size = size
        self.sorted = np.empty(n, dtype=np.int64)
        self.offset = np.empty(n, dtype=np.uint16 if size <= 1 << 16 else np.int64)
        for lo in range(0, n, size):
            seg = hashed[lo:lo + size]
            o = stable_argsort(seg)
            self.sorted[lo:lo + len(seg)] = seg[o]
            self.offset[lo:lo + len(seg)] = o
        self.guesses = [0]  # the chunks the last block mostly hit, most first

    def find(self, hashed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, misses): each hash's position where one of the chunks tried holds it
        (-1 elsewhere), and the indexes of the hashes they did not hold."""
        rows = np.full(len(hashed), -1, dtype=np.int64)
        todo = np.arange(len(hashed))
        n_chunks = -(-len(self.sorted) // self.size)
        tried: set[int] = set()
        for c in [g + d for g in self.guesses for d in (0, 1, -1)]:
            if not len(todo):
                break
            if c < 0 or c >= n_chunks or c in tried:
                continue
            tried.add(c)
            lo, hi = c * self.size, min((c + 1) * self.size, len(self.sorted))
            srt = self.sorted[lo:hi]
            wanted = hashed[todo]
            pos = np.searchsorted(srt, wanted)
            pos[pos == len(srt)] = 0
            hit = srt[pos] == wanted
            rows[todo[hit]] = lo + self.offset[lo:hi][pos[hit]].astype(np.int64)
            todo = todo[~hit]
        return rows, todo

    def near(self, rows: np.ndarray) -> None:
        """The next block is looked up first in the chunks these positions mostly fell in (a
        block may gather the events of several publishers, each a run of rows of its own)."""
        found = rows[rows >= 0]
        if len(found):
            chunks, counts = np.unique(found // self.size, return_counts=True)
            most = np.argsort(-counts, kind="stable")[:4]
            self.guesses = [int(chunks[i]) for i in most if counts[i] * 32 >= len(found)]
