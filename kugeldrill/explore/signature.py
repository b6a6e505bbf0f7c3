"""How a drill failed, as (checker, failure kind) pairs: what "fails the same way" means to shrink.

A checker's expectation contributes the kinds of violation it found (breaker `not_opened`,
duplicates `duplicate`, fan-out `missing`, outcomes `stock_mismatch`, ...), or `unknown`
when it could not judge; any other expectation (a breaker sequence, a load bound,
convergence) contributes its own name with `failed` or `unknown`.
"""

from __future__ import annotations

from kugeldrill.checkers.model import CheckResult
from kugeldrill.reports.summary import RunSummary

Failure = tuple[str, str]  # (checker or expectation, kind)


def failure_kinds(check: CheckResult) -> list[str]:
    """The violation kinds of a failed check, in the checker's own words."""
    if check.valid is None:
        return ["unknown"]
    if check.valid:
        return []
    counts = check.counts
    if isinstance(counts.get("failures"), dict) and counts["failures"]:  # fan-out
        return sorted(counts["failures"])
    if isinstance(counts.get("violations"), dict) and counts["violations"]:  # breaker, outcomes
        return sorted(counts["violations"])
    if check.checker == "duplicates":
        return ["duplicate"] + (["tolerated_duplicate"] if check.details.get("strict") else [])
    return sorted(check.examples) or ["failed"]


def signature(summary: RunSummary) -> list[Failure]:
    """Every (checker, kind) the drill failed with, the verdict's order (checkers first)."""
    out: list[Failure] = []
    for exp in summary.failed_expectations():
        check = summary.check(exp.checker) if exp.name.endswith(".check") else None
        if check is not None:
            out += [(check.checker, kind) for kind in failure_kinds(check)]
        else:
            out.append((exp.name, "unknown" if exp.passed is None else "failed"))
    if summary.verdict in ("error", "interrupted"):
        out.append(("drill", summary.verdict))
    return list(dict.fromkeys(out))


CHECKERS = ("breaker", "duplicates", "fanout", "outcomes")


def primary(sig: list[Failure]) -> Failure | None:
    """The failure shrinking must keep: a checker's violation first (the system did something
    wrong), then another expectation that failed (a sequence, a bound), then an unknown."""
    violations = [f for f in sig if f[0] in CHECKERS and f[1] != "unknown"]
    others = [f for f in sig if f[0] not in CHECKERS and f[1] != "unknown" and f[0] != "drill"]
    return (violations or others or sig or [None])[0]
