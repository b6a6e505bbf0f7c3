"""Expectations judged against gathered data: breaker sequences, checkers, load bounds."""

from __future__ import annotations

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import BreakerTransition
from kugeldrill.drill.expectations import contains_in_order, judge_all, observed_sequences
from kugeldrill.reports.sample import synthetic_summary
from kugeldrill.reports.summary import RunSummary
from kugeldrill.scenario import parse_scenario_text

BASE = """\
name: t
load: {users: {CartUser: 2}, duration: 30}
expect:
"""


def _exp(text: str):
    return parse_scenario_text(BASE + text).scenario.expect


def _by_name(results):
    return {r.name: r for r in results}


def _inputs(s: RunSummary) -> CheckInputs:
    """The checker inputs behind the synthetic summary's breaker lanes (as the adapters read them)."""
    inputs = CheckInputs(breaker_transitions=[
        BreakerTransition(p.service, p.breaker, s.t0_mono + p.t, s.t0_wall + p.t, p.from_state, p.to_state)  # type: ignore[arg-type]
        for p in s.breaker_transitions])
    inputs.mark("breaker_transitions", "synthetic")
    return inputs


def judge(exp, s: RunSummary):
    return judge_all(exp, s, _inputs(s))


def test_contains_in_order() -> None:
    obs = ["CLOSED", "OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]
    assert contains_in_order(obs, ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])
    assert not contains_in_order(["CLOSED", "OPEN", "HALF_OPEN"], ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"])
    assert not contains_in_order(["CLOSED", "HALF_OPEN", "OPEN"], ["OPEN", "HALF_OPEN"])


def test_observed_sequences_per_breaker() -> None:
    s = synthetic_summary()
    trans = _inputs(s).breaker_transitions
    assert observed_sequences(trans, "cart") == {"dapr": ["CLOSED", "OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]}
    assert observed_sequences(trans, "journal") == {}


def test_breaker_sequence_pass_exact_fail_and_missing() -> None:
    s = synthetic_summary()
    exp = _exp("  breaker:\n    sequences:\n"
               "      - {service: cart, states: [CLOSED, OPEN, HALF_OPEN, CLOSED]}\n"
               "      - {service: cart, breaker: dapr, states: [CLOSED, OPEN, HALF_OPEN, CLOSED], exact: true}\n"
               "      - {service: stock, states: [CLOSED, OPEN]}\n"
               "    never_open: [cart, journal]\n")
    results = judge(exp, s)
    seq = [r for r in results if r.name.startswith("breaker.sequence")]
    assert [r.passed for r in seq] == [True, False, False]
    assert "no transition recorded" in seq[2].observed
    unread = judge_all(exp, s, CheckInputs())  # breaker records never read: unknown, not a pass
    assert [r.passed for r in unread if r.name.startswith("breaker.")] == [None] * 6
    by = _by_name(results)
    assert by["breaker.never_open[cart]"].passed is False
    assert by["breaker.never_open[cart]"].evidence["openings"][0]["t"] == 11.0
    assert by["breaker.never_open[journal]"].passed is True


def test_checker_results_and_missing_checker_is_unknown() -> None:
    s = synthetic_summary(failing=True)
    by = _by_name(judge(_exp("  duplicates: {policy: strict}\n"), s))
    assert by["duplicates.check"].passed is False and by["duplicates.check"].evidence["examples"]
    assert by["fanout.check"].passed is True
    assert by["breaker.check"].passed is None and "did not run" in by["breaker.check"].observed


def test_load_bounds_and_outside_fault_error_rate() -> None:
    s = synthetic_summary()
    exp = _exp("  load: {max_error_rate: 0.005, max_error_rate_outside_faults: 0.0, max_p95_ms: 100, min_requests: 2000}\n")
    by = _by_name(judge(exp, s))
    assert by["load.max_error_rate"].passed is False  # 12/1100 > 0.5 %
    assert by["load.max_error_rate_outside_faults"].passed is True  # failures only inside 10–20 s
    assert by["load.max_p95_ms"].passed is True
    assert by["load.min_requests"].passed is False
    s.totals = None
    assert _by_name(judge(exp, s))["load.max_error_rate"].passed is None


def test_convergence_bound() -> None:
    s = synthetic_summary()
    exp = _exp("  convergence: {max_seconds: 3}\n")
    assert _by_name(judge(exp, s))["convergence.max_seconds"].passed is False
    s.convergence_seconds = 2.0
    assert _by_name(judge(exp, s))["convergence.max_seconds"].passed is True
    s.converged = False
    assert _by_name(judge(exp, s))["convergence.max_seconds"].passed is False
    s.convergence_seconds = None
    assert _by_name(judge(exp, s))["convergence.max_seconds"].passed is None
