"""Timeline against a real toxiproxy-server: schedule accuracy, timeline.json written as it
happens, early stop, rejection before anything is applied, heal touching only our proxies."""

from __future__ import annotations

import json
import time

import pytest

from kugeldrill.chaos.heal import LinkSweep, heal, verify_healed
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.errors import ConfigError, DrillError

pytestmark = pytest.mark.integration


@pytest.fixture
def client(toxiproxy_server):
    with ToxiproxyClient(toxiproxy_server.api) as c:
        yield c


@pytest.fixture
def links(client, redis_server) -> LinkMap:
    up = f"127.0.0.1:{redis_server.port}"
    return LinkMap([Link(n, "127.0.0.1:0", up) for n in ("redis@cart", "redis@journal", "sidecar@cart")]).ensure(client)


def test_apply_and_heal_times_follow_the_schedule(client, links, tmp_path):
    out = tmp_path / "timeline.json"
    spec = {"faults": [
        {"id": "lat", "at": 0.3, "for": 0.5, "link": "redis@*", "kind": "latency", "latency": 100},
        {"id": "cut", "at": 0.5, "for": 0.4, "link": "sidecar@cart", "kind": "down"},
        {"id": "bh", "at": 0.8, "for": 0.3, "link": "redis@cart", "kind": "blackhole"},  # right after lat
        {"id": "tm", "at": 1.0, "for": 0.2, "link": "redis@journal", "kind": "timeout", "timeout": 100},
    ]}
    tl = Timeline(spec, links, client, out=out)
    tl.start()
    assert tl.wait(10)
    report = tl.stop()
    assert report.ok
    doc = json.loads(out.read_text())
    assert doc["state"] == "finished" and doc["t0_mono"] == tl.t0_mono
    assert {f["id"] for f in doc["faults"]} == {"lat:redis@cart", "lat:redis@journal", "cut", "bh", "tm"}
    for f in doc["faults"]:
        assert f["error"] is None and f["status"] == "healed", f
        applied = f["applied_mono"] - doc["t0_mono"]
        healed = f["healed_mono"] - doc["t0_mono"]
        assert abs(applied - f["at"]) <= 0.1, (f["id"], applied)  # the bound
        assert abs(healed - (f["at"] + f["for"])) <= 0.25, (f["id"], healed)  # heal: looser on a busy CI box
        assert abs((f["applied_wall"] - doc["t0_wall"]) - applied) <= 0.05  # wall and mono agree
        assert f["proxy"] == "kugeldrill." + f["link"]
    assert verify_healed(client) == []


def test_timeline_json_is_written_as_it_happens(client, links, tmp_path):
    out = tmp_path / "timeline.json"
    tl = Timeline([{"at": 0, "for": 30, "link": "redis@cart", "kind": "down"},
                   {"at": 20, "for": 5, "link": "redis@journal", "kind": "down"}], links, client, out=out)
    tl.start()
    try:
        assert tl.wait_applied(timeout=5)
        deadline = time.monotonic() + 2
        while json.loads(out.read_text())["faults"][0]["applied_mono"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        doc = json.loads(out.read_text())
        assert doc["state"] == "running"
        assert doc["faults"][0]["status"] == "active" and doc["faults"][0]["healed_mono"] is None
        assert client.get_proxy("kugeldrill.redis@cart").enabled is False
        status = tl.status()
        assert [a["link"] for a in status["active"]] == ["redis@cart"]
        assert 25 < status["active"][0]["remaining"] <= 30
        assert [u["link"] for u in status["upcoming"]] == ["redis@journal"]
    finally:
        tl.stop()
    doc = json.loads(out.read_text())
    first, second = doc["faults"]
    assert doc["state"] == "stopped"
    assert first["status"] == "healed" and first["stopped_early"] and first["healed_mono"] is not None
    assert second["status"] == "skipped" and second["applied_mono"] is None
    assert verify_healed(client) == []


def test_malformed_fault_rejected_before_anything_applied(client, links, tmp_path):
    out = tmp_path / "timeline.json"
    spec = [{"at": 0, "for": 5, "link": "redis@cart", "kind": "down"},
            {"at": 0, "for": 5, "link": "redis@journal", "kind": "latency", "jitter": 5}]
    with pytest.raises(ConfigError, match=r"faults\[1\]\.latency is required"):
        Timeline(spec, links, client, out=out)
    time.sleep(0.2)
    assert not out.exists()
    assert all(p.enabled and not p.toxics for p in client.proxies().values())


def test_apply_error_recorded_not_fatal(client, links, tmp_path):
    out = tmp_path / "timeline.json"
    tl = Timeline([{"at": 0, "for": 0.3, "link": "redis@cart", "kind": "down"},
                   {"at": 0, "for": 0.3, "link": "redis@journal", "kind": "latency", "latency": 10}],
                  links, client, out=out, watchdog=False)
    client.delete_proxy("kugeldrill.redis@cart")  # vanished between validation and run
    with pytest.raises(DrillError, match="has no proxy kugeldrill.redis@cart"):
        tl.start()  # the preflight notices before anything is applied
    assert not client.get_proxy("kugeldrill.redis@journal").toxics
    tl.start(preflight=False)  # without it, the failure is recorded and the run goes on
    assert tl.wait(5)
    tl.stop()
    doc = json.loads(out.read_text())
    down, lat = doc["faults"]
    assert down["status"] == "failed" and "proxy not found" in down["error"] and down["applied_mono"] is None
    assert lat["status"] == "healed" and lat["error"] is None


def test_link_sweep_touches_only_our_names(client, links, redis_server):
    other = client.create_proxy("someone-else", f"127.0.0.1:{redis_server.port}", enabled=False)
    client.add_toxic(other.name, type="latency", attributes={"latency": 10}, name="theirs")
    client.add_toxic(other.name, type="latency", attributes={"latency": 10}, name="kugeldrill.stray.down",
                     stream="upstream")
    client.add_toxic("kugeldrill.redis@cart", type="timeout", attributes={"timeout": 0}, name="latency_downstream")
    client.update_proxy("kugeldrill.redis@journal", enabled=False)
    assert len(verify_healed(client)) == 3
    report = heal([LinkSweep(client)])
    assert report.ok
    state = client.proxies()
    assert [t.name for t in state["someone-else"].toxics] == ["theirs"]
    assert state["someone-else"].enabled is False
    assert all(state[p].enabled and not state[p].toxics for p in links.proxies)
    assert sorted(report.done) == ["re-enabled proxy kugeldrill.redis@journal",
                                   "removed toxic kugeldrill.redis@cart/latency_downstream",
                                   "removed toxic someone-else/kugeldrill.stray.down"]


def test_ensure_reenables_a_leftover_disabled_proxy(client, links):
    client.update_proxy("kugeldrill.redis@cart", enabled=False)
    again = LinkMap([Link(l.name, l.listen, l.upstream) for l in links]).ensure(client)
    assert again.to_state() == links.to_state()
    assert client.get_proxy("kugeldrill.redis@cart").enabled


def test_toxiproxy_python_fixture_bound_to_our_server(toxiproxy_server, links, client):
    """The user's toxiproxy-python client works against our server; our heal cleans after it."""
    from kugeldrill.chaos import pytest_plugin

    gen = pytest_plugin.toxiproxy_client.__wrapped__(toxiproxy_server.api)
    tp = next(gen)
    proxies = tp.proxies()
    assert set(proxies) == set(links.proxies)
    proxies["kugeldrill.redis@cart"].add_toxic(type="latency", attributes={"latency": 100})
    proxies["kugeldrill.redis@journal"].disable()
    assert len(verify_healed(client)) == 2
    with pytest.raises(StopIteration):
        next(gen)  # teardown: kugeldrill's heal path
    assert verify_healed(client) == []
