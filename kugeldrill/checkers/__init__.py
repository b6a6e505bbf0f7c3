"""Verdicts: breaker transitions, duplicate processing, fan-out counts, and the business outcome
(report, journal, stock) against the load.

Checkers read normalised records (checkers.model) produced by adapters; they never
import the stand-in (stack), so the same checkers judge a real Kugelpos deployment.

Entry point for the drill runner (contracts §8):

    from kugeldrill.checkers import run_all, CheckParams
    results = run_all(inputs, CheckParams())   # list[CheckResult], one per enabled checker
"""

from __future__ import annotations

from kugeldrill.checkers.model import CheckResult
from kugeldrill.checkers.params import BreakerParams, CheckParams, DuplicatePolicy, FanoutPolicy, OutcomePolicy

__all__ = ["run_all", "combine", "CheckParams", "BreakerParams", "DuplicatePolicy", "FanoutPolicy", "OutcomePolicy", "CheckResult"]


def run_all(inputs, params: CheckParams | None = None) -> list[CheckResult]:  # noqa: ANN001 - CheckInputs
    """Run every enabled checker on `inputs`; a checker that crashes yields valid None, not a pass."""
    from kugeldrill.checkers.breaker import check_breakers
    from kugeldrill.checkers.duplicates import check_duplicates
    from kugeldrill.checkers.fanout import check_fanout
    from kugeldrill.checkers.outcomes import check_outcomes
    from kugeldrill.checkers.pending import pending_republish

    p = params or CheckParams()
    pending = pending_republish(inputs, p.republish)
    table = {
        "breaker": lambda: check_breakers(inputs, p.breaker),
        "duplicates": lambda: check_duplicates(inputs, p.duplicates),
        "fanout": lambda: check_fanout(inputs, p.fanout, pending),
        "outcomes": lambda: check_outcomes(inputs, p.outcomes, p.duplicates, pending),
    }
    results: list[CheckResult] = []
    for name in p.enabled:
        fn = table.get(name)
        if fn is None:
            results.append(CheckResult(name, None, f"unknown checker {name!r}"))
            continue
        try:
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - a broken checker must show up as unknown, with the error
            results.append(CheckResult(name, None, f"checker crashed: {type(exc).__name__}: {exc}",
                                       details={"error": repr(exc)}))
    return results


def combine(results: list[CheckResult]) -> bool | None:
    """Overall validity, Jepsen's priority: any False -> False, else any None -> None, else True."""
    if any(r.valid is False for r in results):
        return False
    if not results or any(r.valid is None for r in results):
        return None
    return True
