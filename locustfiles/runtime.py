"""Per-process load state: settings, the history shard, and terminal leases.

Kugelpos serialises nothing per terminal for us: two users driving one terminal would
interleave carts and counters and make the history ambiguous. So terminals are leased,
one user at a time, through an flock-ed file per terminal (locustfiles/leases.py) that
every Locust process on the machine respects. Workers on several machines additionally
split each pool by worker index (`KUGELDRILL_WORKERS=N`: worker i takes `pool[i % N::N]`).
The history writer is created lazily, after Locust has told a worker its index, so the
shard is named after the worker (`w<index>.jsonl`).
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.history import HistoryWriter
from kugeldrill.locustfiles.loadconfig import LoadConfig, load_config
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.locustfiles.provision import check_provision, load_provision
from kugeldrill.locustfiles.leases import LeaseBoard, default_lease_dir

log = logging.getLogger("kugeldrill.load")


@dataclass
class Terminal:
    """A provisioned terminal, plus what users learn about it while driving it."""

    pool: str
    terminal_id: str
    terminal_no: int
    api_key: str
    token: str | None = None  # terminal JWT (jwt mode), replaced by X-New-Token answers
    status: str | None = None  # Opened / Closed / None = unknown (after an info outcome)
    sales: list[dict[str, Any]] = field(default_factory=list)  # ok sales not yet voided/returned


@dataclass
class Settings:
    """Everything the users read: provision.json, the load config and service URLs."""

    provision: dict[str, Any]
    config: LoadConfig
    urls: dict[str, str]
    history_dir: Path | None
    allow_hosts: tuple[str, ...] = ()
    lease_dir: Path | None = None  # None: default_lease_dir(tenant, store)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read KUGELDRILL_PROVISION (file) or KUGELDRILL_PROVISION_JSON (inline), the load config,
    KUGELDRILL_HISTORY_DIR and KUGELDRILL_ALLOW_HOSTS; every problem is a DrillError."""
    env = dict(os.environ if environ is None else environ)
    if env.get("KUGELDRILL_PROVISION"):
        prov = load_provision(env["KUGELDRILL_PROVISION"])
    elif env.get("KUGELDRILL_PROVISION_JSON"):
        try:
            prov = check_provision(json.loads(env["KUGELDRILL_PROVISION_JSON"]), "KUGELDRILL_PROVISION_JSON")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"KUGELDRILL_PROVISION_JSON is not valid JSON: {exc}") from None
    else:
        raise ConfigError("no credentials: set KUGELDRILL_PROVISION=<provision.json> "
                          "(or KUGELDRILL_PROVISION_JSON='{...}')",
                          hint="create one with 'kugeldrill provision --urls ... --out DIR'")
    config = load_config(environ=env)
    allow = [h for h in env.get("KUGELDRILL_ALLOW_HOSTS", "").split(",") if h]
    urls = {app: str(url).rstrip("/") for app, url in (prov.get("urls") or {}).items()}
    for app, url in urls.items():
        require_loopback(url, allow_hosts=allow, what=f"{app} URL from provision")
    for pool in (config.cart_pool, config.cash_pool, config.openclose_pool):
        if pool not in prov["terminals"]:
            log.warning("provision has no terminal pool %r; users of that pool will idle", pool)
    history = env.get("KUGELDRILL_HISTORY_DIR")
    lease = env.get("KUGELDRILL_LEASE_DIR")
    return Settings(prov, config, urls, Path(history) if history else None, tuple(allow),
                    Path(lease) if lease else None)


class Runtime:
    """One per Locust process: leases, the history shard, the worker id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.environment: Any = None
        self.worker: str | None = None
        self._history: HistoryWriter | None = None
        self._free: dict[str, list[Terminal]] | None = None
        self._board: LeaseBoard | None = None
        self._warned: set[str] = set()

    # -- identity --------------------------------------------------------------------
    def worker_slot(self) -> tuple[int, int]:
        """(index, count) for splitting pools between machines; (index, 1) unless
        KUGELDRILL_WORKERS is set and the workers were not forked by --processes (one
        machine needs no split: the lease files suffice, whatever the indexes)."""
        runner = getattr(self.environment, "runner", None)
        index = max(int(getattr(runner, "worker_index", 0) or 0), 0)
        if type(runner).__name__ != "WorkerRunner":
            return 0, 1
        count = self.settings.config.workers
        opts = getattr(self.environment, "parsed_options", None)
        if int(getattr(opts, "processes", 0) or 0) != 0:
            return index, 1  # forked by --processes: one machine, the lease files keep users apart
        return (index, count) if count > 1 else (index, 1)

    def worker_id(self) -> str:
        if self.worker is None:
            self.worker = f"w{self.worker_slot()[0]}"
            # Workers forked by --processes inherit one random state: reseed so they differ.
            random.seed(os.urandom(16))
        return self.worker

    def history(self) -> HistoryWriter | None:
        """This process's shard writer (None when no KUGELDRILL_HISTORY_DIR is set)."""
        if self._history is None and self.settings.history_dir is not None:
            self._history = HistoryWriter(self.settings.history_dir, self.worker_id())
        return self._history

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None
        if self._board is not None:
            self._board.release_all()

    # -- terminals -------------------------------------------------------------------
    def _pools(self) -> dict[str, list[Terminal]]:
        if self._free is None:
            index, count = self.worker_slot()
            prov = self.settings.provision
            self._board = LeaseBoard(self.settings.lease_dir
                                     or default_lease_dir(str(prov["tenant_id"]), str(prov["store_code"])))
            self._free = {}
            for pool, terms in prov["terminals"].items():
                mine = terms[index % count::count]
                self._free[pool] = [Terminal(pool, t["terminal_id"], int(t["terminal_no"]), t["api_key"])
                                    for t in mine]
        return self._free

    def acquire(self, pool: str) -> Terminal | None:
        """A terminal of `pool` that no other user, in any process, holds; or None."""
        free = self._pools().get(pool) or []
        for i, term in enumerate(free):
            if self._board.try_acquire(term.terminal_id):
                return free.pop(i)
        if pool not in self._warned:
            self._warned.add(pool)
            log.warning("terminal pool %r exhausted on worker %s: extra users idle (provision more terminals)",
                        pool, self.worker_id())
        return None

    def release(self, term: Terminal) -> None:
        self._pools().setdefault(term.pool, []).append(term)
        self._board.release(term.terminal_id)


_RUNTIME: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's Runtime, created on first use from the environment."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime(load_settings())
    return _RUNTIME


def set_runtime(runtime: Runtime | None) -> None:
    """Install a Runtime (tests, library use)."""
    global _RUNTIME
    _RUNTIME = runtime
