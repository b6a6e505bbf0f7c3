"""Healing: put every link kugeldrill owns back to normal, on every exit path.

A fault left behind after Ctrl-C or a crash silently breaks the next run, so healing is
built to be run from anywhere — the timeline's normal end, an exception, a signal
handler, the watchdog after the drill process died, or `kugeldrill heal` by hand:

* it is idempotent and reads the server's state first (GET), acting only on what is
  actually there;
* it touches only what carries the `kugeldrill.` prefix: on a proxy named
  `kugeldrill.*` it removes every toxic and re-enables the proxy; on any other proxy it
  removes only toxics named `kugeldrill.*`, and never enables/disables it. It never
  calls POST /reset, which would wipe other people's faults on a shared Toxiproxy;
* a 503 (the server's 25 s handler timeout, e.g. a toxic removal stuck under load) or
  a client timeout is tolerated: the state is re-read with GET and the step retried.

Removing a `timeout` (or `blackhole`) toxic closes every connection it touched — that
is Toxiproxy's design, so healing such a fault is itself one last disconnect.
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
from types import FrameType
from typing import Any

from kugeldrill.chaos.links import PREFIX
from kugeldrill.chaos.toxiproxy import NotFound, Proxy, ToxiproxyClient, ToxiproxyError, ToxiproxyTimeout, Unavailable

HEAL_TIMEOUT = 10.0


@dataclass
class HealReport:
    """What one heal did, and what (if anything) is still not healed."""

    removed: list[str] = field(default_factory=list)   # "proxy/toxic"
    enabled: list[str] = field(default_factory=list)   # proxy names
    errors: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # problems still seen by the final GET (and process check)
    processes: list[str] = field(default_factory=list)  # process heals done: "start app@journal: done"

    @property
    def ok(self) -> bool:
        return not self.remaining

    def summary(self) -> str:
        parts = [f"removed {len(self.removed)} toxic(s)", f"re-enabled {len(self.enabled)} proxy(ies)"]
        if self.processes:
            parts.append(f"started or continued {len(self.processes)} process(es)")
        if self.remaining:
            parts.append("NOT healed: " + "; ".join(self.remaining))
        return ", ".join(parts)


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
        for toxic in owned_toxics(proxy, prefix):
            out.append(f"toxic {toxic} on {name}")
        if name.startswith(prefix) and not proxy.enabled:
            out.append(f"proxy {name} disabled")
    return out


def _client(client: ToxiproxyClient | str, allow_hosts: Iterable[str]) -> tuple[ToxiproxyClient, bool]:
    if isinstance(client, ToxiproxyClient):
        return client, False
    return ToxiproxyClient(client, timeout=HEAL_TIMEOUT, allow_hosts=allow_hosts), True


def heal_all(client: ToxiproxyClient | str, *, proxies: Iterable[str] | None = None, prefix: str = PREFIX,
             attempts: int = 4, allow_hosts: Iterable[str] = (), backoff: float = 0.25) -> HealReport:
    """Remove our toxics and re-enable our proxies; verify with GET; retry on 503/timeout.

    `proxies` restricts healing to those proxy names (a timeline heals only its links);
    None means every proxy on the server, filtered by `prefix`.
    """
    toxi, owned = _client(client, allow_hosts)
    only = list(proxies) if proxies is not None else None
    report = HealReport()
    try:
        for attempt in range(max(1, attempts)):
            try:
                state = toxi.proxies()
            except ToxiproxyError as err:
                report.errors.append(f"GET /proxies: {err}")
                report.remaining = [f"cannot read state: {err}"]
                if isinstance(err, (Unavailable, ToxiproxyTimeout)):
                    time.sleep(backoff * (attempt + 1))
                    continue
                return report
            todo = problems(state, prefix, only)
            if not todo:
                report.remaining = []
                return report
            for name, proxy in state.items():
                if only is not None and name not in only:
                    continue
                for toxic in owned_toxics(proxy, prefix):
                    try:
                        toxi.remove_toxic(name, toxic)
                        report.removed.append(f"{name}/{toxic}")
                    except NotFound:
                        pass
                    except ToxiproxyError as err:  # 503/timeout: re-read state and retry
                        report.errors.append(f"remove {name}/{toxic}: {err}")
                if name.startswith(prefix) and not proxy.enabled:
                    try:
                        toxi.update_proxy(name, enabled=True)
                        report.enabled.append(name)
                    except NotFound:
                        pass
                    except ToxiproxyError as err:
                        report.errors.append(f"enable {name}: {err}")
            report.remaining = todo
            if report.errors:
                time.sleep(backoff * (attempt + 1))
        # Final verification after the last attempt.
        try:
            report.remaining = problems(toxi.proxies(), prefix, only)
        except ToxiproxyError as err:
            report.remaining = [f"cannot verify state: {err}"]
        return report
    finally:
        if owned:
            toxi.close()


def verify_healed(client: ToxiproxyClient | str, *, proxies: Iterable[str] | None = None,
                  prefix: str = PREFIX, allow_hosts: Iterable[str] = ()) -> list[str]:
    """Problems left on the server (empty list = healed). Read-only."""
    toxi, owned = _client(client, allow_hosts)
    try:
        return problems(toxi.proxies(), prefix, list(proxies) if proxies is not None else None)
    finally:
        if owned:
            toxi.close()


@contextmanager
def heal_on_signals(heal: Callable[[], Any], signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
                    ) -> Iterator[None]:
    """Run `heal` once when one of `signals` arrives, then let the previous handler act.

    Chaining keeps the process's behaviour: SIGINT still raises KeyboardInterrupt (or
    whatever handler was installed before), SIGTERM with the default disposition still
    terminates the process — but only after the links are healed. Handlers can only be
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
                heal()
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
