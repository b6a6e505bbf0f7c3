"""The stand-in's real breaker writes events; the adapter reads the file; the checker judges them.

Each breaker defect switch of the stand-in must be caught by the breaker checker with its
evidence, and the healthy breaker must pass. Runs in real time with a 0.3 s reset so the
events' monotonic stamps are the ones a drill would produce.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kugeldrill.checkers.adapters.standin import events_files, read_events_files
from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.synthetic import fault
from kugeldrill.checkers.params import BreakerParams
from kugeldrill.stack.services.common.breaker import BreakerStats, CircuitBreaker
from kugeldrill.stack.services.common.events import EventLog

RESET = 0.3
PARAMS = BreakerParams(reset_seconds=RESET, close_tolerance_seconds=1.0, order_slack_seconds=0.25)


def _fault(start: float, end: float) -> AppliedFault:
    return fault("f1", "redis@report", "down", start, end)


def _call(b: CircuitBreaker, ok: bool) -> None:
    adm = b.admit("save")
    if adm is None:
        return
    (b.record_success if ok else b.record_failure)(adm)


def _judge(tmp_path: Path, log: EventLog, faults: list[AppliedFault]):
    log.close()
    state = {"services": {"report": {"events": str(log.path)}}}
    inputs = read_events_files(events_files(None, state))
    inputs.faults = faults
    inputs.mark("faults", "test")
    return check_breakers(inputs, PARAMS), inputs


def test_healthy_breaker_passes(tmp_path: Path):
    log = EventLog("report", tmp_path / "report.jsonl")
    b = CircuitBreaker(reset_seconds=RESET, events=log)
    _call(b, True)
    start = time.monotonic()
    for _ in range(5):
        _call(b, False)
    heal = time.monotonic()
    time.sleep(RESET + 0.05)
    _call(b, True)
    _call(b, True)
    r, inputs = _judge(tmp_path, log, [_fault(start, heal)])
    assert [(t.from_state, t.to_state) for t in inputs.breaker_transitions] == [
        ("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert r.valid is True, (r.summary, r.examples)
    assert r.counts["rejected"] == 2


def test_per_request_breaker_is_caught(tmp_path: Path):
    log = EventLog("report", tmp_path / "report.jsonl")
    stats = BreakerStats("dapr")
    start = time.monotonic()
    for _ in range(6):
        _call(CircuitBreaker(reset_seconds=RESET, events=log, stats=stats), False)
    r, _ = _judge(tmp_path, log, [_fault(start, time.monotonic())])
    assert r.valid is False and r.counts["violations"] == {"not_opened": 1}
    assert r.examples["not_opened"][0]["fault_ids"] == ["f1"]


def test_cumulative_failures_are_caught(tmp_path: Path):
    log = EventLog("report", tmp_path / "report.jsonl")
    b = CircuitBreaker(reset_seconds=RESET, events=log, cumulative_failures=True)
    for ok in (False, True, False, True, False):
        _call(b, ok)
    time.sleep(RESET + 0.05)
    _call(b, True)
    r, _ = _judge(tmp_path, log, [])
    assert r.valid is False
    assert r.examples["opened_without_failures"][0]["failures"] == 1


@pytest.mark.parametrize("unlimited", [False, True])
def test_unlimited_half_open_is_caught(tmp_path: Path, unlimited: bool):
    log = EventLog("report", tmp_path / "report.jsonl")
    b = CircuitBreaker(reset_seconds=RESET, events=log, unlimited_half_open=unlimited)
    start = time.monotonic()
    for _ in range(3):
        _call(b, False)
    heal = time.monotonic()
    time.sleep(RESET + 0.05)
    admitted = [b.admit("save") for _ in range(3)]  # three concurrent trials
    for adm in admitted:
        if adm is not None:
            b.record_success(adm)
    r, _ = _judge(tmp_path, log, [_fault(start, heal)])
    if unlimited:
        assert r.valid is False and r.examples["half_open_extra_trials"][0]["trials"] == 3
    else:
        assert r.valid is True, (r.summary, r.examples)
