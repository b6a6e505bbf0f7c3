"""glibc's malloc told to keep the memory a reader frees, for the next block.

A reader allocates and frees a few megabyte-sized buffers per block (the block read, its
decoded lines, numpy temporaries). glibc's defaults give such memory back to the system
(trimming the heap top, or unmapping a chunk above its adaptive mmap threshold) and fault it
in again for the next block: about 130,000 page faults and 0.2 s of system time per million
operations of history, 0.15 s for the events of a million operations. Keeping up to 64 MB
freed costs a few megabytes of resident memory. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

#: glibc's mallopt parameters (malloc.h) and their defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_THRESHOLD = 128 << 10


def _mallopt() -> object | None:
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> None:
    """For the rest of this process (a forked reader, which ends when it has read)."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest adaptive threshold; fixing it keeps the trim threshold
        mallopt(_M_TRIM_THRESHOLD, 64 << 20)


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """While reading, in a process that goes on afterwards (a drill): glibc's default
    thresholds again after (fixed at their initial value rather than adaptive)."""
    keep_freed_memory()
    try:
        yield
    finally:
        mallopt = _mallopt()
        if mallopt is not None:
            mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
            mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
