"""Judging a scenario's expectations against what the drill gathered.

Checkers say whether the system behaved as the seed specifies; expectations are the
scenario's own promises on top (this breaker goes through this cycle, error rate stays
under 5 %, convergence within 30 s). Every expectation becomes one ExpectationResult
(one JUnit testcase) with the evidence a reader needs. Missing data make an expectation
unknown (passed=None), which fails the drill: a drill that saw nothing must not pass.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.scenario_schema import BreakerSequence, Expectations
from kugeldrill.reports.summary import ExpectationResult, RunSummary

ARROW = "→"


def observed_sequences(transitions: list[dict[str, Any]], service: str,
                       breaker: str | None = None) -> dict[str, list[str]]:
    """State sequence per breaker of `service` (first `from`, then every `to`)."""
    per: dict[str, list[str]] = {}
    for tr in sorted(transitions, key=lambda r: r.get("t", 0.0)):
        if tr.get("service") != service or (breaker and tr.get("breaker") != breaker):
            continue
        seq = per.setdefault(str(tr.get("breaker", "")), [str(tr.get("from", "CLOSED"))])
        seq.append(str(tr.get("to")))
    return per


def contains_in_order(observed: list[str], expected: list[str]) -> bool:
    """True if `expected` is a subsequence of `observed` (extra cycles allowed between)."""
    it = iter(observed)
    return all(any(state == want for state in it) for want in expected)


def judge_sequence(seq: BreakerSequence, summary: RunSummary) -> ExpectationResult:
    per = observed_sequences(summary.breaker_transitions, seq.service, seq.breaker)
    name = f"breaker.sequence[{seq.service}{'/' + seq.breaker if seq.breaker else ''}]"
    expected = ARROW.join(seq.states) + (" exactly" if seq.exact else " (in order)")
    if not per:
        observed = "no transition recorded (stayed CLOSED, or breaker events missing)"
        passed = seq.states == ["CLOSED"]
        return ExpectationResult(name, "breaker", passed, expected, observed,
                                 {"transitions": [], "service": seq.service})
    matches = {b: (s == seq.states if seq.exact else contains_in_order(s, seq.states)) for b, s in per.items()}
    observed = "; ".join(f"{b or '-'}: {ARROW.join(s)}" for b, s in per.items())
    evidence = {"transitions": [t for t in summary.breaker_transitions if t.get("service") == seq.service][:50]}
    return ExpectationResult(name, "breaker", any(matches.values()), expected, observed, evidence)


def judge_never_open(service: str, summary: RunSummary) -> ExpectationResult:
    opened = [t for t in summary.breaker_transitions if t.get("service") == service and t.get("to") == "OPEN"]
    return ExpectationResult(
        f"breaker.never_open[{service}]", "breaker", not opened, "no breaker of this service opens",
        f"opened {len(opened)} time(s)" if opened else "never opened", {"openings": opened[:20]} if opened else {})


def judge_checker(name: str, summary: RunSummary, policy: str | None = None) -> ExpectationResult:
    check = summary.check(name)
    what = f"the {name} checker finds no violation" + (f" (policy {policy})" if policy else "")
    if check is None:
        return ExpectationResult(f"{name}.check", name, None, what, "the checker did not run (no result)", {})
    valid = check.get("valid")
    observed = check.get("summary") or {True: "valid", False: "invalid", None: "unknown: data missing"}[valid]
    evidence: dict[str, Any] = {}
    if valid is not True:
        evidence = {"examples": check.get("examples", {}), "counts": check.get("counts", {})}
    return ExpectationResult(f"{name}.check", name, valid, what, observed, evidence)


def _outside_fault_rates(summary: RunSummary) -> tuple[float, float]:
    """Requests and failures per second summed over series rows outside every fault window."""
    windows = [(f.get("start") or 0.0, f.get("end") if f.get("end") is not None else float("inf"))
               for f in summary.faults]
    req = fail = 0.0
    for row in summary.series:
        t = row.get("t", 0.0)
        if any(a <= t <= b for a, b in windows):
            continue
        req += row.get("rps") or 0.0
        fail += row.get("fails_s") or 0.0
    return req, fail


def judge_load(exp: Expectations, summary: RunSummary) -> list[ExpectationResult]:
    out: list[ExpectationResult] = []
    bounds = exp.load
    totals = summary.totals
    have = bool(totals) and totals.get("requests") is not None

    def add(name: str, ok: bool | None, expected: str, observed: str, ev: dict[str, Any] | None = None) -> None:
        out.append(ExpectationResult(name, "load", ok if have else None, expected,
                                     observed if have else "no Locust statistics were gathered", ev or {}))

    if bounds.max_error_rate is not None:
        rate = totals.get("error_rate") or 0.0
        add("load.max_error_rate", rate <= bounds.max_error_rate, f"error rate ≤ {bounds.max_error_rate:.2%}",
            f"{rate:.2%} ({totals.get('failures')} of {totals.get('requests')} requests)")
    if bounds.max_error_rate_outside_faults is not None:
        req, fail = _outside_fault_rates(summary)
        rate = fail / req if req else 0.0
        add("load.max_error_rate_outside_faults", rate <= bounds.max_error_rate_outside_faults,
            f"error rate outside fault windows ≤ {bounds.max_error_rate_outside_faults:.2%}", f"{rate:.2%}")
    for key, bound in (("p95", bounds.max_p95_ms), ("p99", bounds.max_p99_ms)):
        if bound is not None:
            value = totals.get(key)
            add(f"load.max_{key}_ms", value is not None and value <= bound, f"{key} ≤ {bound:g} ms",
                f"{value:g} ms" if value is not None else "not measured")
    if bounds.min_requests is not None:
        n = int(totals.get("requests") or 0)
        add("load.min_requests", n >= bounds.min_requests, f"≥ {bounds.min_requests} requests", f"{n} requests")
    return out


def judge_convergence(exp: Expectations, summary: RunSummary) -> ExpectationResult:
    bound = exp.convergence.max_seconds
    secs = summary.convergence_seconds
    if secs is None:
        return ExpectationResult("convergence.max_seconds", "convergence", None, f"quiescent within {bound:g} s",
                                 "convergence was not measured", {})
    ok = bool(summary.converged) and secs <= bound
    observed = f"{secs:.1f} s" + ("" if summary.converged else " (still not quiescent when the bound passed)")
    return ExpectationResult("convergence.max_seconds", "convergence", ok, f"quiescent within {bound:g} s", observed,
                             {"convergence_seconds": secs, "converged": summary.converged})


def judge_all(exp: Expectations, summary: RunSummary) -> list[ExpectationResult]:
    """Every expectation of the scenario, in a stable order (breaker, duplicates, fan-out, load, convergence)."""
    results: list[ExpectationResult] = []
    if exp.breaker.check:
        results.append(judge_checker("breaker", summary))
    results += [judge_sequence(seq, summary) for seq in exp.breaker.sequences]
    results += [judge_never_open(svc, summary) for svc in exp.breaker.never_open]
    if exp.duplicates.check:
        results.append(judge_checker("duplicates", summary, exp.duplicates.policy))
    if exp.fanout.check:
        results.append(judge_checker("fanout", summary, exp.fanout.policy))
    results += judge_load(exp, summary)
    results.append(judge_convergence(exp, summary))
    return results
