"""Judging a scenario's expectations against what the drill gathered.

Checkers say whether the system behaved as the seed specifies; expectations are the
scenario's own promises on top (this breaker goes through this cycle, error rate stays
under 5 %, convergence within 30 s). Every expectation becomes one ExpectationResult
(one JUnit testcase) with the evidence a reader needs. Missing data make an expectation
unknown (passed=None), which fails the drill: a drill that saw nothing must not pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import BreakerTransition
from kugeldrill.reports.summary import ExpectationResult, RunSummary
from kugeldrill.scenario_schema import BreakerSequence, Expectations

ARROW = "→"


def observed_sequences(transitions: list[BreakerTransition], service: str,
                       breaker: str | None = None) -> dict[str, list[str]]:
    """State sequence per breaker of `service` (first `from`, then every `to`), in time order."""
    per: dict[str, list[str]] = {}
    for tr in sorted(transitions, key=lambda t: t.mono):
        if tr.service != service or (breaker and tr.breaker != breaker):
            continue
        per.setdefault(tr.breaker, [tr.from_state]).append(tr.to_state)
    return per


def contains_in_order(observed: Sequence[str], expected: Sequence[str]) -> bool:
    """True if `expected` is a subsequence of `observed` (extra cycles allowed between)."""
    it = iter(observed)
    return all(any(state == want for state in it) for want in expected)


def _transition_rows(transitions: list[BreakerTransition], service: str, t0_mono: float) -> list[dict[str, Any]]:
    return [{"t": round(t.mono - t0_mono, 3), "breaker": t.breaker, "from": t.from_state, "to": t.to_state,
             "failures": t.failures} for t in sorted(transitions, key=lambda t: t.mono) if t.service == service][:50]


def judge_sequence(seq: BreakerSequence, inputs: CheckInputs, t0_mono: float) -> ExpectationResult:
    name = f"breaker.sequence[{seq.service}{'/' + seq.breaker if seq.breaker else ''}]"
    expected = ARROW.join(seq.states) + (" exactly" if seq.exact else " (in order)")
    if not inputs.has("breaker_transitions"):
        why = inputs.missing.get("breaker_transitions", "no breaker records were read")
        return ExpectationResult(name, "breaker", None, expected, f"unknown: {why}", {})
    per = observed_sequences(inputs.breaker_transitions, seq.service, seq.breaker)
    if not per:
        observed = "no transition recorded (stayed CLOSED)"
        return ExpectationResult(name, "breaker", seq.states == ["CLOSED"], expected, observed,
                                 {"transitions": [], "service": seq.service})
    matches = {b: (s == seq.states if seq.exact else contains_in_order(s, seq.states)) for b, s in per.items()}
    observed = "; ".join(f"{b or '-'}: {ARROW.join(s)}" for b, s in per.items())
    evidence = {"transitions": _transition_rows(inputs.breaker_transitions, seq.service, t0_mono)}
    return ExpectationResult(name, "breaker", any(matches.values()), expected, observed, evidence)


def judge_never_open(service: str, inputs: CheckInputs, t0_mono: float) -> ExpectationResult:
    name, expected = f"breaker.never_open[{service}]", "no breaker of this service opens"
    if not inputs.has("breaker_transitions"):
        why = inputs.missing.get("breaker_transitions", "no breaker records were read")
        return ExpectationResult(name, "breaker", None, expected, f"unknown: {why}", {})
    opened = [t for t in inputs.breaker_transitions if t.service == service and t.to_state == "OPEN"]
    evidence = {"openings": [r for r in _transition_rows(opened, service, t0_mono)][:20]} if opened else {}
    return ExpectationResult(name, "breaker", not opened, expected,
                             f"opened {len(opened)} time(s)" if opened else "never opened", evidence)


def judge_checker(name: str, summary: RunSummary, policy: str | None = None) -> ExpectationResult:
    check = summary.check(name)
    what = f"the {name} checker finds no violation" + (f" (policy {policy})" if policy else "")
    if check is None:
        return ExpectationResult(f"{name}.check", name, None, what, "the checker did not run (no result)", {})
    observed = check.summary or {True: "valid", False: "invalid", None: "unknown: data missing"}[check.valid]
    evidence: dict[str, Any] = {}
    if check.valid is not True:
        evidence = {"examples": check.examples, "counts": check.counts}
        if check.details.get("mismatches"):  # a comparison table: (key, expected, observed) rows first
            evidence = {"mismatches": check.details["mismatches"], **evidence}
        elif check.valid is None and check.details.get("unknown"):
            evidence = {"unknown": check.details["unknown"], **evidence}
    return ExpectationResult(f"{name}.check", name, check.valid, what, observed, evidence)


def _outside_fault_rates(summary: RunSummary) -> tuple[float, float]:
    """Requests and failures per second summed over series rows outside every fault window."""
    windows = [(start, end if end is not None else float("inf")) for start, end in map(summary.fault_window, summary.faults)]
    req = fail = 0.0
    for row in summary.series:
        if any(a <= row.t <= b for a, b in windows):
            continue
        req += row.rps
        fail += row.fails_s
    return req, fail


def judge_load(exp: Expectations, summary: RunSummary) -> list[ExpectationResult]:
    out: list[ExpectationResult] = []
    bounds = exp.load
    totals = summary.totals
    have = totals is not None

    def add(name: str, ok: bool | None, expected: str, observed: str, ev: dict[str, Any] | None = None) -> None:
        out.append(ExpectationResult(name, "load", ok if have else None, expected,
                                     observed if have else "no Locust statistics were gathered", ev or {}))

    if bounds.max_error_rate is not None:
        rate = totals.error_rate if totals else 0.0
        add("load.max_error_rate", rate <= bounds.max_error_rate, f"error rate ≤ {bounds.max_error_rate:.2%}",
            f"{rate:.2%} ({totals.failures if totals else 0} of {totals.requests if totals else 0} requests)")
    if bounds.max_error_rate_outside_faults is not None:
        req, fail = _outside_fault_rates(summary)
        rate = fail / req if req else 0.0
        add("load.max_error_rate_outside_faults", rate <= bounds.max_error_rate_outside_faults,
            f"error rate outside fault windows ≤ {bounds.max_error_rate_outside_faults:.2%}", f"{rate:.2%}")
    for key, bound in (("p95", bounds.max_p95_ms), ("p99", bounds.max_p99_ms)):
        if bound is not None:
            value = getattr(totals, key) if totals else None
            add(f"load.max_{key}_ms", value is not None and value <= bound, f"{key} ≤ {bound:g} ms",
                f"{value:g} ms" if value is not None else "not measured")
    if bounds.min_requests is not None:
        n = totals.requests if totals else 0
        add("load.min_requests", n >= bounds.min_requests, f"≥ {bounds.min_requests} requests", f"{n} requests")
    return out


def judge_convergence(exp: Expectations, summary: RunSummary) -> ExpectationResult:
    """Quiescent within the bound, judged only on what was observed: events still owed by a
    republish job make it unknown (pending), never a pass and never a failure."""
    bound = exp.convergence.max_seconds
    secs = summary.convergence_seconds
    name, expected = "convergence.max_seconds", f"quiescent within {bound:g} s"
    basis = f" ({summary.convergence_basis})" if summary.convergence_basis else ""
    evidence = {"convergence_seconds": secs, "converged": summary.converged, "basis": summary.convergence_basis}
    if summary.pending_republish:
        return ExpectationResult(name, "convergence", None, expected,
                                 f"pending: {summary.pending_republish}", evidence)
    if secs is None:
        return ExpectationResult(name, "convergence", None, expected, "convergence was not measured" + basis, {})
    ok = bool(summary.converged) and secs <= bound
    observed = f"{secs:.1f} s{basis}" + ("" if summary.converged else " (still not quiescent when the bound passed)")
    return ExpectationResult(name, "convergence", ok, expected, observed, evidence)


def judge_all(exp: Expectations, summary: RunSummary, inputs: CheckInputs) -> list[ExpectationResult]:
    """Every expectation of the scenario, in a stable order (breaker, duplicates, fan-out, load, convergence).

    Checker expectations take the checkers' results; breaker sequences are judged from the
    checkers' inputs (the transitions as read), never from the report's chart data.
    """
    results: list[ExpectationResult] = []
    if exp.breaker.check:
        results.append(judge_checker("breaker", summary))
    results += [judge_sequence(seq, inputs, summary.t0_mono) for seq in exp.breaker.sequences]
    results += [judge_never_open(svc, inputs, summary.t0_mono) for svc in exp.breaker.never_open]
    if exp.duplicates.check:
        results.append(judge_checker("duplicates", summary, exp.duplicates.policy))
    if exp.fanout.check:
        results.append(judge_checker("fanout", summary, exp.fanout.policy))
    if exp.outcomes.check and exp.outcomes.parts:
        results.append(judge_checker("outcomes", summary, "+".join(exp.outcomes.parts)))
    results += judge_load(exp, summary)
    results.append(judge_convergence(exp, summary))
    return results
