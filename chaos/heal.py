"""Healing: the one path that puts back everything a drill may have left, and reports what it could not.

A fault left behind after Ctrl-C or a crash silently breaks the next run. `heal(parts)` is
the one function every exit path calls — the timeline's end, the drill's cleanup (the
timeline's faults and the environment's links and processes together), the watchdog after
the drill died (the lease's links and process entries) and `kugeldrill heal` by hand. Each
part heals what it knows and then says what is still not healed; the `HealReport` keeps
every part's leftovers, so none can hide another's.

The parts:

* `LinkSweep` (here): every link kugeldrill owns. It reads the server's state first (GET)
  and acts only on what is there; on a proxy named `kugeldrill.*` it removes every toxic
  and re-enables the proxy, on any other proxy it removes only toxics named
  `kugeldrill.*` and never enables or disables it; it never calls POST /reset (which would
  wipe other people's faults on a shared Toxiproxy). A 503 (the server's 25 s handler
  timeout) or a client timeout is tolerated: the state is re-read and the step retried.
* `chaos.fault.FaultsHeal`: a timeline's faults, each healed by its own kind and observed.
* `chaos.processes.ProcessSweep`: process targets continued or started again through a
  `ProcessControl` (the stand-in's, or a target file's commands).
* `chaos.procheal.LeaseEntries`: a dead drill's process entries, without the stack.

Removing a `timeout` (or `blackhole`) toxic closes every connection it touched — that is
Toxiproxy's design, so healing such a fault is itself one last disconnect.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any, Protocol

from kugeldrill.chaos.links import PREFIX
from kugeldrill.chaos.toxiproxy import NotFound, Proxy, ToxiproxyClient, ToxiproxyError, ToxiproxyTimeout, Unavailable
from kugeldrill.ground.netguard import require_loopback

HEAL_TIMEOUT = 10.0


class Healable(Protocol):
    """One part of what may need healing: heal it (what was done), then say what is left."""

    name: str
    errors: list[str]  # what went wrong on the way (retried or not): for the user, not the verdict

    def heal(self) -> list[str]: ...
    def leftovers(self) -> list[str]: ...


@dataclass
class HealReport:
    """What a heal did, what went wrong on the way, and what is still not healed."""

    done: list[str] = field(default_factory=list)  # "removed toxic P/T", "healed crash (kill on app@journal)"
    errors: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # not healed: these reach the verdict

    @property
    def ok(self) -> bool:
        return not self.remaining

    def merge(self, other: HealReport) -> HealReport:
        return HealReport(_unique(self.done + other.done), _unique(self.errors + other.errors),
                          _unique(self.remaining + other.remaining))

    def summary(self) -> str:
        """`5 healed, nothing left` / `nothing to heal, NOT healed: proxy kugeldrill.x disabled`."""
        done = f"{len(self.done)} healed" if self.done else "nothing to heal"
        return f"{done}, " + ("NOT healed: " + "; ".join(self.remaining) if self.remaining else "nothing left")


def heal(parts: Iterable[Healable]) -> HealReport:
    """Heal every part, then ask every part what is left. Never raises: a part that fails is
    itself a leftover ("cannot heal links: ..."), so an unknown state never reads as healed."""
    parts = list(parts)
    report = HealReport()
    for part in parts:
        try:
            report.done += part.heal()
        except Exception as exc:  # noqa: BLE001 - the other parts still heal
            report.errors.append(f"{part.name}: {type(exc).__name__}: {exc}")
    for part in parts:
        try:
            report.remaining += part.leftovers()
            report.errors += part.errors
        except Exception as exc:  # noqa: BLE001 - unverified is not healed
            report.remaining.append(f"cannot verify {part.name}: {type(exc).__name__}: {exc}")
    return HealReport(_unique(report.done), _unique(report.errors), _unique(report.remaining))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def owned_toxics(proxy: Proxy, prefix: str = PREFIX) -> list[str]:
    """Toxic names heal removes from this proxy (all on our proxies, prefixed ones elsewhere)."""
    if proxy.name.startswith(prefix):
        return [t.name for t in proxy.toxics]
    return [t.name for t in proxy.toxics if t.name.startswith(prefix)]


def problems(proxies: dict[str, Proxy], prefix: str = PREFIX, only: Iterable[str] | None = None) -> list[str]:
    """Human-readable list of what is not healed in a GET /proxies answer."""
    wanted = set(only) if only is not None else None
    out = []
    for name, proxy in sorted(proxies.items()):
        if wanted is not None and name not in wanted:
            continue
        out += [f"toxic {toxic} on {name}" for toxic in owned_toxics(proxy, prefix)]
        if name.startswith(prefix) and not proxy.enabled:
            out.append(f"proxy {name} disabled")
    return out


@contextmanager
def _client(client: ToxiproxyClient | str, allow_hosts: Iterable[str]) -> Iterator[ToxiproxyClient]:
    if isinstance(client, ToxiproxyClient):
        yield client
        return
    with ToxiproxyClient(client, timeout=HEAL_TIMEOUT, allow_hosts=allow_hosts) as own:
        yield own


class LinkSweep:
    """Our toxics removed and our proxies enabled on one Toxiproxy; `proxies` restricts it to
    those proxy names (a timeline heals only its links; None: every proxy, by prefix)."""

    name = "links"

    def __init__(self, client: ToxiproxyClient | str, *, proxies: Iterable[str] | None = None,
                 prefix: str = PREFIX, attempts: int = 4, allow_hosts: Iterable[str] = (),
                 backoff: float = 0.25) -> None:
        self.client, self.prefix, self.attempts, self.backoff = client, prefix, max(1, attempts), backoff
        self.only = list(proxies) if proxies is not None else None
        self.allow_hosts = tuple(allow_hosts)
        self.errors: list[str] = []
        if isinstance(client, str):  # refused now, as bad input, not later as something left unhealed
            require_loopback(client, allow_hosts=self.allow_hosts, what="Toxiproxy API")

    def heal(self) -> list[str]:
        done: list[str] = []
        with _client(self.client, self.allow_hosts) as toxi:
            for attempt in range(self.attempts):
                try:
                    state = toxi.proxies()
                except ToxiproxyError as err:
                    self.errors.append(f"GET /proxies: {err}")
                    if not isinstance(err, (Unavailable, ToxiproxyTimeout)):
                        return done
                    time.sleep(self.backoff * (attempt + 1))
                    continue
                if not problems(state, self.prefix, self.only):
                    return done
                failed = self._sweep(toxi, state, done)
                if failed:
                    time.sleep(self.backoff * (attempt + 1))
        return done

    def _sweep(self, toxi: ToxiproxyClient, state: dict[str, Proxy], done: list[str]) -> bool:
        """One pass over the state read; True when a call failed (503/timeout: re-read, retry)."""
        failed = False
        for name, proxy in state.items():
            if self.only is not None and name not in self.only:
                continue
            for toxic in owned_toxics(proxy, self.prefix):
                failed |= self._try(done, f"removed toxic {name}/{toxic}", partial(toxi.remove_toxic, name, toxic))
            if name.startswith(self.prefix) and not proxy.enabled:
                failed |= self._try(done, f"re-enabled proxy {name}", partial(toxi.update_proxy, name, enabled=True))
        return failed

    def _try(self, done: list[str], what: str, call: Callable[[], Any]) -> bool:
        """One heal call: done, already gone (NotFound: healing is idempotent), or failed (True)."""
        try:
            call()
        except NotFound:
            return False
        except ToxiproxyError as err:
            self.errors.append(f"{what}: failed: {err}")
            return True
        done.append(what)
        return False

    def leftovers(self) -> list[str]:
        with _client(self.client, self.allow_hosts) as toxi:
            try:
                return problems(toxi.proxies(), self.prefix, self.only)
            except ToxiproxyError as err:
                return [f"cannot read Toxiproxy {toxi.api}: {err}"]


def verify_healed(client: ToxiproxyClient | str, *, proxies: Iterable[str] | None = None,
                  prefix: str = PREFIX, allow_hosts: Iterable[str] = ()) -> list[str]:
    """Problems left on the server (empty list = healed). Read-only."""
    return LinkSweep(client, proxies=proxies, prefix=prefix, allow_hosts=allow_hosts).leftovers()


@contextmanager
def heal_on_signals(heal_now: Callable[[], Any], signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
                    ) -> Iterator[None]:
    """Run `heal_now` once when one of `signals` arrives, then let the previous handler act.

    Chaining keeps the process's behaviour: SIGINT still raises KeyboardInterrupt (or
    whatever handler was installed before), SIGTERM with the default disposition still
    terminates the process — but only after the faults are healed. Handlers can only be
    installed from the main thread; elsewhere this is a no-op (the watchdog still covers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not done.is_set():
            done.set()
            try:
                heal_now()
            except Exception as exc:  # noqa: BLE001 - a signal handler must not lose the signal
                print(f"kugeldrill: healing on signal {signum} failed: {exc}", file=sys.stderr)
        prev = previous.get(signum, signal.SIG_DFL)
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        # SIG_IGN: the process chose to ignore it; we healed and carry on.

    for sig in signals:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
