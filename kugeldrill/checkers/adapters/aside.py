"""Run one reader in a forked child while this process reads something else.

A drill's run folder holds the history and the events files: a million operations are ~0.6 GB
of history and ~1.2 GB of events, each decoded and folded by Python code that holds one core.
Machines drills run on have two or more, so one reader can run in a child while this process
runs the other. The child sends what it read as records (pickled, each a block's worth of
compact columns) into an unlinked temporary file, which this process reads back once the
child ended: the child never waits for this process, and neither holds the records in memory
(they sit in the file, and in the page cache rather than in either process).

Forked, not spawned: the child starts at once with everything imported, and computes the
same `hash()` of a string as this process (the hash secret is inherited), which the columns'
hash indexes rely on. Forking a process that runs other threads can leave the child holding
a lock a thread held, so with other threads alive, where fork does not exist, on one core or
for small inputs (`can_fork`), callers read in this process instead.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from kugeldrill.ground.malloc import keep_freed_memory

#: Below this many bytes of input a second process costs more than it saves.
MIN_BYTES = 32 << 20


def can_fork(size: int) -> bool:
    """True where a forked child pays and is safe: `size` bytes to read, fork exists, two
    cores or more, no other thread in this process."""
    return (size >= MIN_BYTES and "fork" in multiprocessing.get_all_start_methods()
            and (os.cpu_count() or 1) > 1 and threading.active_count() == 1)


class AsideFailed(RuntimeError):
    """The child ended before it finished (killed, or out of memory)."""


class _Failed:
    """What the child raised, sent as its last record (re-raised here by `records`)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    """The child's last record when `fn` returned: without it the records are incomplete."""


def _child(fn: Callable[..., None], args: tuple[Any, ...], out: BinaryIO) -> None:
    keep_freed_memory()
    # The parent's signal handlers (a drill heals its faults on SIGINT/SIGTERM) are not the
    # child's: it reads and ends. Ctrl-C reaches the whole process group; the parent decides
    # and stops the child (`Aside.close`); a SIGTERM ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)

    def emit(record: Any) -> None:
        pickle.dump(record, out, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        fn(emit, *args)
        emit(_Done())
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            emit(_Failed(exc))
        except Exception:  # noqa: BLE001 - an error that does not pickle: its text
            emit(_Failed(RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        out.flush()


class Aside:
    """`fn(emit, *args)` run in a forked child; `records()` gives what it emitted, in order,
    once it ended, and raises what it raised."""

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        self._out = tempfile.TemporaryFile()
        self._proc = multiprocessing.get_context("fork").Process(target=_child, args=(fn, args, self._out),
                                                                 daemon=True)
        self._proc.start()

    def records(self) -> Iterator[Any]:
        try:
            self._proc.join()
            self._out.seek(0)
            while True:
                try:
                    record = pickle.load(self._out)
                except EOFError:
                    raise AsideFailed(f"the reading process ended (exit code {self._proc.exitcode}) "
                                       "before it finished") from None
                if isinstance(record, _Done):
                    return
                if isinstance(record, _Failed):
                    raise record.error
                yield record
        finally:
            self.close()

    def ended(self) -> bool:
        """The child has ended: `records()` gives them without waiting."""
        return not self._proc.is_alive()

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._out.close()
