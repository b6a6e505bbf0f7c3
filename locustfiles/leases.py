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


class LeaseDesk:
    """A Locust master handing out terminals to its workers (which may be on other hosts).

    A worker elsewhere cannot take this machine's lock files, so it asks the master, which
    takes the lock on its behalf (keeping other runs on this machine off the terminal too)
    and remembers the holder. A lost worker's terminals are never handed out again in the
    run: a request it sent just before it was lost may still reach the system, and the
    checkers must be able to put every effect on those terminals down to that worker.
    """

    def __init__(self, pools: dict[str, list[dict]], board: LeaseBoard) -> None:
        self.board = board
        self._free = {pool: list(terms) for pool, terms in pools.items()}
        self._entry = {t["terminal_id"]: (pool, t) for pool, terms in pools.items() for t in terms}
        self._holder: dict[str, str] = {}  # terminal id -> Locust client id
        self.quarantined: set[str] = set()

    def grant(self, client_id: str, pool: str) -> dict | None:
        """A free terminal of `pool` for `client_id` (its provision.json entry), or None."""
        free = self._free.get(pool) or []
        for i, term in enumerate(free):
            if self.board.try_acquire(term["terminal_id"]):
                self._holder[term["terminal_id"]] = client_id
                return free.pop(i)
        return None

    def release(self, client_id: str, terminal_id: str) -> None:
        if self._holder.get(terminal_id) != client_id or terminal_id in self.quarantined:
            return
        del self._holder[terminal_id]
        self.board.release(terminal_id)
        pool, term = self._entry[terminal_id]
        self._free[pool].append(term)

    def lost(self, client_id: str) -> list[str]:
        """`client_id` is gone: keep its terminals out of use; returns their ids."""
        held = [tid for tid, holder in self._holder.items() if holder == client_id]
        self.quarantined.update(held)
        return held

    def held_by(self, client_id: str) -> list[str]:
        return sorted(tid for tid, holder in self._holder.items() if holder == client_id)

    def close(self) -> None:
        self.board.release_all()
