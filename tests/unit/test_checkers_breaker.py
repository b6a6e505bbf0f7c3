"""Breaker checker: every verdict path on synthetic records (seed policy unless stated)."""

from __future__ import annotations

from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.params import BreakerParams
from kugeldrill.checkers.synthetic import call, fault, transition

EPS = 0.0001


def _inputs(trans, calls, faults=None) -> CheckInputs:
    inp = CheckInputs(breaker_transitions=list(trans), breaker_calls=list(calls), faults=list(faults or []))
    for name in ("breaker_transitions", "breaker_calls", "faults"):
        inp.mark(name, "test")
    return inp


def healthy_cycle(svc: str = "report"):
    """Fault 100..130 on redis@svc; opens at the 3rd failure, half-opens after 60 s, trial closes it."""
    trans = [
        transition(svc, 103.0, "CLOSED", "OPEN", failures=3),
        transition(svc, 163.1, "OPEN", "HALF_OPEN"),
        transition(svc, 163.2, "HALF_OPEN", "CLOSED"),
    ]
    calls = [
        call(svc, 90.0, "CLOSED", "ok"), call(svc, 95.0, "CLOSED", "ok"),
        call(svc, 101.0, "CLOSED", "fail"), call(svc, 102.0, "CLOSED", "fail"),
        call(svc, 103.0 + EPS, "CLOSED", "fail"),  # the opening call, written just after the transition
        call(svc, 105.0, "OPEN", "rejected"), call(svc, 120.0, "OPEN", "rejected"),
        call(svc, 163.1, "HALF_OPEN", "rejected"),
        call(svc, 163.2 + EPS, "HALF_OPEN", "ok"),
        call(svc, 170.0, "CLOSED", "ok"),
    ]
    return trans, calls, [fault("f1", f"redis@{svc}", "down", 100.0, 130.0)]


def test_healthy_cycle_passes_with_counts():
    r = check_breakers(_inputs(*healthy_cycle()))
    assert r.valid is True, r.summary
    assert r.counts["opens"] == 1 and r.counts["rejected"] == 3
    b = r.details["breakers"]["report/dapr"]
    assert b["close_after_heal_seconds"] == [33.2]
    assert b["max_half_open_trials"] == 1


def test_no_breaker_data_is_unknown_not_pass():
    inp = CheckInputs(faults=[fault("f1", "redis@report", "down", 100.0, 130.0)])
    inp.mark_missing("breaker_transitions", "no events file")
    r = check_breakers(inp)
    assert r.valid is None and "no events file" in r.summary


def test_per_request_breaker_never_opens():
    calls = [call("cart", 100.0 + i, "CLOSED", "fail", op="publish") for i in range(8)]
    r = check_breakers(_inputs([], calls, [fault("f1", "sidecar@cart", "down", 99.0, 120.0)]))
    assert r.valid is False
    ex = r.examples["not_opened"][0]
    assert ex["failures"] == 3 and ex["mono"] == 102.0 and ex["fault_ids"] == ["f1"]
    assert r.counts["violations"] == {"not_opened": 1}


def test_cumulative_failures_open_without_consecutive_failures():
    calls = [call("stock", 10.0, "CLOSED", "fail"), call("stock", 20.0, "CLOSED", "ok"),
             call("stock", 30.0, "CLOSED", "fail"), call("stock", 40.0, "CLOSED", "ok"),
             call("stock", 50.0 + EPS, "CLOSED", "fail")]
    trans = [transition("stock", 50.0, "CLOSED", "OPEN", failures=3)]
    r = check_breakers(_inputs(trans, calls, []))
    assert r.valid is False
    ex = r.examples["opened_without_failures"][0]
    assert ex["failures"] == 1 and ex["successes_between"] == 2
    # The same records are correct under Kugelpos' own (cumulative) policy.
    r2 = check_breakers(_inputs(trans, calls, []), BreakerParams(mode="cumulative"))
    assert "opened_without_failures" not in r2.examples


def test_in_flight_success_finishing_after_the_opening_does_not_hide_the_run():
    """Under a flap, a call admitted while CLOSED can succeed just after three others failed
    and opened the breaker; it is recorded after the opening but the run of three stands."""
    calls = [call("cart", 10.0, "CLOSED", "ok"), call("cart", 10.1, "CLOSED", "fail"),
             call("cart", 10.2, "CLOSED", "fail"), call("cart", 10.3 + EPS, "CLOSED", "fail"),
             call("cart", 10.5, "CLOSED", "ok")]  # in flight at the opening, finished inside order_slack
    trans = [transition("cart", 10.3, "CLOSED", "OPEN", failures=3)]
    r = check_breakers(_inputs(trans, calls, [fault("f1", "sidecar@cart", "down", 10.05, 10.35)]))
    assert "opened_without_failures" not in r.examples, r.examples


def test_open_without_calls_outside_fault_uses_timeline():
    trans = [transition("journal", 50.0, "CLOSED", "OPEN")]
    r = check_breakers(_inputs(trans, [], [fault("f1", "redis@journal", "down", 200.0, 210.0)]))
    assert r.examples["opened_without_failures"][0]["note"].startswith("no call records")


def test_unlimited_half_open_admits_several_trials():
    trans, calls, faults = healthy_cycle()
    calls += [call("report", 163.15, "HALF_OPEN", "ok"), call("report", 163.16, "HALF_OPEN", "ok")]
    r = check_breakers(_inputs(trans, calls, faults))
    assert r.valid is False
    assert r.examples["half_open_extra_trials"][0]["trials"] == 3
    assert check_breakers(_inputs(trans, calls, faults), BreakerParams(half_open_max_calls=None)).valid is True


def test_open_too_short_and_passed_while_open():
    trans = [transition("report", 103.0, "CLOSED", "OPEN"), transition("report", 120.0, "OPEN", "HALF_OPEN"),
             transition("report", 120.5, "HALF_OPEN", "CLOSED")]
    calls = [call("report", t, "CLOSED", "fail") for t in (101.0, 102.0, 103.0 + EPS)]
    calls += [call("report", 110.0, "OPEN", "ok"), call("report", 120.5 + EPS, "HALF_OPEN", "ok")]
    r = check_breakers(_inputs(trans, calls, [fault("f1", "redis@report", "down", 100.0, 115.0)]))
    assert r.counts["violations"] == {"open_too_short": 1, "passed_while_open": 1}
    assert r.examples["open_too_short"][0]["open_seconds"] == 17.0


def test_invalid_transition():
    trans = [transition("report", 103.0, "CLOSED", "OPEN"), transition("report", 170.0, "OPEN", "CLOSED")]
    calls = [call("report", t, "CLOSED", "fail") for t in (101.0, 102.0, 103.0 + EPS)] + [call("report", 171.0, "CLOSED", "ok")]
    r = check_breakers(_inputs(trans, calls, [fault("f1", "redis@report", "down", 100.0, 130.0)]))
    assert r.examples["invalid_transition"][0]["transition"] == "OPEN->CLOSED"


def test_slow_close_after_heal():
    trans, calls, faults = healthy_cycle()
    trans[1] = transition("report", 250.0, "OPEN", "HALF_OPEN")
    trans[2] = transition("report", 250.1, "HALF_OPEN", "CLOSED")
    calls = [c for c in calls if c.mono < 160] + [call("report", 250.1 + EPS, "HALF_OPEN", "ok")]
    r = check_breakers(_inputs(trans, calls, faults))
    assert r.valid is False
    ex = r.examples["slow_close"][0]
    assert ex["close_seconds"] == 120.1 and ex["allowed_seconds"] == 70.0


def test_not_closed_with_traffic_fails_and_idle_is_unknown():
    trans = [transition("report", 103.0, "CLOSED", "OPEN")]
    fails = [call("report", t, "CLOSED", "fail") for t in (101.0, 102.0, 103.0 + EPS)]
    faults = [fault("f1", "redis@report", "down", 100.0, 130.0)]
    busy = fails + [call("report", 300.0, "OPEN", "rejected")]
    r = check_breakers(_inputs(trans, busy, faults))
    assert r.valid is False and r.examples["not_closed"][0]["calls_after_deadline"] == 1
    idle = check_breakers(_inputs(trans, fails, faults))
    assert idle.valid is None and "no calls to close it" in idle.summary


def test_fault_that_caused_no_failures_is_unknown():
    calls = [call("report", 110.0, "CLOSED", "ok")]
    r = check_breakers(_inputs([], calls, [fault("f1", "redis@report", "down", 100.0, 130.0)]))
    assert r.valid is None and "no failed calls" in r.summary


def test_service_under_fault_without_records_is_unknown():
    trans, calls, faults = healthy_cycle()
    faults.append(fault("f2", "sidecar@stock", "blackhole", 100.0, 130.0))
    r = check_breakers(_inputs(trans, calls, faults))
    assert r.valid is None and "stock" in r.summary


def test_small_latency_does_not_count_as_failing_fault():
    calls = [call("report", 110.0, "CLOSED", "ok")]
    slow = fault("f1", "redis@report", "latency", 100.0, 130.0, latency=100)
    r = check_breakers(_inputs([], calls, [slow]))
    assert r.valid is True and r.counts["failing_fault_windows"] == 0
    big = fault("f1", "redis@report", "latency", 100.0, 130.0, latency=10_000)
    assert check_breakers(_inputs([], calls, [big])).counts["failing_fault_windows"] == 1
