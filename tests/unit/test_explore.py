"""Explore and shrink, the parts that need no drill: seeded draws, candidates, failure signatures."""

from __future__ import annotations

import pytest

from kugeldrill.checkers.model import CheckResult
from kugeldrill.explore.generate import GENERATOR_VERSION, Space, draw
from kugeldrill.chaos.record import PlannedFault
from kugeldrill.explore.schedule import Schedule
from kugeldrill.explore.shrink import SETTLE_SECONDS, candidates
from kugeldrill.explore.signature import primary, signature
from kugeldrill.explore.space import narrow
from kugeldrill.ground.errors import ConfigError
from kugeldrill.reports.summary import ExpectationResult, RunSummary
from kugeldrill.scenario import parse_scenario_text

LINKS = ("redis@cart", "sidecar@cart", "app@journal", "redis@report")


def test_the_same_seed_draws_the_same_drills_and_another_seed_others():
    space = Space(links=LINKS)
    a = [draw(1234, i, space).to_yaml() for i in range(5)]
    assert a == [draw(1234, i, space).to_yaml() for i in range(5)]
    assert a != [draw(1235, i, space).to_yaml() for i in range(5)]
    assert draw(1234, 3, space).origin == {"generator": "kugeldrill.explore", "version": GENERATOR_VERSION,
                                          "seed": 1234, "index": 3}


def test_every_drawn_drill_is_a_valid_scenario_within_its_bounds():
    space = Space(links=LINKS, max_faults=3)
    for i in range(60):
        s = draw(7, i, space)
        loaded = parse_scenario_text(s.to_yaml(), f"drill {i}")  # the scenario reader accepts it
        assert loaded.scenario.name == f"explore-7-{i}"
        assert space.load_seconds[0] <= s.load_seconds <= space.load_seconds[1]
        assert 1 <= len(s.faults) <= 3 and all(f.subject in LINKS for f in s.faults)
        for f in s.faults:
            assert f.at >= space.first_at and f.end <= s.load_seconds - space.settle_seconds + 1e-9
        assert all(space.users[c][0] <= n <= space.users[c][1] for c, n in s.users.items())


def test_bounds_and_vocabulary_are_checked():
    with pytest.raises(ConfigError, match="cannot draw"):
        Space(links=LINKS, kinds=("wobble",)).check()
    with pytest.raises(ConfigError, match="processes"):
        Space(links=LINKS, kinds=("kill",)).check()
    assert narrow(list(LINKS), "redis@*") == ("redis@cart", "redis@report")
    with pytest.raises(ConfigError, match="matches none"):
        narrow(list(LINKS), "app@stock")


def _schedule() -> Schedule:
    return Schedule("x", 24.0, {"CartUser": 4, "TerminalUser": 1, "OpenCloseUser": 1},
                    (PlannedFault("latency", 4.0, 6.0, link="sidecar@cart", params={"latency": 8000}),
                     PlannedFault("down", 9.0, 4.0, link="app@journal")), base={"expect": {}})


def test_every_candidate_is_smaller_valid_and_keeps_faults_inside_the_load():
    s = _schedule()
    cands = list(candidates(s))
    assert cands[0][0].startswith("drop fault") and len(cands[0][1].faults) == 1
    assert any(c.load_seconds == 12.0 for _, c in cands)  # half the load, faults moved to fit
    assert any(f.kind == "down" and f.subject == "sidecar@cart" for _, c in cands for f in c.faults)  # simpler kind
    assert any(c.users["CartUser"] == 2 for _, c in cands)
    for change, c in cands:
        assert c.size() < s.size(), change
        parse_scenario_text(c.to_yaml(), change)
        for f in c.faults:
            assert f.at >= 2.0 and f.duration >= 1.0
            if c.load_seconds < s.load_seconds:
                assert f.end <= c.load_seconds - SETTLE_SECONDS + 1e-9, change


def _summary(**checks: bool | None) -> RunSummary:
    s = RunSummary(scenario="x")
    for name, valid in checks.items():
        counts = {"violations": {"not_opened": 1}} if name == "breaker" and valid is False else {}
        if name == "fanout" and valid is False:
            counts = {"failures": {"missing": 3}}
        s.checks.append(CheckResult(name, valid, "", counts=counts))
        s.expectations.append(ExpectationResult(f"{name}.check", name, valid, "", ""))
    return s


def test_signature_names_checker_and_kind_and_prefers_real_failures():
    s = _summary(breaker=False, duplicates=True, fanout=None)
    s.expectations.append(ExpectationResult("convergence.max_seconds", "convergence", False, "", ""))
    sig = signature(s)
    assert sig == [("breaker", "not_opened"), ("fanout", "unknown"), ("convergence.max_seconds", "failed")]
    assert primary(sig) == ("breaker", "not_opened")
    assert primary(signature(_summary(fanout=None))) == ("fanout", "unknown")
    assert signature(_summary(breaker=True)) == []


def test_process_kinds_draw_from_the_stand_in_s_process_targets() -> None:
    from kugeldrill.explore.generate import draw
    from kugeldrill.explore.space import build_space

    space = build_space(None, "redis@*", "kill,pause,restart", 2)
    assert "redis" in space.processes and "app@journal" in space.processes and "app@cart" not in space.processes
    for i in range(10):
        for f in draw(7, i, space).faults:
            assert f.process and f.subject in space.processes


def test_processes_narrow_the_process_targets_and_a_miss_is_a_clear_error() -> None:
    from kugeldrill.explore.space import build_space

    space = build_space(None, None, "kill", 1, "app@*")
    assert set(space.processes) == {"app@report", "app@journal", "app@stock"}
    with pytest.raises(ConfigError, match="--process-targets 'app@cart' matches none of the process targets"):
        build_space(None, None, "kill", 1, "app@cart")


def test_drill_base_takes_stack_and_expectations_from_a_scenario_and_plants_defects(tmp_path) -> None:
    from kugeldrill.explore.base import drill_base
    from kugeldrill.explore.generate import DEFAULT_BASE

    scenario = tmp_path / "b.yaml"
    scenario.write_text("name: b\nload: {users: {CartUser: 1}, duration: 10s}\n"
                        "stack: {republish_interval_seconds: 300}\nexpect: {duplicates: {policy: strict}}\n")
    base = drill_base(scenario, None, ["stock_no_idempotency"])
    assert base["stack"] == {"republish_interval_seconds": 300, "defects": ["stock_no_idempotency"]}
    assert base["expect"] == {"duplicates": {"policy": "strict"}}
    assert "defects" not in DEFAULT_BASE["stack"]  # the default is never changed in place
    with pytest.raises(ConfigError, match="cannot apply to a target"):
        drill_base(None, scenario, ["stock_no_idempotency"])


def test_shrinking_the_load_reaches_half_and_the_shortest_that_holds_the_faults() -> None:
    s = Schedule(name="x", load_seconds=19.0, users={"CartUser": 5},
                 faults=(PlannedFault(kind="down", at=3.2, duration=2.2, link="sidecar@cart"),))
    loads = [c.load_seconds for change, c in candidates(s) if change.startswith("load")]
    assert loads == [9.0, 11.0, 14.0]  # half rounded down (the fault cut to fit), all of it, three quarters
    half = next(c for change, c in candidates(s) if change.startswith("load") and c.load_seconds == 9.0)
    assert half.faults[0].end <= 9.0 - SETTLE_SECONDS and half.faults[0].duration >= 1.0
