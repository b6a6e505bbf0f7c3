"""Per-process load state: settings, the history sink, and terminal leases.

Kugelpos serialises nothing per terminal for us: two users driving one terminal would
interleave carts and counters and make the history ambiguous. So terminals are leased, one
user at a time. A single Locust process leases through an flock-ed file per terminal
(locustfiles/leases.py), which every Locust process on the machine respects. Workers of a
Locust master — forked by `--processes` or on other hosts — lease from the master, which
holds those locks for them, and send their history to it (kugeldrill.locustfiles.nodes
sets `leases` and `sink` for them). The history writer of a single process is created
lazily, after Locust has told the process who it is.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.history import HistoryBuffer, HistoryWriter
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
    allow = tuple(h for h in env.get("KUGELDRILL_ALLOW_HOSTS", "").split(",") if h)
    urls = check_urls(prov, allow)
    for pool in (config.cart_pool, config.cash_pool, config.openclose_pool):
        if pool not in prov["terminals"]:
            log.warning("provision has no terminal pool %r; users of that pool will idle", pool)
    history = env.get("KUGELDRILL_HISTORY_DIR")
    lease = env.get("KUGELDRILL_LEASE_DIR")
    return Settings(prov, config, urls, Path(history) if history else None, allow,
                    Path(lease) if lease else None)


def check_urls(provision: dict[str, Any], allow_hosts: tuple[str, ...]) -> dict[str, str]:
    """provision.json's service URLs, each loopback unless `allow_hosts` lists its host."""
    urls = {app: str(url).rstrip("/") for app, url in (provision.get("urls") or {}).items()}
    for app, url in urls.items():
        require_loopback(url, allow_hosts=allow_hosts, what=f"{app} URL from provision")
    return urls


class Leases(Protocol):
    """Where a process's users get their terminals (a lease board here, or the master)."""

    def acquire(self, pool: str) -> Terminal | None: ...

    def release(self, term: Terminal) -> None: ...

    def close(self) -> None: ...


class LocalLeases:
    """A single Locust process: provision.json's pools, leased through this machine's lock files."""

    def __init__(self, provision: dict[str, Any], lease_dir: Path | None) -> None:
        self._board = LeaseBoard(lease_dir or default_lease_dir(str(provision["tenant_id"]),
                                                                str(provision["store_code"])))
        self._free = {pool: [Terminal(pool, t["terminal_id"], int(t["terminal_no"]), t["api_key"]) for t in terms]
                      for pool, terms in provision["terminals"].items()}

    def acquire(self, pool: str) -> Terminal | None:
        free = self._free.get(pool) or []
        for i, term in enumerate(free):
            if self._board.try_acquire(term.terminal_id):
                return free.pop(i)
        return None

    def release(self, term: Terminal) -> None:
        self._free.setdefault(term.pool, []).append(term)
        self._board.release(term.terminal_id)

    def close(self) -> None:
        self._board.release_all()


class Runtime:
    """One per Locust process: its settings, leases, history sink and worker id.

    `settings` is None in a worker until its master sent the run's setup
    (kugeldrill.locustfiles.nodes); a single process reads them from its environment."""

    def __init__(self, settings: Settings | None) -> None:
        self.settings = settings
        self.environment: Any = None
        self.worker: str | None = None
        self.sink: HistoryBuffer | None = None  # set by the node wiring, else created on first use
        self.leases: Leases | None = None
        self._warned: set[str] = set()

    # -- identity --------------------------------------------------------------------
    def worker_id(self) -> str:
        """`w<index>`: Locust's worker index (0 for a single process), the shard's name."""
        if self.worker is None:
            runner = getattr(self.environment, "runner", None)
            self.worker = f"w{max(int(getattr(runner, 'worker_index', 0) or 0), 0)}"
            # Workers forked by --processes inherit one random state: reseed so they differ.
            random.seed(os.urandom(16))
        return self.worker

    def history(self) -> HistoryBuffer | None:
        """This process's history sink (None when the run records no history)."""
        if self.sink is None and self.settings is not None and self.settings.history_dir is not None:
            self.sink = HistoryWriter(self.settings.history_dir, self.worker_id())
        return self.sink

    def flush(self) -> None:
        if self.sink is not None:
            self.sink.flush()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        if self.leases is not None:
            self.leases.close()

    # -- terminals -------------------------------------------------------------------
    def _leases(self) -> Leases:
        if self.leases is None:
            assert self.settings is not None, "a worker leases terminals once its master sent the setup"
            self.leases = LocalLeases(self.settings.provision, self.settings.lease_dir)
        return self.leases

    def acquire(self, pool: str) -> Terminal | None:
        """A terminal of `pool` that no other user, in any process, holds; or None."""
        term = self._leases().acquire(pool)
        if term is None and pool not in self._warned:
            self._warned.add(pool)
            log.warning("terminal pool %r exhausted on worker %s: extra users idle (provision more terminals)",
                        pool, self.worker_id())
        return term

    def release(self, term: Terminal) -> None:
        self._leases().release(term)


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
