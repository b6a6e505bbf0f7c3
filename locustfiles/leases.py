"""Terminal leases between processes: one flock-ed file per terminal.

Two users must never drive one terminal at the same time. Splitting pools by Locust's
worker index is not enough: the master hands out indexes per connecting client id and
never reuses them, so a worker that reconnects, or a stray worker from another run that
finds the master's port, gets index N or higher. An exclusive `flock` on
`<dir>/<terminal_id>.lock` holds on one machine whatever the indexes are, across every
Locust process using the same tenant, and the kernel drops it when the holder dies.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path


def default_lease_dir(tenant_id: str, store_code: str) -> Path:
    """Per tenant and store, so all runs on this machine driving that store share it."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{tenant_id}-{store_code}")
    return Path(tempfile.gettempdir()) / "kugeldrill-leases" / safe


class LeaseBoard:
    """try_acquire(terminal_id) -> bool; release(terminal_id). Non-blocking, never waits."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._held: dict[str, int] = {}

    def _path(self, terminal_id: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", terminal_id) + ".lock")

    def try_acquire(self, terminal_id: str) -> bool:
        if terminal_id in self._held:
            return False
        fd = os.open(self._path(terminal_id), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another user (any process) holds it
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held[terminal_id] = fd
        return True

    def release(self, terminal_id: str) -> None:
        fd = self._held.pop(terminal_id, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def release_all(self) -> None:
        for terminal_id in list(self._held):
            self.release(terminal_id)
