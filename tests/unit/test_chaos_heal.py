"""Heal logic that a healthy real server cannot provoke: 503s and timeouts during heal, and
signal-handler chaining. The 503 server is a small stateful fake over httpx.MockTransport."""

from __future__ import annotations

import json
import os
import signal

import httpx
import pytest

from kugeldrill.ground.signals import react_to_sigint

from kugeldrill.chaos.heal import HealReport, LinkSweep, heal, heal_on_signals
from kugeldrill.chaos.toxiproxy import ToxiproxyClient


class FlakyServer:
    """Toxiproxy-shaped state; the first DELETE of each toxic answers 503 but still removes it
    later (as a slow removal under load does), the first PATCH times out."""

    def __init__(self) -> None:
        self.proxies = {
            "kugeldrill.redis@cart": {"name": "kugeldrill.redis@cart", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                                      "enabled": False, "toxics": [{"name": "kugeldrill.f1.up", "type": "timeout",
                                                                    "stream": "upstream", "toxicity": 1, "attributes": {}}]},
            "other": {"name": "other", "listen": "127.0.0.1:3", "upstream": "127.0.0.1:4", "enabled": False,
                      "toxics": [{"name": "mine", "type": "latency", "stream": "downstream", "toxicity": 1,
                                  "attributes": {}}]},
        }
        self.calls: list[str] = []
        self.failed: set[str] = set()

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path
        self.calls.append(f"{req.method} {path}")
        if req.method == "GET" and path == "/proxies":
            return httpx.Response(200, json=self.proxies)
        parts = path.strip("/").split("/")
        proxy = self.proxies[parts[1]]
        if req.method == "DELETE" and len(parts) == 4:
            if path not in self.failed:
                self.failed.add(path)
                proxy["toxics"] = [t for t in proxy["toxics"] if t["name"] != parts[3]]  # finishes late
                return httpx.Response(503, text="")
            return httpx.Response(404, text='{"error":"toxic not found","status":404}\n')
        if req.method == "PATCH":
            if path not in self.failed:
                self.failed.add(path)
                raise httpx.ReadTimeout("slow", request=req)
            proxy.update(json.loads(req.content))
            return httpx.Response(200, json=proxy)
        return httpx.Response(500, text='{"error":"unexpected","status":500}')


def test_heal_tolerates_503_and_timeouts_and_rechecks():
    server = FlakyServer()
    client = ToxiproxyClient("http://127.0.0.1:8474", transport=httpx.MockTransport(server))
    report = heal([LinkSweep(client, backoff=0.0)])
    assert report.ok, report
    assert report.errors and any("HTTP 503" in e for e in report.errors)
    assert server.proxies["kugeldrill.redis@cart"]["enabled"] is True
    assert server.proxies["kugeldrill.redis@cart"]["toxics"] == []
    assert server.proxies["other"]["toxics"][0]["name"] == "mine"  # not ours: untouched
    assert server.proxies["other"]["enabled"] is False
    assert server.calls.count("GET /proxies") >= 2  # state re-read after the failures
    assert not any(c.startswith(("POST /reset",)) for c in server.calls)


def test_heal_reports_what_remains_when_server_keeps_failing():
    def handler(req):
        if req.method == "GET":
            return httpx.Response(200, json={"kugeldrill.x": {"name": "kugeldrill.x", "listen": "127.0.0.1:1",
                                                               "upstream": "127.0.0.1:2", "enabled": False, "toxics": []}})
        return httpx.Response(503, text="")

    report = heal([LinkSweep(ToxiproxyClient("http://127.0.0.1:8474", transport=httpx.MockTransport(handler)),
                             attempts=2, backoff=0.0)])
    assert not report.ok
    assert report.remaining == ["proxy kugeldrill.x disabled"]


class Part:
    """A heal part whose heal or verification fails on purpose."""

    def __init__(self, name: str, left: list[str], *, heal_fails: bool = False, verify_fails: bool = False) -> None:
        self.name, self.left, self.heal_fails, self.verify_fails = name, left, heal_fails, verify_fails
        self.errors: list[str] = []

    def heal(self) -> list[str]:
        if self.heal_fails:
            raise RuntimeError("control gone")
        return [f"healed {self.name}"]

    def leftovers(self) -> list[str]:
        if self.verify_fails:
            raise TimeoutError("no answer")
        return list(self.left)


def test_one_heal_keeps_every_parts_leftovers() -> None:
    """A part that is healed cannot hide another's leftovers; a part that cannot even be asked
    is a leftover itself (unknown is never healed); the same leftover is said once."""
    report = heal([Part("faults", ["process redis is stopped"]), Part("links", []),
                   Part("processes", ["process redis is stopped"], heal_fails=True),
                   Part("lease", [], verify_fails=True)])
    assert not report.ok
    assert report.remaining == ["process redis is stopped", "cannot verify lease: TimeoutError: no answer"]
    assert report.done == ["healed faults", "healed links", "healed lease"]
    assert report.errors == ["processes: RuntimeError: control gone"]
    merged = report.merge(HealReport(done=["x"], remaining=["proxy kugeldrill.x disabled"]))
    assert merged.remaining[-1] == "proxy kugeldrill.x disabled" and not merged.ok


def test_signal_handler_heals_once_and_chains_previous():
    calls = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: calls.append("previous"))
    try:
        with heal_on_signals(lambda: calls.append("heal"), signals=(signal.SIGUSR1,)):
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == ["heal", "previous", "previous"]
        os.kill(os.getpid(), signal.SIGUSR1)  # handler restored on exit
        assert calls[-1] == "previous" and calls.count("heal") == 1
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.fixture
def reacts_to_sigint():
    """This process reacts to SIGINT as the kugeldrill entry points make theirs (ground.signals),
    even when the test run was started with SIGINT ignored (`nohup make test &`)."""
    previous = signal.getsignal(signal.SIGINT)
    react_to_sigint()
    yield
    signal.signal(signal.SIGINT, previous)


def test_sigint_still_raises_keyboardinterrupt_after_heal(reacts_to_sigint):
    healed = []
    with pytest.raises(KeyboardInterrupt):
        with heal_on_signals(lambda: healed.append(True)):
            os.kill(os.getpid(), signal.SIGINT)
    assert healed == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_failing_heal_does_not_swallow_the_signal(capsys, reacts_to_sigint):
    def boom():
        raise RuntimeError("toxiproxy gone")

    with pytest.raises(KeyboardInterrupt):
        with heal_on_signals(boom):
            os.kill(os.getpid(), signal.SIGINT)
    assert "healing on signal" in capsys.readouterr().err
