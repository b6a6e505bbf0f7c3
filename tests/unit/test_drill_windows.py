"""expect.fault_windows.min_publishes: a fault window that held too few publishes is unknown, never a pass."""

from __future__ import annotations

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.chaos.record import AppliedFault, FaultStatus, PlannedFault
from kugeldrill.checkers.model import BreakerCall, Publication
from kugeldrill.drill.windows import judge_fault_windows, relevant_publishers
from kugeldrill.scenario_schema import FaultWindowsExpect


def _fault(fid: str, link: str = "", process: str | None = None, start: float = 10.0,
           end: float | None = 40.0) -> AppliedFault:
    planned = PlannedFault("down" if process is None else "kill", start, 30.0, link=link or None, process=process,
                           id=fid)
    return AppliedFault(planned, status=FaultStatus.HEALED if end is not None else FaultStatus.ACTIVE,
                        applied_wall=start, applied_mono=start, healed_wall=end, healed_mono=end)


def _inputs(faults: list[AppliedFault], calls: list[tuple[str, float]]) -> CheckInputs:
    inputs = CheckInputs(faults=faults)
    inputs.mark("faults", "timeline")
    inputs.breaker_calls = [BreakerCall(svc, "dapr", t, t, "CLOSED", "publish", "fail") for svc, t in calls]
    inputs.breaker_calls.append(BreakerCall("report", "dapr", 20.0, 20.0, "CLOSED", "get", "fail"))  # not a publish
    inputs.mark("breaker_calls", "logs")
    inputs.mark_missing("publications", "Kugelpos records publications only in its outbox")
    return inputs


def test_the_publishes_a_fault_acts_on() -> None:
    assert relevant_publishers(_fault("f", "sidecar@cart")) == ("cart",)
    assert relevant_publishers(_fault("f", "redis@stock")) == ("cart",)  # stock subscribes to tranlogs only
    assert set(relevant_publishers(_fault("f", process="app@journal"))) == {"cart", "terminal"}
    assert relevant_publishers(_fault("f", "http@report>cart")) == ("cart", "terminal")
    assert relevant_publishers(_fault("f", "http@terminal>cart")) == ("terminal",)
    assert set(relevant_publishers(_fault("f", process="redis"))) == {"cart", "terminal"}


def test_enough_publishes_in_every_window_pass() -> None:
    inputs = _inputs([_fault("cut", "sidecar@cart")], [("cart", 11.0 + i) for i in range(5)])
    [result] = judge_fault_windows(FaultWindowsExpect(min_publishes=5), inputs)
    assert result.passed is True and "cut sidecar@cart: 5" in result.observed


def test_a_window_with_fewer_is_unknown_naming_its_count() -> None:
    calls = [("cart", 11.0), ("cart", 12.0), ("terminal", 13.0), ("terminal", 14.0), ("cart", 41.0), ("cart", 5.0)]
    inputs = _inputs([_fault("cut", "sidecar@cart")], calls)
    [result] = judge_fault_windows(FaultWindowsExpect(min_publishes=5), inputs)
    assert result.passed is None
    assert "cut (down sidecar@cart, 30.0 s) held 2" in result.observed and "fewer than the 5" in result.observed


def test_only_the_named_faults_are_judged_and_no_minimum_judges_nothing() -> None:
    inputs = _inputs([_fault("cut", "sidecar@cart"), _fault("kill", process="app@cart")],
                     [("cart", 11.0 + i) for i in range(5)] + [("cart", 35.0)] * 0)
    [only] = judge_fault_windows(FaultWindowsExpect(min_publishes=5, faults=["cut"]), inputs)
    assert only.passed is True
    assert judge_fault_windows(FaultWindowsExpect(), inputs) == []


def test_no_publish_records_is_unknown_not_a_pass() -> None:
    inputs = CheckInputs(faults=[_fault("cut", "sidecar@cart")])
    inputs.mark("faults", "timeline")
    inputs.mark_missing("breaker_calls", "no Kugelpos log file could be read")
    [result] = judge_fault_windows(FaultWindowsExpect(min_publishes=1), inputs)
    assert result.passed is None and "no Kugelpos log file" in result.observed


def test_stand_in_publish_records_are_counted_once() -> None:
    inputs = _inputs([_fault("cut", "sidecar@cart")], [("cart", 11.0)] * 5)
    inputs.publications = [Publication("cart", f"e{i}", "topic-tranlog", "k", 12.0, 12.0, "ok") for i in range(3)]
    inputs.mark("publications", "events")
    [result] = judge_fault_windows(FaultWindowsExpect(min_publishes=4), inputs)
    assert result.passed is None and "held 3" in result.observed


def test_the_load_after_the_heal_must_publish_too() -> None:
    from kugeldrill.checkers.model import Op

    inputs = _inputs([_fault("restart", process="app@cart", start=10.0, end=30.0)],
                     [("cart", 5.0), ("cart", 32.0), ("cart", 40.0), ("cart", 90.0)])  # 90: a republish after the load
    inputs.ops = [Op("o1", "sale", "ok", "w", "u", 1.0, 1.0, 45.0, 45.0)]
    inputs.mark("ops", "history")
    [result] = judge_fault_windows(FaultWindowsExpect(min_publishes_after=3), inputs)
    assert result.passed is None and "restart (kill app@cart, 20.0 s) after 2" in result.observed
    [ok] = judge_fault_windows(FaultWindowsExpect(min_publishes_after=2), inputs)
    assert ok.passed is True and ok.name == "fault_windows.min_publishes_after"
