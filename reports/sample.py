"""A synthetic RunSummary shaped like a sidecar-cut drill: for report tests and layout previews."""

from __future__ import annotations

from kugeldrill.checkers.model import CheckResult
from kugeldrill.checkers.synthetic import fault
from kugeldrill.reports.summary import (BreakerPoint, EventTotals, ExpectationResult, LoadTotals, Phase,
                                        RunSummary, SeriesPoint)


def synthetic_summary(*, failing: bool = False) -> RunSummary:
    series = [SeriesPoint(t=float(t), rps=40.0 if not 10 <= t < 22 else 25.0, fails_s=0.0 if not 10 <= t < 14 else 3.0,
                          p50=12.0, p95=40.0 + (60 if 10 <= t < 22 else 0), p99=80.0, users=5.0) for t in range(0, 31)]
    transitions = [
        BreakerPoint("cart", "dapr", 11.0, "CLOSED", "OPEN"),
        BreakerPoint("cart", "dapr", 16.0, "OPEN", "HALF_OPEN"),
        BreakerPoint("cart", "dapr", 16.1, "HALF_OPEN", "OPEN"),
        BreakerPoint("cart", "dapr", 21.2, "OPEN", "HALF_OPEN"),
        BreakerPoint("cart", "dapr", 21.3, "HALF_OPEN", "CLOSED"),
    ]
    exps = [
        ExpectationResult("breaker.sequence[cart]", "breaker", True, "CLOSED→OPEN→HALF_OPEN→CLOSED",
                          "CLOSED→OPEN→HALF_OPEN→OPEN→HALF_OPEN→CLOSED"),
        ExpectationResult("duplicates.check", "duplicates", not failing, "no duplicate applications (policy tolerant)",
                          "2 duplicates" if failing else "0 duplicates",
                          {"examples": {"duplicate": [{"subscriber": "stock", "event_id": "ev-42", "applications": 2}]}}
                          if failing else {}),
        ExpectationResult("convergence.max_seconds", "convergence", True, "≤ 30 s", "3.2 s"),
    ]
    checks = [
        CheckResult("fanout", True, "every event reached its subscribers once",
                    counts={"events": 120, "matrix": {"topic-tranlog": {
                        "report": {"expected": 100, "exactly_once": 100, "missing": 0, "duplicated": 0},
                        "stock": {"expected": 100, "exactly_once": 98, "missing": 0, "duplicated": 2 if failing else 0}}}}),
        CheckResult("duplicates", not failing, "2 duplicates at stock" if failing else "no duplicates",
                    counts={"duplicates": 2 if failing else 0},
                    examples={"duplicate": [{"event_id": "ev-42"}]} if failing else {}),
    ]
    return RunSummary(
        scenario="sidecar-cut", description="cart→sidecar down for a full breaker cycle", run_dir="/tmp/x",
        started_wall=1_700_000_000.0, ended_wall=1_700_000_045.0, t0_wall=1_700_000_002.0, load_seconds=30.0,
        phases=[Phase("load", 0.0, 30.0)], series=series,
        totals=LoadTotals(requests=1100, failures=12, error_rate=12 / 1100, rps=36.6, p50=12.0, p95=70.0, p99=90.0,
                          max=400.0),
        faults=[fault("f1", "sidecar@cart", "down", 10.0, 20.0)],  # t0_mono 0: seconds since t0
        breaker_transitions=transitions, checks=checks, expectations=exps, convergence_seconds=3.2, converged=True,
        events=EventTotals(published=120, applied=340))
