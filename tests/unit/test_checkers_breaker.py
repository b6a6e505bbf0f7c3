"""Breaker checker: every verdict path on synthetic records (seed policy unless stated)."""

from __future__ import annotations

from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.params import BreakerParams
from kugeldrill.checkers.model import BreakerCall, BreakerTransition
from kugeldrill.checkers.synthetic import call, fault, numbered, transition

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
    assert ex["failures"] == 1 and ex["breaker_count"] == 3
    assert [c["outcome"] for c in ex["calls_around"]] == ["fail", "ok", "fail", "ok", "fail"]
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


def _split(records):
    return ([r for r in records if isinstance(r, BreakerTransition)], [r for r in records if isinstance(r, BreakerCall)])


def test_an_opening_one_failure_early_is_caught_even_when_failures_land_just_after_it():
    """Threshold − 1: the breaker opens at the 2nd failure; a 3rd and 4th (calls in flight) fail
    right after. In record order only the causing call counts after the opening."""
    records = numbered(
        call("cart", 10.0, "CLOSED", "ok"), call("cart", 10.1, "CLOSED", "fail"),
        transition("cart", 10.2, "CLOSED", "OPEN", failures=2), call("cart", 10.2, "CLOSED", "fail"),
        call("cart", 10.25, "CLOSED", "fail"), call("cart", 10.3, "CLOSED", "fail"))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, [fault("f1", "sidecar@cart", "down", 10.05, 11.0)]))
    ex = r.examples["opened_without_failures"][0]
    assert r.valid is False and ex["failures"] == 2 and ex["breaker_count"] == 2
    assert [c["dt"] >= 0 for c in ex["calls_around"]].count(True) == 3  # the calls after it are shown
    # Even when the breaker does not say how many it counted, the calls convict it.
    trans[0].failures = None
    assert "opened_without_failures" in check_breakers(_inputs(trans, calls, [])).examples
    # Without record order (times only), the in-flight failures 50 ms later still do not count.
    for rec in (*trans, *calls):
        rec.seq = None
    r = check_breakers(_inputs(trans, calls, []))
    assert r.examples["opened_without_failures"][0]["failures"] == 2


def test_a_breaker_whose_own_count_is_below_the_threshold_is_caught():
    records = numbered(*(call("stock", 10.0 + i, "CLOSED", "fail") for i in range(2)),
                       transition("stock", 12.0, "CLOSED", "OPEN", failures=2), call("stock", 12.0, "CLOSED", "fail"))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, []))
    assert r.examples["opened_without_failures"][0]["breaker_count"] == 2  # the calls say 3; the breaker said 2


def test_open_far_past_its_reset_time_is_caught():
    trans = [transition("report", 103.0, "CLOSED", "OPEN", failures=3)]
    calls = [call("report", t, "CLOSED", "fail", admitted=t) for t in (101.0, 102.0, 103.0 + EPS)]
    calls += [call("report", t, "OPEN", "rejected", admitted=t) for t in (110.0, 150.0, 162.9, 200.0, 250.0)]
    trans += [transition("report", 280.0, "OPEN", "HALF_OPEN"), transition("report", 280.1, "HALF_OPEN", "CLOSED")]
    calls += [call("report", 280.1 + EPS, "HALF_OPEN", "ok", admitted=280.0)]
    r = check_breakers(_inputs(trans, calls, [fault("f1", "redis@report", "down", 100.0, 130.0)]))
    ex = r.examples["open_too_long"][0]
    assert r.valid is False and ex["open_seconds_at_rejection"] == 97.0 and ex["rejected_after_reset"] == 2
    # A rejection just inside the reset time is the breaker doing its job.
    calls = [c for c in calls if c.mono not in (200.0, 250.0)]
    assert "open_too_long" not in check_breakers(_inputs(trans, calls, [])).examples


def test_half_open_trials_are_counted_by_admission_even_when_they_end_late():
    trans, calls, faults = healthy_cycle()
    for c in calls:
        c.admitted_mono = c.mono - EPS
    # Two more trials admitted in the same HALF_OPEN episode, ending long after it closed.
    calls += [call("report", 165.0, "HALF_OPEN", "ok", admitted=163.15), call("report", 168.0, "HALF_OPEN", "ok",
                                                                             admitted=163.18)]
    r = check_breakers(_inputs(trans, calls, faults))
    assert r.examples["half_open_extra_trials"][0]["trials"] == 3


def test_rejections_while_half_open_are_not_open_too_long():
    """The seed's HALF_OPEN rejects calls beyond its trial (Kugelpos logs them as 'OPEN - rejecting'):
    after the move to HALF_OPEN they belong to HALF_OPEN, however they are labelled."""
    records = numbered(
        *(call("cart", 10.0 + i * 0.1, "CLOSED", "fail") for i in range(2)),
        transition("cart", 10.3, "CLOSED", "OPEN", failures=3), call("cart", 10.3, "CLOSED", "fail"),
        call("cart", 11.0, "OPEN", "rejected"), transition("cart", 13.1, "OPEN", "HALF_OPEN"),
        call("cart", 13.3, "OPEN", "rejected"), call("cart", 13.35, "OPEN", "rejected"),  # trial in flight
        transition("cart", 13.4, "HALF_OPEN", "OPEN"), call("cart", 13.4, "HALF_OPEN", "fail"))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, [fault("f1", "sidecar@cart", "down", 9.0, 20.0)]),
                       BreakerParams(reset_seconds=2.7))
    assert "open_too_long" not in r.examples, r.examples


def _late(own: int | None):
    """Threshold 3, but the breaker opens at the 4th failure in a row (its causing call right after it)."""
    records = numbered(
        call("cart", 10.0, "CLOSED", "ok"), *(call("cart", 10.1 + i * 0.1, "CLOSED", "fail") for i in range(3)),
        transition("cart", 10.5, "CLOSED", "OPEN", failures=own), call("cart", 10.5, "CLOSED", "fail"))
    return _split(records)


def test_an_opening_one_failure_late_is_caught_by_the_breakers_own_count():
    trans, calls = _late(own=4)
    r = check_breakers(_inputs(trans, calls, [fault("f1", "sidecar@cart", "down", 10.05, 11.0)]))
    assert r.valid is False and r.counts["violations"] == {"opened_late": 1}
    ex = r.examples["opened_late"][0]
    assert ex["breaker_count"] == 4 and ex["failures"] == 4 and ex["threshold"] == 3
    # Allowed extra failures (concurrent calls) raise the bar by as many.
    assert check_breakers(_inputs(trans, calls, []), BreakerParams(extra_failures_allowed=1)).valid is not False


def test_an_opening_one_failure_late_is_caught_in_record_order_without_the_breakers_count():
    trans, calls = _late(own=None)
    r = check_breakers(_inputs(trans, calls, []))
    assert r.valid is False and "opened_late" in r.examples
    # Without record order the 4th failure could be a call in flight: times and slack only.
    for rec in (*trans, *calls):
        rec.seq = None
    r = check_breakers(_inputs(trans, calls, []))
    assert "opened_late" not in r.examples


def test_a_failure_after_the_threshold_recorded_while_still_closed_needs_no_slack():
    """In record order the 4th failure lands while CLOSED; the opening 10 ms later (inside the
    0.5 s slack that time-only sources get) does not excuse it."""
    records = numbered(*(call("cart", 10.0 + i * 0.01, "CLOSED", "fail") for i in range(4)),
                       transition("cart", 10.05, "CLOSED", "OPEN"), call("cart", 10.05, "CLOSED", "fail"))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, []))
    assert r.valid is False
    ex = r.examples["opened_late"][0]
    assert ex["failures"] == 5 and ex["breaker_count"] is None and r.counts["violations"] == {"opened_late": 1}
    never = numbered(*(call("cart", 10.0 + i * 0.01, "CLOSED", "fail") for i in range(4)))
    r = check_breakers(_inputs([], never, []))
    assert r.counts["violations"] == {"not_opened": 1}


def test_a_late_failure_of_a_call_admitted_before_the_last_close_does_not_count():
    """The stand-in's breaker ignores a result from an earlier generation; so does the checker."""
    records = numbered(
        *(call("cart", 10.0 + i * 0.1, "CLOSED", "fail", admitted=10.0 + i * 0.1) for i in range(2)),
        transition("cart", 10.3, "CLOSED", "OPEN", failures=3), call("cart", 10.3, "CLOSED", "fail", admitted=10.25),
        transition("cart", 13.3, "OPEN", "HALF_OPEN"), transition("cart", 13.4, "HALF_OPEN", "CLOSED"),
        call("cart", 13.4, "HALF_OPEN", "ok", admitted=13.3),
        *(call("cart", 14.0 + i * 0.1, "CLOSED", "fail", admitted=10.28) for i in range(4)),  # admitted long before
        call("cart", 15.0, "CLOSED", "ok", admitted=14.9))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, []), BreakerParams(reset_seconds=3.0))
    assert r.valid is True, r.examples


def _half_open_episode(*episode):
    records = numbered(
        *(call("cart", 10.0 + i * 0.1, "CLOSED", "fail", admitted=10.0 + i * 0.1) for i in range(2)),
        transition("cart", 10.3, "CLOSED", "OPEN", failures=3), call("cart", 10.3, "CLOSED", "fail", admitted=10.3),
        transition("cart", 13.4, "OPEN", "HALF_OPEN"), *episode)
    return _split(records)


def test_a_half_open_breaker_that_refuses_its_trial_is_caught():
    trans, calls = _half_open_episode(call("cart", 13.4, "HALF_OPEN", "rejected", admitted=13.4),
                                      transition("cart", 13.6, "HALF_OPEN", "CLOSED"),
                                      call("cart", 13.6, "HALF_OPEN", "ok", admitted=13.5))
    r = check_breakers(_inputs(trans, calls, []), BreakerParams(reset_seconds=3.0))
    assert r.counts["violations"] == {"half_open_refused_trial": 1}
    assert r.examples["half_open_refused_trial"][0]["trials_admitted_before"] == 0
    # Rejected while its one trial is in flight: what HALF_OPEN is for.
    trans, calls = _half_open_episode(call("cart", 13.45, "HALF_OPEN", "rejected", admitted=13.45),
                                      transition("cart", 13.6, "HALF_OPEN", "CLOSED"),
                                      call("cart", 13.6, "HALF_OPEN", "ok", admitted=13.4))
    assert check_breakers(_inputs(trans, calls, []), BreakerParams(reset_seconds=3.0)).valid is True


def test_a_half_open_episode_must_end_as_its_trial_says():
    good_then_open = _half_open_episode(transition("cart", 13.6, "HALF_OPEN", "OPEN"),
                                        call("cart", 13.6, "HALF_OPEN", "ok", admitted=13.4))
    r = check_breakers(_inputs(*good_then_open, []), BreakerParams(reset_seconds=3.0))
    assert r.examples["half_open_wrong_outcome"][0]["should_go_to"] == "CLOSED"
    failed_then_closed = _half_open_episode(transition("cart", 13.6, "HALF_OPEN", "CLOSED"),
                                            call("cart", 13.6, "HALF_OPEN", "fail", admitted=13.4))
    r = check_breakers(_inputs(*failed_then_closed, []), BreakerParams(reset_seconds=3.0))
    assert r.examples["half_open_wrong_outcome"][0]["should_go_to"] == "OPEN"


def test_a_failed_trial_must_restart_the_open_period():
    """HALF_OPEN -> OPEN after a failed trial starts a new full reset period; a breaker that
    keeps the first opening's clock goes HALF_OPEN again at once."""
    trans, calls = _half_open_episode(transition("cart", 13.6, "HALF_OPEN", "OPEN", failures=4),
                                      call("cart", 13.6, "HALF_OPEN", "fail", admitted=13.4),
                                      transition("cart", 13.9, "OPEN", "HALF_OPEN"),
                                      transition("cart", 14.0, "HALF_OPEN", "CLOSED"),
                                      call("cart", 14.0, "HALF_OPEN", "ok", admitted=13.9))
    r = check_breakers(_inputs(trans, calls, []), BreakerParams(reset_seconds=3.0))
    assert r.counts["violations"] == {"open_too_short": 1}
    assert r.examples["open_too_short"][0]["open_seconds"] == 0.3


def test_a_breaker_per_request_is_not_opened_even_when_another_instance_opens():
    """Breakers created per request never reach the threshold; a republish run's own breaker
    (same name) does open. Calls admitted as CLOSED after that opening were let through by a
    breaker that never opened: they still count, and the run of failures is not_opened."""
    records = numbered(
        call("cart", 10.0, "CLOSED", "fail", admitted=9.9), call("cart", 10.1, "CLOSED", "fail", admitted=10.0),
        transition("cart", 10.2, "CLOSED", "OPEN", failures=3),  # the republish run's instance
        call("cart", 10.2, "CLOSED", "fail", admitted=10.15),
        *(call("cart", 10.5 + i * 0.1, "CLOSED", "fail", admitted=10.4 + i * 0.1) for i in range(3)))
    trans, calls = _split(records)
    r = check_breakers(_inputs(trans, calls, [fault("f1", "sidecar@cart", "down", 9.0, 20.0)]))
    assert r.valid is False and "not_opened" in r.examples, r.examples
