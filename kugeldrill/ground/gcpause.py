"""The cyclic garbage collector paused while a reader builds millions of short-lived objects.

Decoding a large file allocates containers (lists, dicts of decoded records) by the million;
each allocation count past the collector's threshold starts a pass over the tracked objects,
and the passes cost a reader of a million-operation history about a tenth of its CPU while
finding nothing: readers free what they allocate by reference counting and make no cycles.
Paused for the reading only, and restored as it was (a cycle made meanwhile is collected at
the next pass after).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
