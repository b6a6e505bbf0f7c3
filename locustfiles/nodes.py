"""kugeldrill on Locust's master/worker protocol: setup, terminal leases and history streams.

Locust already connects workers to a master (zmq over TCP, heartbeats, user dispatch);
kugeldrill adds its messages to that channel (`runner.register_message` /
`runner.send_message`) instead of opening a second one:

| message | direction | what |
|---|---|---|
| `kugeldrill_hello` | worker → master | "send me the run's setup" (with the worker's clocks) |
| `kugeldrill_setup` | master → worker | provision.json, the load config, allowed hosts, the master's clocks |
| `kugeldrill_lease` / `kugeldrill_grant` | worker ↔ master | a terminal of a pool, held by the master's lease desk |
| `kugeldrill_release` | worker → master | the user stopped; the terminal is free again |
| `kugeldrill_history` / `_ack` / `_end` | worker ↔ master | history batches (kugeldrill.locustfiles.stream) |
| `kugeldrill_finish` | master → workers | the run is over: stop the users, send the rest of the history |

So a worker needs nothing on its own disk: `kugeldrill worker --master HOST:PORT` runs the
same locustfile anywhere. Workers forked by `--processes` take the same path, so there is
one way histories come home. The master's `test_stop` waits (bounded) for every worker's
last batch; a worker that went silent is declared lost, its open operations become `info`
(kugeldrill.locustfiles.collector) and its terminals stay out of use.

Timestamps: every history line is written in the master's clocks, so fault windows (taken
on the drill's machine) and operations share one time axis. A worker on the master's own
kernel (same boot id) shares its monotonic clock exactly; one on another host converts
with the offsets measured by the hello/setup round trip (error at most half of it, kept
in the worker's log line).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.collector import FINISH_MARGIN, HistoryCollector
from kugeldrill.locustfiles.leases import LeaseBoard, LeaseDesk, default_lease_dir
from kugeldrill.locustfiles.loadconfig import build_config
from kugeldrill.locustfiles.provision import check_provision
from kugeldrill.locustfiles.runtime import Runtime, Settings, Terminal, check_urls
from kugeldrill.locustfiles.stream import MSG_ACK, MSG_BATCH, MSG_END, HistoryStream

log = logging.getLogger("kugeldrill.load")

MSG_HELLO = "kugeldrill_hello"
MSG_SETUP = "kugeldrill_setup"
MSG_LEASE = "kugeldrill_lease"
MSG_GRANT = "kugeldrill_grant"
MSG_RELEASE = "kugeldrill_release"
MSG_FINISH = "kugeldrill_finish"

SETUP_SECONDS = 60.0  # a worker waits this long for its setup before giving up
HELLO_EVERY = 2.0  # ... saying hello again meanwhile (the master registers its handlers at init)
LEASE_SECONDS = 10.0  # a lease request unanswered this long: the user idles and asks again
TICK_SECONDS = 1.0


def is_worker_command(argv: Sequence[str], environ: dict[str, str] | os._Environ) -> bool:
    """This Locust process (and any it forks) is a worker: its settings come from the master."""
    return any(a == "--worker" for a in argv) or environ.get("LOCUST_MODE_WORKER", "").lower() in ("1", "true")


def boot_id() -> str | None:
    """The kernel's boot id: two processes with the same one share CLOCK_MONOTONIC."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def attach(runtime: Runtime, environment: Any, on_settings: Callable[[Settings], None]) -> None:
    """Wire `runtime` into the Locust process's role (called from the locustfile's init)."""
    runtime.environment = environment
    kind = type(environment.runner).__name__
    if kind == "MasterRunner":
        MasterNode(runtime, environment).attach()
    elif kind == "WorkerRunner":
        WorkerNode(runtime, environment, on_settings).attach()
    else:
        environment.events.test_stop.add_listener(lambda **_kw: runtime.flush())


# ---------------------------------------------------------------------------- master


class MasterNode:
    """The master hands out setup and terminals, and collects the history streams."""

    def __init__(self, runtime: Runtime, environment: Any) -> None:
        settings = runtime.settings
        assert settings is not None
        self.runtime = runtime
        self.environment = environment
        self.runner = environment.runner
        prov = settings.provision
        self.desk = LeaseDesk(prov["terminals"], LeaseBoard(
            settings.lease_dir or default_lease_dir(str(prov["tenant_id"]), str(prov["store_code"]))))
        self.collector: HistoryCollector | None = None
        if settings.history_dir is not None:
            self.collector = HistoryCollector(settings.history_dir,
                                              RunFolder(settings.history_dir.parent).load_workers_json)

    def attach(self) -> None:
        on = self.runner.register_message
        on(MSG_HELLO, self._hello)
        on(MSG_LEASE, self._lease)
        on(MSG_RELEASE, self._release)
        on(MSG_BATCH, self._batch)
        on(MSG_END, self._end)
        self.environment.events.test_stop.add_listener(self._finish)
        self.environment.events.quit.add_listener(self._close)
        if self.collector is not None:
            self.runner.greenlet.spawn(self._watch)

    def _index(self, client_id: str) -> int:
        return int(self.runner.get_worker_index(client_id))

    def _reply(self, msg_type: str, data: dict[str, Any], client_id: str) -> None:
        try:
            self.runner.send_message(msg_type, data, client_id=client_id)
        except Exception as exc:  # noqa: BLE001 - Locust's RPC errors; the worker asks again or is lost
            log.warning("cannot send %s to worker %s: %s", msg_type, client_id, exc)

    def _hello(self, environment: Any, msg: Any, **_kw: Any) -> None:
        s = self.runtime.settings
        assert s is not None
        if self.collector is not None:
            self.collector.stream(msg.node_id, self._index(msg.node_id))  # known even if it never sends a batch
        self._reply(MSG_SETUP, {"provision": s.provision, "config": s.config.to_dict(),
                                "allow_hosts": list(s.allow_hosts), "history": self.collector is not None,
                                "boot_id": boot_id(), "mono": time.monotonic(), "wall": time.time(),
                                "echo": (msg.data or {}).get("mono")}, msg.node_id)

    def _lease(self, environment: Any, msg: Any, **_kw: Any) -> None:
        data = msg.data or {}
        term = self.desk.grant(msg.node_id, str(data.get("pool")))
        self._reply(MSG_GRANT, {"req": data.get("req"), "terminal": term}, msg.node_id)

    def _release(self, environment: Any, msg: Any, **_kw: Any) -> None:
        self.desk.release(msg.node_id, str((msg.data or {}).get("terminal_id")))

    def _batch(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.collector is None:
            return
        data = msg.data or {}
        seq = self.collector.on_batch(msg.node_id, self._index(msg.node_id), int(data["seq"]), list(data["lines"]))
        self._reply(MSG_ACK, {"seq": seq}, msg.node_id)

    def _end(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.collector is None:
            return
        data = msg.data or {}
        self.collector.on_end(msg.node_id, self._index(msg.node_id), int(data["seq"]), int(data["operations"]))

    def _alive(self, client_id: str) -> bool:
        node = self.runner.clients.get(client_id)
        return node is not None and node.state != "missing"

    def _watch(self) -> None:
        """Note when Locust first misses a streaming worker's heartbeats (for the verdict)."""
        assert self.collector is not None
        while True:
            gevent.sleep(TICK_SECONDS)
            for rec in self.collector.unfinished():
                if not self._alive(rec.client_id):
                    self.collector.mark_missing(rec.client_id)

    def _finish(self, environment: Any, **_kw: Any) -> None:
        """The run ends: ask every worker to stop and send its last batch; wait for them (a
        worker Locust marks missing is not waited for); declare the silent ones lost."""
        try:
            self.runner.send_message(MSG_FINISH)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot send %s: %s", MSG_FINISH, exc)
        if self.collector is None:
            return
        deadline = time.monotonic() + float(environment.stop_timeout or 0) + FINISH_MARGIN
        while time.monotonic() < deadline and any(self._alive(r.client_id) for r in self.collector.unfinished()):
            gevent.sleep(0.2)
        for rec in self.collector.finish():
            held = self.desk.lost(rec.client_id)
            log.warning("load worker %s was lost: %d operations without an outcome are recorded as info; "
                        "its terminals %s stay out of use", rec.describe(), rec.lost_open, ", ".join(held) or "-")

    def _close(self, **_kw: Any) -> None:
        if self.collector is not None:
            self.collector.write_ledger()
            self.collector.close()
        self.desk.close()


# ---------------------------------------------------------------------------- worker


class RemoteLeases:
    """A worker's terminals, leased from the master's desk."""

    def __init__(self, send: Callable[[str, dict[str, Any]], None]) -> None:
        self._send = send
        self._seq = itertools.count(1)
        self._waiting: dict[int, AsyncResult] = {}

    def acquire(self, pool: str) -> Terminal | None:
        req = next(self._seq)
        result = self._waiting[req] = AsyncResult()
        try:
            self._send(MSG_LEASE, {"req": req, "pool": pool})
            t = result.get(timeout=LEASE_SECONDS)
        except gevent.Timeout:
            log.warning("the master did not answer a lease request for pool %r within %g s", pool, LEASE_SECONDS)
            return None
        finally:
            self._waiting.pop(req, None)
        return None if t is None else Terminal(pool, t["terminal_id"], int(t["terminal_no"]), t["api_key"])

    def on_grant(self, data: dict[str, Any]) -> None:
        result = self._waiting.get(data.get("req"))  # type: ignore[arg-type]
        if result is not None:
            result.set(data.get("terminal"))
        elif data.get("terminal"):  # answered after the user gave up: hand it straight back
            self._send(MSG_RELEASE, {"terminal_id": data["terminal"]["terminal_id"]})

    def release(self, term: Terminal) -> None:
        self._send(MSG_RELEASE, {"terminal_id": term.terminal_id})

    def close(self) -> None:
        pass


class WorkerNode:
    """A worker takes its setup and terminals from the master and streams its history there."""

    def __init__(self, runtime: Runtime, environment: Any, on_settings: Callable[[Settings], None]) -> None:
        self.runtime = runtime
        self.environment = environment
        self.runner = environment.runner
        self.on_settings = on_settings
        self._setup: dict[str, Any] | None = None
        self._got_setup = Event()
        self.stream: HistoryStream | None = None
        self.clock_error = 0.0

    def send(self, msg_type: str, data: dict[str, Any]) -> None:
        """To the master; a send that fails is logged (batches are resent, leases asked again)."""
        try:
            self.runner.send_message(msg_type, data)
        except Exception as exc:  # noqa: BLE001 - Locust's RPC errors
            log.warning("cannot send %s to the master: %s", msg_type, exc)

    def attach(self) -> None:
        leases = RemoteLeases(self.send)
        on = self.runner.register_message
        on(MSG_SETUP, self._on_setup)
        on(MSG_GRANT, lambda environment, msg, **_kw: leases.on_grant(msg.data or {}))
        on(MSG_ACK, self._on_ack)
        on(MSG_FINISH, lambda environment, msg, **_kw: environment.runner.stop(), concurrent=True)
        setup = self._wait_for_setup()
        try:
            settings = self._settings(setup)
        except DrillError as err:
            print(f"kugeldrill: error: the master's setup is unusable: {err.render()}", file=sys.stderr)
            raise SystemExit(2) from None
        self.runtime.settings = settings
        self.runtime.leases = leases
        self.on_settings(settings)
        if setup.get("history"):
            self.stream = HistoryStream(self.runtime.worker_id(), self.send,
                                        durable_timeout=settings.config.network_timeout)
            self.stream.clock_offset = self._clock_offset(setup)
            self.runtime.sink = self.stream
            self.runner.greenlet.spawn(self._ticker)
        self.environment.events.test_stop.add_listener(self._stopped)
        # Locust fires `quitting` in reverse order, so this runs before the worker's own
        # listener tells the master it quits: a worker stopped by a signal still sends the rest
        # of its history and its end first, on the same connection, and is not taken for lost.
        self.environment.events.quitting.add_listener(lambda environment, **_kw: environment.runner.stop())
        self.environment.events.quit.add_listener(self._quit)
        log.info("kugeldrill worker %s: setup from the master (%d terminals in %d pools)", self.runtime.worker_id(),
                 sum(len(t) for t in settings.provision["terminals"].values()), len(settings.provision["terminals"]))

    def _wait_for_setup(self) -> dict[str, Any]:
        deadline = time.monotonic() + SETUP_SECONDS
        while time.monotonic() < deadline:
            self._sent_mono = time.monotonic()
            self.send(MSG_HELLO, {"mono": self._sent_mono, "wall": time.time(), "boot_id": boot_id()})
            if self._got_setup.wait(HELLO_EVERY) and self._setup is not None:
                return self._setup
        print(f"kugeldrill: error: the Locust master sent no kugeldrill setup within {SETUP_SECONDS:g} s "
              "(is it running kugeldrill's locustfile, with KUGELDRILL_PROVISION set?)", file=sys.stderr)
        raise SystemExit(2)

    def _on_setup(self, environment: Any, msg: Any, **_kw: Any) -> None:
        self._setup = dict(msg.data or {})
        self._setup["received_mono"], self._setup["received_wall"] = time.monotonic(), time.time()
        self._got_setup.set()

    @staticmethod
    def _settings(setup: dict[str, Any]) -> Settings:
        prov = check_provision(setup.get("provision"), "the master's provision")
        config = build_config(setup.get("config") or {}, "the master's load config")
        allow = tuple(str(h) for h in setup.get("allow_hosts") or ())
        return Settings(prov, config, check_urls(prov, allow), None, allow)

    def _clock_offset(self, setup: dict[str, Any]) -> tuple[float, float]:
        """(wall, mono) to add to this worker's clocks to read the master's."""
        if setup.get("boot_id") and setup.get("boot_id") == boot_id():
            return 0.0, 0.0  # the same kernel: one monotonic clock, one wall clock
        echo = setup.get("echo")
        rtt = setup["received_mono"] - echo if isinstance(echo, (int, float)) else 0.0
        self.clock_error = rtt / 2
        return (float(setup["wall"]) + rtt / 2 - setup["received_wall"],
                float(setup["mono"]) + rtt / 2 - setup["received_mono"])

    def _on_ack(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.stream is not None:
            self.stream.on_ack(int((msg.data or {}).get("seq", 0)))

    def _ticker(self) -> None:
        while True:
            gevent.sleep(TICK_SECONDS)
            if self.stream is not None:
                self.stream.tick()

    def _stopped(self, **_kw: Any) -> None:
        if self.stream is not None:
            self.stream.finish()

    def _quit(self, **_kw: Any) -> None:
        if self.stream is not None:
            clock = "" if not self.clock_error else f"; clocks aligned to the master's within {self.clock_error * 1e3:.1f} ms"
            print(f"kugeldrill worker {self.runtime.worker_id()}: {self.stream.summary()}{clock}", file=sys.stderr)
