"""The outcome checker itself: every part judged, the wholes weighed, one verdict.

See the package docstring (checkers.outcomes) for what each operation must change.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from kugeldrill.checkers.duplicates import tolerated_extras
from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.load_figures import as_seen, load_record_problems
from kugeldrill.checkers.load_figures import describe as describe_load_problems
from kugeldrill.checkers.model import BusinessSnapshot, CheckResult, Op
from kugeldrill.checkers.outcomes.bands import Table
from kugeldrill.checkers.outcomes.journal import JOURNAL_TYPE, judge_journal
from kugeldrill.checkers.outcomes.report import judge_report, reason_text
from kugeldrill.checkers.outcomes.stock import judge_stock
from kugeldrill.checkers.params import DuplicatePolicy, OutcomePolicy
from kugeldrill.checkers.pending import Pending
from kugeldrill.checkers.wholes import resolve

JUDGES = {"report": judge_report, "journal": judge_journal, "stock": judge_stock}


def _readable(part: str, before: BusinessSnapshot, after: BusinessSnapshot) -> str | None:
    """Why `part` cannot be judged (None: it can)."""
    for name, snap in (("before the load", before), ("after the drill", after)):
        if part in snap.errors:
            return f"{part} unreadable {name}: {snap.errors[part]}"
    if part == "journal" and (before.journal is None or after.journal is None):
        return "journal was not read"
    if part == "stock" and (before.stock is None or after.stock is None):
        return "stock was not read"
    return None


def check_outcomes(inputs: CheckInputs, policy: OutcomePolicy | None = None,
                   duplicates: DuplicatePolicy | None = None, pending: Pending | None = None) -> CheckResult:
    """Judge report, journal and stock changes against the history (see the module docstring).

    A duplicate the duplicate checker tolerates (its own record explains it; the duplicate
    checker's policy, `duplicates`) may move a figure once more; in strict mode it may not."""
    p = policy or OutcomePolicy()
    before, after = inputs.business_before, inputs.business_after
    if before is None or after is None:
        reason = inputs.missing.get("business") or "report, journal and stock were not read before and after the drill"
        return CheckResult("outcomes", None, f"unknown: {reason}", details={"unknown": [reason]})
    if not inputs.has("ops"):
        reason = inputs.missing.get("ops") or "no load history"
        return CheckResult("outcomes", None, f"unknown: {reason}", details={"unknown": [reason]})
    ops = [as_seen(op) for op in inputs.ops if op.f in JOURNAL_TYPE]  # the load's `missing` figures blanked
    ex = Examples(p.max_examples)
    unknown: list[Any] = []  # reasons: text, or records {"reason", "part", "terminal_no", ...} (contracts §9)
    tables: dict[str, Table] = {}
    tolerated = tolerated_extras(inputs, duplicates)
    pending = pending or Pending()
    owed = pending.ops
    problems = load_record_problems(ops)
    if problems:
        unknown.append(describe_load_problems(problems))
    for part in p.parts:
        why = _readable(part, before, after)
        if why:
            unknown.append({"reason": why, "part": part})
            continue
        tables[part] = JUDGES[part](ops, before, after, p, ex, tolerated, owed)
        unknown += [u if isinstance(u, dict) else f"{part}: {u}" for u in tables[part].unknown]
    if not ops:
        unknown.append("the load recorded no business operation")
    unknown_rows: dict[str, list[dict[str, Any]]] = {}
    for part, t in tables.items():
        rows = [r for r in t.rows if r["ok"] is None and not r.get("note", "").startswith("effects still due")]
        if rows:
            unknown_rows[part] = rows[:50]
            unknown.append({"reason": f"{part}: {len(rows)} figure(s) could not be compared, e.g. {rows[0]['key']} "
                                      f"(expected {rows[0]['expected']}, observed {rows[0]['observed']}: "
                                      f"{rows[0].get('note', 'unknown')})", "part": part,
                            "figures": [r["key"] for r in rows[:20]]})
    if any(r["ok"] is None and r.get("note", "").startswith("effects still due") for t in tables.values() for r in t.rows):
        unknown.append(pending.reason())
    wholes = resolve([w for t in tables.values() for w in t.wholes])
    for case in wholes.inconsistent:
        ex.add("info_half_applied", {"key": "info operations " + ", ".join(case["operations"][:5]),
                                     "expected": "each applied wholly or not at all", "observed": case["why"],
                                     **case})
    unknown += wholes.undetermined
    info_ops = _info_resolutions(ops, wholes.ops, owed)
    counts: dict[str, Any] = {part: {"figures": len(t.rows), "mismatches": sum(1 for r in t.rows if r["ok"] is False),
                                     "unknown": sum(1 for r in t.rows if r["ok"] is None)}
                              for part, t in tables.items()}
    counts["operations"] = dict(Counter(f"{op.f}:{op.outcome or 'info'}" for op in ops))
    counts["info_resolution"] = dict(Counter(i["resolved"] for i in info_ops))
    counts["load_records_missing_figures"] = len(problems)
    counts["violations"] = dict(ex.counts)
    mismatches = [{k: v for k, v in row.items() if k in ("key", "expected", "observed")}
                  for items in ex.items.values() for row in items]
    details = {"tables": {part: t.rows[: p.max_rows] for part, t in tables.items()}, "unknown": unknown,
               "unknown_rows": unknown_rows, "mismatches": mismatches, "info_operations": info_ops[: p.max_rows],
               "load_records": [pr.to_dict() for pr in problems[:50]],
               "unreadable": _unreadable_evidence(before, after), "provenance": inputs.provenance()}
    if before.unsettled:
        # Events of the set-up still landing after the first reading show up as changes the
        # load did not make: differences cannot be told from that race.
        unknown.insert(0, "the business state was read before the load while events were still landing "
                          f"({before.unsettled}); its differences are not judged")
    if ex and not before.unsettled:
        valid, summary = False, "the business state disagrees with the load: " + ", ".join(
            f"{k} {v}" for k, v in sorted(ex.counts.items()))
    elif unknown:
        valid, summary = None, "unknown: " + reason_text(unknown[0])
    else:
        figures = sum(len(t.rows) for t in tables.values())
        resolved = f"; {len(info_ops)} info operation(s) resolved as wholes" if info_ops else ""
        valid, summary = True, f"{', '.join(tables)} agree with the load ({figures} figures compared{resolved})"
    return CheckResult("outcomes", valid, summary, counts=counts, examples=ex.items, details=details)


def _info_resolutions(ops: list[Op], resolved: Mapping[str, str], owed: set[str]) -> list[dict[str, Any]]:
    """Each info operation and which way it was resolved (evidence and report)."""
    out = []
    for op in ops:
        if op.outcome in ("ok", "fail"):
            continue
        if op.op_id in owed:
            how = "applied (its event is still due for republish)"
        else:
            how = resolved.get(op.op_id, "touches no compared figure")
        out.append({"op": op.op_id, "f": op.f, "terminal_no": op.value.get("terminal_no"),
                    "transaction_no": op.value.get("transaction_no"), "amount": op.value.get("amount"),
                    "resolved": how, "error": (op.error or "")[:120]})
    return out


def _unreadable_evidence(before: BusinessSnapshot, after: BusinessSnapshot) -> list[dict[str, Any]]:
    """Every failed read, structured (part, terminal, request, HTTP status and body), so that a
    known defect's pattern can be matched on it."""
    out = []
    for phase, snap in (("before", before), ("after", after)):
        for u in snap.unreadable:
            out.append({"phase": phase, **asdict(u)})
        for part, error in snap.errors.items():
            out.append({"phase": phase, "part": part, "request": "", "error": error, "status": None, "body": "",
                        "terminal_no": None, "business_date": None})
    return out


def snapshot_dates(ops: Iterable[Op]) -> dict[int, set[str]]:
    """Business dates per terminal that the history names (for the `after` report reads)."""
    out: dict[int, set[str]] = defaultdict(set)
    for op in ops:
        no, date = op.value.get("terminal_no"), op.value.get("business_date")
        if no is not None and date:
            out[int(no)].add(str(date))
    return out
