"""Validation of links, selectors, fault parameters and timelines — before anything runs."""

from __future__ import annotations

import pytest

from kugeldrill.chaos.fault import FaultContext
from kugeldrill.chaos.kinds import all_kinds, get_kind
from kugeldrill.chaos.link_faults import ramp_values, toxic_names
from kugeldrill.chaos.links import Link, LinkMap, link_name, proxy_name
from kugeldrill.chaos.plan import plan
from kugeldrill.chaos.record import PlannedFault
from kugeldrill.ground.errors import ConfigError, NotLoopbackError


def links(**extra) -> LinkMap:
    names = ["redis@cart", "redis@journal", "sidecar@cart", "app@journal", "sidecar@journal"]
    return LinkMap([Link(n, f"127.0.0.1:{20000 + i}", f"127.0.0.1:{21000 + i}") for i, n in enumerate(names)], **extra)


def test_proxy_naming():
    assert proxy_name("redis@cart") == "kugeldrill.redis@cart"
    assert link_name("kugeldrill.redis@cart") == "redis@cart"
    assert Link("redis@cart", "127.0.0.1:1", "127.0.0.1:2").proxy == "kugeldrill.redis@cart"
    with pytest.raises(ConfigError, match="not a kugeldrill link"):
        link_name("redis@cart")


@pytest.mark.parametrize("selector,expected", [
    ("redis@cart", ["redis@cart"]),
    ("redis@*", ["redis@cart", "redis@journal"]),
    ("*@journal", ["redis@journal", "app@journal", "sidecar@journal"]),
    ("sidecar@cart, redis@cart", ["redis@cart", "sidecar@cart"]),
    ("*", ["redis@cart", "redis@journal", "sidecar@cart", "app@journal", "sidecar@journal"]),
])
def test_selectors(selector, expected):
    assert [l.name for l in links().select(selector)] == expected


@pytest.mark.parametrize("selector,message", [
    ("redis@stock", "matches no link"),
    ("redis@cart,bogus@*", "'bogus@\\*' matches no link"),
    ("redis", "must look like"),
    ("", "non-empty"),
    ("redis@cart,,", "empty entry"),
])
def test_selector_errors(selector, message):
    with pytest.raises(ConfigError, match=message):
        links().select(selector)


def test_non_loopback_link_refused_unless_allowed():
    with pytest.raises(NotLoopbackError, match="upstream of link redis@cart"):
        LinkMap([Link("redis@cart", "127.0.0.1:1", "10.1.2.3:6379")])
    with pytest.raises(NotLoopbackError, match="listen address of link redis@cart"):
        LinkMap([Link("redis@cart", "0.0.0.0:1", "127.0.0.1:6379")])
    assert len(LinkMap([Link("redis@cart", "127.0.0.1:1", "db.test:6379")], allow_hosts=["db.test"])) == 1


def test_link_map_from_state_errors():
    with pytest.raises(ConfigError, match="links.redis@cart.upstream is missing"):
        LinkMap.from_state({"redis@cart": {"listen": "127.0.0.1:1"}})
    with pytest.raises(ConfigError, match="must be 'kugeldrill.redis@cart'"):
        LinkMap.from_state({"redis@cart": {"proxy": "x", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2"}})
    with pytest.raises(ConfigError, match="<kind>@<app>"):
        Link("cart", "127.0.0.1:1", "127.0.0.1:2")


# --------------------------------------------------------------------------- faults


def entry(**kw):
    base = {"at": 1, "for": 5, "link": "redis@cart", "kind": "latency", "latency": 100}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("bad,message", [
    (entry(kind="latencyy"), r"faults\[0\]\.kind 'latencyy' is not a fault kind"),
    (entry(latency=None), r"faults\[0\]\.latency is required for fault kind 'latency'"),
    (entry(**{"for": -1}), r"faults\[0\]\.for must be greater than 0"),
    (entry(**{"for": None}), r"faults\[0\]\.for is missing"),
    (entry(at=-2), r"faults\[0\]\.at must be at least 0"),
    (entry(latency="fast"), r"faults\[0\]\.latency must be a number"),
    (entry(latency=-5), r"faults\[0\]\.latency must be at least 0"),
    (entry(jiter=5), r"faults\[0\]\.jiter is not a parameter of fault kind 'latency'"),
    (entry(direction="sideways"), r"faults\[0\]\.direction must be one of"),
    (entry(toxicity=2), r"faults\[0\]\.toxicity must be at most 1"),
    (entry(link="redis@nowhere"), r"faults\[0\]\.link: link selector 'redis@nowhere' matches no link"),
    (entry(kind="down", latency=None, **{"for": float("inf")}), r"faults\[0\]\.for must be finite"),
    (entry(kind="down", latency=None, **{"for": 10 ** 9}), r"faults\[0\]\.for must be at most"),
    (entry(kind="timeout", latency=None, timeout=0), r"faults\[0\]\.timeout .* use kind 'blackhole'"),
    (entry(kind="bandwidth", latency=None, rate=0), r"faults\[0\]\.rate .* use kind 'blackhole'"),
    (entry(kind="slicer", latency=None, average_size=10, size_variation=10), r"size_variation must be smaller"),
    (entry(kind="flap", latency=None, period=2, down=2), r"faults\[0\]\.down .* shorter than"),
    (entry(kind="ramp", latency=None, start=10), r"faults\[0\]\.end is required"),
    (entry(kind="down", latency=None, params={"x": 1}), r"faults\[0\]\.x is not a parameter of fault kind 'down'"),
    (entry(params={"latency": 5}), r"faults\[0\]\.latency is given both inline and under params"),
    (entry(id="bad id!"), r"faults\[0\]\.id must be"),
])
def test_malformed_fault_names_field(bad, message):
    with pytest.raises(ConfigError, match=message):
        plan({"faults": [bad]}, links())


def test_error_names_the_right_entry():
    with pytest.raises(ConfigError, match=r"faults\[1\]\.latency is required"):
        plan([entry(), entry(at=10, latency=None)], links())


def test_overlap_on_one_link_refused():
    with pytest.raises(ConfigError, match=r"faults\[1\] \(down at 3s for 5s\) overlaps faults\[0\] .* on link redis@cart"):
        plan([entry(), entry(at=3, kind="down", latency=None)], links())
    with pytest.raises(ConfigError, match="on link redis@journal"):  # via a wildcard
        plan([entry(link="redis@journal"), entry(at=2, link="redis@*")], links())
    # back to back and on different links is fine
    assert len(plan([entry(), entry(at=6), entry(at=2, link="redis@journal")], links())) == 3


def test_wildcard_expands_one_entry_per_link_with_ids():
    faults = plan([entry(link="*@journal", id="j")], links())
    assert [f.id for f in faults] == ["j:redis@journal", "j:app@journal", "j:sidecar@journal"]
    assert {f.proxy for f in faults} == {"kugeldrill.redis@journal", "kugeldrill.app@journal",
                                              "kugeldrill.sidecar@journal"}


def test_params_defaults_and_duration_strings():
    (f,) = plan([{"at": "500ms", "for": "1m30s", "link": "redis@cart", "kind": "latency", "params": {"latency": 50}}],
                links())
    assert (f.at, f.duration) == (0.5, 90.0)
    assert f.params == {"latency": 50, "jitter": 0, "direction": "downstream", "toxicity": 1.0}
    (b,) = plan([entry(kind="blackhole", latency=None)], links())
    assert b.params["direction"] == "both"


def test_every_kind_documents_its_effects():
    KINDS = all_kinds()
    assert set(KINDS) == {"down", "blackhole", "latency", "bandwidth", "slow_close", "timeout", "reset_peer",
                          "slicer", "limit_data", "flap", "ramp", "kill", "pause", "restart", "throttle"}
    assert {k for k, v in KINDS.items() if v.acts_on == "process"} == {"kill", "pause", "restart", "throttle"}
    for kind in KINDS.values():
        assert len(kind.redis_effect) > 20 and len(kind.http_effect) > 20, kind.name


def test_toxic_names_carry_prefix():
    assert toxic_names("f1", "both") == ["kugeldrill.f1.up", "kugeldrill.f1.down"]


def steps(planned: PlannedFault) -> list[tuple[float, str]]:
    return [(s.offset, s.label) for s in get_kind(planned.kind, "").build(planned, FaultContext()).steps()]


def test_flap_and_ramp_steps():
    (flap,) = plan([entry(kind="flap", latency=None, period=2, down=0.5, **{"for": 5})], links())
    assert steps(flap) == [
        (0.0, "apply"), (0.5, "up"), (2.0, "down"), (2.5, "up"), (4.0, "down"), (4.5, "up"), (5.0, "heal")]
    (ramp,) = plan([entry(kind="ramp", latency=None, start=100, end=400, steps=4, **{"for": 8})], links())
    assert steps(ramp) == [
        (0.0, "apply"), (2.0, "latency=200"), (4.0, "latency=300"), (6.0, "latency=400"), (8.0, "heal")]
    assert ramp_values({"start": 0, "end": 10, "steps": 2}, 4) == [(0.0, 0), (2.0, 10)]


def test_timeline_rechecks_loopback_with_its_own_allow_list():
    remote = LinkMap([Link("redis@cart", "127.0.0.1:1", "db.test:6379")], allow_hosts=["db.test"])
    assert len(plan([entry()], remote)) == 1  # the map's allow list applies by default
    with pytest.raises(ConfigError, match=r"faults\[0\]\.link: refusing upstream of link redis@cart"):
        plan([entry()], remote, allow_hosts=())


def test_timeline_spec_shape_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        plan({"fault": []}, links())
    with pytest.raises(ConfigError, match="must be a list"):
        plan({"faults": {"at": 1}}, links())
    with pytest.raises(ConfigError, match=r"faults\[0\] must be a mapping"):
        plan(["down"], links())
    with pytest.raises(ConfigError, match=r"faults\[1\]\.id 'x' is used twice"):
        plan([entry(id="x"), entry(id="x", at=20)], links())
    assert plan(None, links()) == []
