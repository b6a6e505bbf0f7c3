"""Classing one drill's failures against the known defects: new, known, or unknown.

A drill fails with *failures*: each failure kind of a checker that found a violation
(breaker `not_opened`, fan-out `missing`, ...), a checker that could not judge (`unknown`,
with its reasons), or another expectation that failed or could not be judged (a breaker
sequence, a load bound, a fault window that held too few operations). Each is classed:

* **known**: it matches a listed defect's signature (checker, kind, the fields of every
  example of that kind, the words of every unknown reason) and the defect's evidence is in
  the system's own logs of that drill. A defect is a property of the system, so it is
  recognised in any drill; its `scenarios` are where it must show;
* **unknown**: the drill could not judge (and no listed defect's symptom explains it);
* **new**: everything else, including a drill that could not run or was interrupted.

Per listed defect and drill it is listed for: **reproduced** (a failure was classed as it),
**not reproduced** (the drill completed and nothing matched: fixed, or the drill no longer
reaches it), or **not judged** (the drill did not complete).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kugeldrill.checkers.adapters.kugelpos_logs import LineMatches, matching_lines
from kugeldrill.explore.signature import failure_kinds
from kugeldrill.reports.summary import ExpectationResult, RunSummary
from kugeldrill.suite.known import KIND_FAILED, KIND_UNKNOWN, KnownDefect, KnownDefects, Signature

Class = Literal["new", "known", "unknown"]
Status = Literal["reproduced", "not_reproduced", "not_judged"]
# (app, pattern) -> the drill's matching lines of that app's log, or None (no such log)
LogLookup = Callable[[str, "re.Pattern[str]"], LineMatches | None]
MAX_EXAMPLES = 10


@dataclass
class Failure:
    """One way a drill failed: a checker's failure kind, or an expectation that did not pass."""

    checker: str  # breaker | duplicates | fanout | outcomes | an expectation name | drill
    kind: str  # the checker's failure kind | unknown | failed | error | interrupted
    expectation: str  # the expectation it came from ("" for the drill itself)
    message: str  # what was observed
    examples: list[dict[str, Any]] = field(default_factory=list)  # the checker's examples of this kind
    reasons: list[str] = field(default_factory=list)  # why it is unknown, one line per cause

    @property
    def label(self) -> str:
        return f"{self.checker} {self.kind}"


@dataclass
class Classified:
    failure: Failure
    cls: Class
    known_id: str | None = None  # the (first) defect it is
    why: str = ""  # why it is this defect (the evidence found), or why not (closest defect's gap)
    evidence: list[str] = field(default_factory=list)  # the log lines that made it known
    known_ids: list[str] = field(default_factory=list)  # every defect its examples belong to

    def __post_init__(self) -> None:
        if self.known_id and not self.known_ids:
            self.known_ids = [self.known_id]


@dataclass
class KnownStatus:
    """A listed defect in one drill it is listed for."""

    defect_id: str
    scenario: str
    status: Status
    detail: str = ""


@dataclass
class DrillClassification:
    scenario: str
    run_dir: str
    verdict: str  # the drill's own: pass | fail | error | interrupted
    failures: list[Classified] = field(default_factory=list)
    known: list[KnownStatus] = field(default_factory=list)

    def count(self, cls: Class) -> int:
        return sum(1 for c in self.failures if c.cls == cls)

    @property
    def outcome(self) -> str:
        """green | known (only known defects) | unknown | new | error | interrupted."""
        if self.verdict in ("error", "interrupted"):
            return self.verdict
        if self.count("new"):
            return "new"
        if self.count("unknown"):
            return "unknown"
        return "known" if self.failures else "green"

    def for_expectation(self, name: str) -> list[Classified]:
        return [c for c in self.failures if c.failure.expectation == name]


# ---------------------------------------------------------------------- failures of a drill


def _reasons(exp: ExpectationResult, details: dict[str, Any], summary: str) -> list[str]:
    """Why a check or expectation is unknown, one line per cause (a checker's details.unknown:
    text, or records with `reason`), else its summary."""
    out = []
    for item in details.get("unknown") or []:
        if isinstance(item, dict):
            text = str(item.get("reason") or item.get("summary") or "")
            if item.get("status") is not None and str(item["status"]) not in text:
                text += f" (HTTP {item['status']})"
            where = ", ".join(f"{k} {item[k]}" for k in ("part", "terminal_no", "business_date") if item.get(k) is not None)
            out.append(f"{where}: {text}" if where and text else str(text or item))
        else:
            out.append(str(item))
    return out or [summary or exp.observed]


def drill_failures(summary: RunSummary) -> list[Failure]:
    """Every failure of a drill, in the verdict's order (checkers, then other expectations)."""
    out: list[Failure] = []
    for exp in summary.failed_expectations():
        check = summary.check(exp.checker) if exp.name.endswith(".check") else None
        if check is None:
            kind = KIND_UNKNOWN if exp.passed is None else KIND_FAILED
            reasons = _reasons(exp, exp.evidence, exp.observed) if kind == KIND_UNKNOWN else []
            out.append(Failure(exp.name, kind, exp.name, exp.observed, reasons=reasons))
            continue
        for kind in failure_kinds(check):
            if kind == KIND_UNKNOWN:
                out.append(Failure(check.checker, kind, exp.name, check.summary,
                                   reasons=_reasons(exp, check.details, check.summary)))
            else:
                out.append(Failure(check.checker, kind, exp.name, check.summary,
                                   examples=list(check.examples.get(kind, []))[:MAX_EXAMPLES]))
    if summary.verdict in ("error", "interrupted"):
        out.append(Failure("drill", summary.verdict, "", summary.error or summary.verdict))
    return out


# ---------------------------------------------------------------------- matching


def _unit_gap(signature: Signature, failure: Failure, unit: dict[str, Any] | str) -> str | None:
    """None when one part of `failure` (one of its examples, or one reason / its observed text)
    shows as `signature`; else what differs."""
    if (signature.checker, signature.kind) != (failure.checker, failure.kind):
        return f"{failure.label} is not {signature.label()}"
    if signature.where:
        if not isinstance(unit, dict):
            return "no example to compare with `where`"
        for key, pattern in signature.where.items():
            if key not in unit or not re.search(pattern, str(unit[key])):
                return f"an example has {key}={unit.get(key)!r}, not /{pattern}/"
    if signature.reason:
        text = unit if isinstance(unit, str) else failure.message
        if not re.search(signature.reason, text):
            what = "reason" if failure.kind == KIND_UNKNOWN else "observed"
            return f"{what} {text[:160]!r} is not /{signature.reason}/"
    return None


def _units(failure: Failure) -> list[dict[str, Any] | str]:
    """What must each be explained: every example of the kind, or every reason of an unknown,
    or the observed text of an expectation."""
    if failure.examples:
        return list(failure.examples)
    if failure.kind == KIND_UNKNOWN:
        return list(failure.reasons) or [failure.message]
    return [failure.message]


def _evidence(defect: KnownDefect, logs: LogLookup) -> tuple[str | None, list[str]]:
    """(None, lines found) when every evidence line holds in the drill's logs; else (what is missing, [])."""
    found: list[str] = []
    for item in defect.evidence:
        pattern = re.compile(item.pattern)
        per_log = {name: logs(name, pattern) for name in item.logs}
        read = {name: m for name, m in per_log.items() if m is not None}
        if not read:
            return f"no log of {item.names} in the run folder", []
        count = sum(m.count for m in read.values())
        lines = [f"{name}: {line}" for name, m in read.items() for line in m.lines]
        if item.absent and count:
            return f"{item.names}'s log has {count} line(s) matching /{item.pattern}/: {lines[0][:160]}", []
        if not item.absent and count < item.min_count:
            return f"{item.describe()}: {count} found", []
        found += lines[:2]
    return None, found


def classify_failure(failure: Failure, known: KnownDefects, logs: LogLookup) -> Classified:
    """Known when every example (or reason) of the failure is some listed defect's, with that
    defect's evidence in the drill's logs: one failure kind may hold two defects (cart's and
    terminal's breakers both `not_opened`). The checker keeps the first examples of a kind only,
    so the examples shown are what is judged."""
    default: Class = "unknown" if failure.kind == KIND_UNKNOWN else "new"
    if failure.checker == "drill":
        return Classified(failure, "new", why="the drill did not complete")
    evidence: dict[str, tuple[str | None, list[str]]] = {}
    ids: list[str] = []
    lines: list[str] = []
    for unit in _units(failure):
        gaps: list[str] = []
        owner = None
        for defect in known.defects:
            for signature in defect.signatures:
                gap = _unit_gap(signature, failure, unit)
                if gap is None:
                    if defect.id not in evidence:
                        evidence[defect.id] = _evidence(defect, logs)
                    missing, found = evidence[defect.id]
                    if missing is None:
                        owner = defect
                        lines += [line for line in found if line not in lines]
                    else:
                        gaps.append(f"{defect.id}'s evidence is missing: {missing}")
                    break
                if (signature.checker, signature.kind) == (failure.checker, failure.kind):
                    gaps.append(f"not {defect.id}: {gap}")
            if owner is not None:
                break
        if owner is None:
            return Classified(failure, default, why="; ".join(dict.fromkeys(gaps)))
        if owner.id not in ids:
            ids.append(owner.id)
    why = "; ".join(f"known defect {i}: {d.title} ({d.finding})" for i in ids if (d := known.get(i)))
    return Classified(failure, "known", ids[0], why, lines, known_ids=ids)


def run_folder_logs(run_dir: str | Path, since_wall: float | None, until_wall: float | None) -> LogLookup:
    """The drill's own lines of each app's log copied into its run folder."""
    def lookup(app: str, pattern: re.Pattern[str]) -> LineMatches | None:
        return matching_lines(run_dir, app, pattern, since_wall=since_wall, until_wall=until_wall)

    return lookup


def classify_drill(summary: RunSummary, known: KnownDefects, logs: LogLookup | None = None) -> DrillClassification:
    """Class every failure of one drill and judge each defect listed for it."""
    if logs is None:
        logs = run_folder_logs(summary.run_dir, summary.started_wall or None, summary.ended_wall or None)
    result = DrillClassification(summary.scenario, summary.run_dir, summary.verdict)
    result.failures = [classify_failure(f, known, logs) for f in drill_failures(summary)]
    completed = summary.status == "completed"
    for defect in known.defects:
        if summary.scenario not in defect.scenarios:
            continue
        hits = [c for c in result.failures if defect.id in c.known_ids]
        if hits:
            status: Status = "reproduced"
            detail = "; ".join(c.failure.label for c in hits)
        elif completed:
            status = "not_reproduced"
            detail = _closest_miss(defect, result.failures)
        else:
            status, detail = "not_judged", f"the drill did not complete ({summary.verdict})"
        result.known.append(KnownStatus(defect.id, summary.scenario, status, detail))
    return result


def _closest_miss(defect: KnownDefect, failures: list[Classified]) -> str:
    """Why a listed defect was not reproduced: its signature never showed, or its evidence was missing."""
    for c in failures:
        if c.cls != "known" and c.why and defect.id in c.why:
            return c.why
    shows = " or ".join(sig.label() for sig in defect.signatures)
    return f"no {shows} failure: fixed, or the drill no longer reaches it"
