"""The circuit breaker state machine with a fake clock: every transition and each defect."""

from __future__ import annotations

import logging
import threading

import pytest

from kugeldrill.stack.services.common.breaker import BreakerRegistry, BreakerState, CircuitBreaker
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.settings import ServiceConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, **kw) -> tuple[CircuitBreaker, EventLog]:
    events = EventLog("cart", None)
    return CircuitBreaker("dapr", threshold=3, reset_seconds=60, clock=clock, events=events, **kw), events


def fail(b: CircuitBreaker, op: str = "publish") -> None:
    adm = b.admit(op)
    assert adm is not None, f"call was rejected in {b.state}"
    b.record_failure(adm, "HTTP error 500")


def succeed(b: CircuitBreaker, op: str = "publish") -> None:
    adm = b.admit(op)
    assert adm is not None, f"call was rejected in {b.state}"
    b.record_success(adm)


def transitions(events: EventLog) -> list[tuple[str, str, int]]:
    return [(e["from"], e["to"], e["failures"]) for e in events.recent("breaker")]


def test_three_consecutive_failures_open_and_open_rejects_until_reset() -> None:
    clock = FakeClock()
    b, events = make(clock)
    fail(b)
    fail(b)
    assert b.state is BreakerState.CLOSED
    fail(b)
    assert b.state is BreakerState.OPEN
    assert transitions(events) == [("closed", "open", 3)]
    # No call passes while OPEN, right up to the reset time.
    for dt in (0, 1, 30, 59.999):
        clock.now = 1000.0 + dt
        assert b.admit("publish") is None
    assert b.stats.rejections["publish"] == 4
    assert [e["outcome"] for e in events.recent("breaker_call")][-4:] == ["rejected"] * 4


def test_half_open_admits_exactly_one_trial_and_success_closes() -> None:
    clock = FakeClock()
    b, events = make(clock)
    for _ in range(3):
        fail(b)
    clock.now += 60
    trial = b.admit("get")
    assert trial is not None and trial.state is BreakerState.HALF_OPEN
    # While the trial is in flight every other call is rejected.
    assert b.admit("publish") is None
    assert b.admit("save") is None
    b.record_success(trial)
    assert b.state is BreakerState.CLOSED
    assert b.failures == 0
    assert transitions(events) == [("closed", "open", 3), ("open", "half_open", 3), ("half_open", "closed", 0)]
    succeed(b)


def test_half_open_failure_reopens_for_a_full_reset_time() -> None:
    clock = FakeClock()
    b, events = make(clock)
    for _ in range(3):
        fail(b)
    clock.now += 61
    fail(b, "save")
    assert b.state is BreakerState.OPEN
    assert transitions(events)[-1] == ("half_open", "open", 4)
    clock.now += 59
    assert b.admit("publish") is None
    clock.now += 1
    assert b.admit("publish") is not None
    assert b.state is BreakerState.HALF_OPEN


def test_success_in_closed_resets_the_count() -> None:
    b, _ = make(FakeClock())
    for _ in range(5):
        fail(b)
        fail(b)
        succeed(b)
    assert b.state is BreakerState.CLOSED


def test_defect_cumulative_failures_opens_on_third_failure_ever() -> None:
    b, events = make(FakeClock(), cumulative_failures=True)
    fail(b)
    succeed(b)
    fail(b)
    succeed(b)
    assert b.state is BreakerState.CLOSED
    fail(b)
    assert b.state is BreakerState.OPEN  # Kugelpos: fail/ok/fail/ok/fail opens (docs/kugelpos-facts.md §6.7)
    assert transitions(events) == [("closed", "open", 3)]


def test_defect_unlimited_half_open_admits_every_call() -> None:
    clock = FakeClock()
    b, _ = make(clock, unlimited_half_open=True)
    for _ in range(3):
        fail(b)
    clock.now += 60
    admitted = [b.admit("publish") for _ in range(10)]
    assert all(a is not None for a in admitted)
    b.record_success(admitted[0])
    assert b.state is BreakerState.CLOSED
    # The other nine were admitted in the old HALF_OPEN generation: their results change nothing.
    for a in admitted[1:]:
        b.record_failure(a, "late")
    assert b.state is BreakerState.CLOSED


def test_late_result_from_before_open_does_not_reopen() -> None:
    clock = FakeClock()
    b, events = make(clock)
    stale = b.admit("publish")
    for _ in range(3):
        fail(b)
    clock.now += 60
    trial = b.admit("publish")
    assert stale is not None and trial is not None
    b.record_failure(stale, "late")  # admitted while CLOSED, answered after the breaker moved on
    assert b.state is BreakerState.HALF_OPEN
    b.record_success(trial)
    assert b.state is BreakerState.CLOSED


def test_log_lines_are_kugelpos_text(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    b, _ = make(clock)
    with caplog.at_level(logging.INFO, logger="kugel_common.utils.dapr_client_helper"):
        for _ in range(3):
            fail(b)
        clock.now += 60
        succeed(b)
    messages = [r.getMessage() for r in caplog.records if r.name == "kugel_common.utils.dapr_client_helper"]
    assert messages == [
        "Circuit breaker OPEN after 3 failures",
        "Circuit breaker moved to HALF_OPEN state",
        "Circuit breaker CLOSED after successful operation",
    ]


def test_prometheus_text_and_snapshot() -> None:
    clock = FakeClock()
    registry = BreakerRegistry("report")
    b = CircuitBreaker("dapr", clock=clock, stats=registry.stats_for("dapr"))
    for _ in range(3):
        fail(b, "get")
    assert b.admit("get") is None
    text = registry.render_prometheus()
    assert 'kugeldrill_breaker_state{service="report",breaker="dapr"} 2' in text
    assert 'kugeldrill_breaker_transitions_total{service="report",breaker="dapr",from="closed",to="open"} 1' in text
    assert 'kugeldrill_breaker_rejections_total{service="report",breaker="dapr",op="get"} 1' in text
    snap = registry.snapshot()
    assert snap["breakers"][0]["state"] == "open"
    assert [t["to"] for t in snap["breakers"][0]["transitions"]] == ["open"]
    assert [(t["breaker"], t["from"], t["to"]) for t in snap["transitions"]] == [("dapr", "closed", "open")]


def test_from_config_reads_numbers_and_defects() -> None:
    cfg = ServiceConfig(name="cart", port=1, data_dir="/tmp", defects=["breaker_cumulative_failures", "breaker_unlimited_half_open"])
    cfg.breaker.threshold = 5
    cfg.breaker.reset_seconds = 2.5
    b = CircuitBreaker.from_config(cfg)
    assert (b.threshold, b.reset_seconds, b.cumulative_failures, b.unlimited_half_open) == (5, 2.5, True, True)


def test_bad_numbers_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="threshold must be >= 1"):
        CircuitBreaker(threshold=0)
    with pytest.raises(ValueError, match="half_open_max_calls"):
        CircuitBreaker(half_open_max_calls=0)


def test_concurrent_trials_from_threads_admit_only_one() -> None:
    clock = FakeClock()
    b, _ = make(clock)
    for _ in range(3):
        fail(b)
    clock.now += 60
    results: list[object] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        results.append(b.admit("publish"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sum(1 for r in results if r is not None) == 1
