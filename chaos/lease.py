"""The watchdog's lease: what to heal if the process that applied faults dies, and its guard.

Signal handlers cannot run on SIGKILL, an OOM kill or a segfault. So a timeline holds a
`Lease`: a file next to its timeline.json naming the Toxiproxy API and proxies it acts on
and, while a process fault is active, a self-contained heal entry for it
(`chaos.procheal`), plus a watchdog process (`python -m kugeldrill.chaos.watchdog`, its
own session) that heals what the lease names once its parent is gone:

    {"version": 2, "api": "http://127.0.0.1:8474", "allow_hosts": [],
     "parent_pid": 123, "proxies": ["kugeldrill.redis@cart"], "state": "active",
     "processes": {"crash": {"target": "app@journal", "need": "start", "do": "spawn", ...}}}

A clean end marks the lease `done` (the watchdog exits untouched) and removes the file; a
heal that left something keeps it `active`, so the watchdog heals after this process exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kugeldrill.ground.jsonfile import write_json_atomic

if TYPE_CHECKING:
    from kugeldrill.chaos.heal import Healable

LEASE_VERSION = 2
LEASE_GLOB = ".chaos-lease-*.json"
ACTIVE, DONE = "active", "done"


def write_lease(path: Path, data: dict[str, Any]) -> None:
    """Atomically (re)write the lease, so the watchdog never reads half a file."""
    write_json_atomic(path, data, indent=1)


def read_lease(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_lease(api: str | None, proxies: Iterable[str], allow_hosts: Iterable[str] = ()) -> dict[str, Any]:
    return {"version": LEASE_VERSION, "api": api, "allow_hosts": list(allow_hosts), "parent_pid": os.getpid(),
            "proxies": sorted(set(proxies)), "state": ACTIVE, "processes": {}}


def leases_beside(timeline_json: Path) -> list[Path]:
    """The leases a timeline left in its run folder (a crashed drill's)."""
    return sorted(timeline_json.parent.glob(LEASE_GLOB))


def lease_parts(lease: dict[str, Any]) -> list[Healable]:
    """What a lease names, as parts of the one heal path: its proxies and its process entries."""
    from kugeldrill.chaos.heal import LinkSweep  # httpx: only when healing
    from kugeldrill.chaos.procheal import LeaseEntries

    parts: list[Healable] = []
    if lease.get("api") and lease.get("proxies"):
        parts.append(LinkSweep(lease["api"], proxies=lease["proxies"], allow_hosts=lease.get("allow_hosts", ())))
    if lease.get("processes"):
        parts.append(LeaseEntries(lease["processes"]))
    return parts


def spawn_watchdog(lease: Path, log: Path | None = None, interval: float = 0.2) -> subprocess.Popen:
    """Start the watchdog for this process (the lease must be written first)."""
    out = open(log, "ab") if log else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "kugeldrill.chaos.watchdog", "--lease", str(lease), "--parent", str(os.getpid()),
             "--interval", str(interval)],
            stdin=subprocess.DEVNULL, stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    finally:
        if out is not None:
            out.close()


class Lease:
    """A lease file and its watchdog; `hold`/`drop` process heal entries, `release` when healed."""

    def __init__(self, folder: Path | None, api: str | None, proxies: Iterable[str],
                 allow_hosts: Iterable[str] = (), *, watchdog: bool = True) -> None:
        self._tmpdir = None if folder is not None else Path(tempfile.mkdtemp(prefix="kugeldrill-lease-"))
        base = folder if folder is not None else self._tmpdir
        assert base is not None
        self.path = base / f".chaos-lease-{os.getpid()}-{id(self):x}.json"
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self.released = False
        write_lease(self.path, make_lease(api, proxies, allow_hosts))
        self.watchdog = spawn_watchdog(self.path, base / "watchdog.log" if folder is not None else None) \
            if watchdog else None

    def hold(self, key: str, entry: dict[str, Any]) -> None:
        """What the watchdog must run to undo an active process fault (written before it acts)."""
        with self._lock:
            self._entries[key] = entry
            self._write()

    def drop(self, key: str) -> None:
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self._write()

    def _write(self) -> None:
        lease = read_lease(self.path)
        if lease is None or lease.get("state") != ACTIVE:
            return
        lease["processes"] = dict(self._entries)
        write_lease(self.path, lease)

    def release(self) -> None:
        """Everything healed: tell the watchdog to exit untouched, and remove the file."""
        with self._lock:
            if self.released:
                return
            lease = read_lease(self.path) or {}
            lease["state"] = DONE
            write_lease(self.path, lease)
            if self.watchdog is not None:
                try:
                    self.watchdog.wait(timeout=2.0)
                except subprocess.TimeoutExpired:  # it exits on its own within one interval
                    self.watchdog.terminate()
                    self.watchdog.wait(timeout=2.0)
            self.path.unlink(missing_ok=True)
            if self._tmpdir is not None:
                try:
                    self._tmpdir.rmdir()
                except OSError:
                    pass
            self.released = True
