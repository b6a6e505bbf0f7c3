"""A crash-safe staging area in shared memory for a file that is appended to in batches.

The history's write-ahead rule (kugeldrill.ground.history) needs each operation's invoke
to outlive the Locust process before the operation's effecting request is sent. A
`write()` per operation does that, but a system call per operation cost the load
generator about 1.5 % of its CPU per request (bench/load.py), more than the rest of the
history's writing. A `MAP_SHARED` mapping of a file on tmpfs (/dev/shm) does it for the
cost of a memory copy: its pages belong to the kernel, so whatever is copied in survives
the process being killed, and tmpfs has no write-back to track. The journal holds what has
not reached the real file yet; it is drained into that file with one `write()` per batch.

Layout: a header (bytes in use, the target file's size at the last drain, the owner's pid),
the target file's path, and the bytes. If the owner dies, `recover()` (run by whoever reads
the file afterwards, and by `sweep()` whenever a journal is opened) cuts the file back to
its size at the last drain — a drain cut short by the death may have written part of the
journal — and appends the whole journal: every byte exactly once; then the journal goes,
so a killed process leaves no shared memory behind for long. Where /dev/shm does not exist,
`Journal.open` returns None and callers write directly.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import tempfile
import time
from pathlib import Path

from kugeldrill.ground.pids import pid_running

SHM = Path("/dev/shm")
SIZE = 1 << 20  # about 1,500 history lines; drained every 0.25 s
PREFIX = "kugeldrill-history-"
_HEADER = struct.Struct("<QQQ")  # used, target size at the last drain, owner pid
_USED = struct.Struct("<Q")
_PATH = 4096 - _HEADER.size  # the target's path, NUL-padded
_DATA = _HEADER.size + _PATH
POINTER_SUFFIX = ".journal"


def pointer_for(target: Path) -> Path:
    """Where the journal's path is kept, beside its target file (`w0.jsonl.journal`)."""
    return target.with_name(target.name + POINTER_SUFFIX)


class Journal:
    """The shared-memory staging area of one target file, owned by one process."""

    def __init__(self, target: Path, path: Path, mm: mmap.mmap) -> None:
        self.target = target
        self.path = path
        self._mm = mm
        self._used = 0

    @classmethod
    def open(cls, target: Path, target_fd: int) -> "Journal | None":
        """A journal for `target` (already open as `target_fd`), or None without tmpfs."""
        if not SHM.is_dir() or not os.access(SHM, os.W_OK):
            return None
        path = str(target.resolve()).encode()
        if len(path) >= _PATH:
            return None
        sweep()
        fd, name = tempfile.mkstemp(prefix=PREFIX, dir=SHM)
        try:
            os.ftruncate(fd, SIZE)
            mm = mmap.mmap(fd, SIZE, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
        except OSError:
            os.close(fd)
            os.unlink(name)
            return None
        os.close(fd)
        journal = cls(target, Path(name), mm)
        mm[_HEADER.size:_HEADER.size + len(path)] = path
        _HEADER.pack_into(mm, 0, 0, os.fstat(target_fd).st_size, os.getpid())
        pointer_for(target).write_text(name)
        return journal

    def append(self, data: bytes | bytearray) -> bool:
        """Copy `data` in; once this returns True it outlives this process. False: no room
        (nothing copied; drain it with `data`)."""
        start = _DATA + self._used
        end = start + len(data)
        if end > SIZE:
            return False
        self._mm[start:end] = data
        self._used = end - _DATA
        _USED.pack_into(self._mm, 0, self._used)  # after the bytes: a death in between loses only them
        return True

    def drain(self, fd: int, more: bytes | bytearray = b"") -> None:
        """Write what the journal holds, then `more`, to `fd` in one write; empty the journal."""
        data = self._mm[_DATA:_DATA + self._used] + more if self._used else more
        while data:
            data = data[os.write(fd, data):]
        self._used = 0
        _HEADER.pack_into(self._mm, 0, 0, os.fstat(fd).st_size, os.getpid())

    def close(self) -> None:
        """Drained by the caller: remove the journal and its pointer."""
        self._mm.close()
        for path in (self.path, pointer_for(self.target)):
            try:
                path.unlink()
            except OSError:
                pass


def recover(target: Path) -> int:
    """Put back into `target` what a dead owner's journal held; returns the bytes added.

    Nothing is done while the owner lives (its journal is in use) or without a journal."""
    try:
        journal = Path(pointer_for(target).read_text().strip())
    except OSError:
        return 0
    return _recover_journal(journal)


def sweep() -> int:
    """Recover every journal whose owner died (into the file it names); returns how many."""
    done = 0
    for journal in SHM.glob(PREFIX + "*"):
        try:
            done += _recover_journal(journal) >= 0
        except (OSError, ValueError):
            continue
    return done


def _recover_journal(journal: Path) -> int:
    """-1 when the owner lives (or the journal is gone), else the bytes put back.

    Readers of a run folder and every process opening a journal (`sweep`) may find the same
    dead owner's journal at once: each holds an exclusive lock on it while it recovers, and
    one that finds it gone once the lock is its own leaves it (put back exactly once)."""
    try:
        fd = os.open(journal, os.O_RDWR)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not journal.exists():  # recovered by another process while this one waited
            return -1
        return _recover_locked(journal)
    finally:
        os.close(fd)


def _recover_locked(journal: Path) -> int:
    try:
        raw = journal.read_bytes()
    except OSError:
        return -1
    used, base, pid = _HEADER.unpack_from(raw, 0) if len(raw) >= _DATA else (0, 0, 0)
    if not pid:  # still being made (or its maker died at once): left alone for a minute
        try:
            if time.time() - journal.stat().st_mtime > 60:
                journal.unlink()
        except OSError:
            pass
        return -1
    if pid_running(pid):  # (a zombie writer is gone: its journal is recovered)
        return -1
    target = Path(raw[_HEADER.size:_DATA].rstrip(b"\0").decode(errors="replace"))
    data = raw[_DATA:_DATA + used]
    if data and target.is_file():
        with open(target, "r+b") as fh:
            fh.truncate(min(base, os.fstat(fh.fileno()).st_size))
            fh.seek(0, os.SEEK_END)
            fh.write(data)
    for path in (journal, pointer_for(target)):
        try:
            path.unlink()
        except OSError:
            pass
    return len(data)
