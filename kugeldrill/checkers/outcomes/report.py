"""The sales report's part of the outcome check: per terminal and business date, every figure.

Kugelpos' report formulas (docs/kugelpos-facts.md §5.2–5.7): a sale moves gross and net, its
taxes and payments per code; a void backs a sale out; a return moves returns and net the
other way; cash-in/out move their blocks. A terminal whose report cannot be read is unknown
for that terminal alone, with the answer it got.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.keys import op_key
from kugeldrill.checkers.model import (
    UNNAMED,
    BusinessSnapshot,
    Figure,
    Op,
    SalesReport,
    Unreadable,
)
from kugeldrill.checkers.outcomes.bands import TOLERATED, Band, Table, certainty, fmt
from kugeldrill.checkers.params import OutcomePolicy
from kugeldrill.ground.numbers import number_or_none

# How an operation moves the report: (block, sign) for gross/returns, the sign of its taxes,
# payments and net figures.
REPORT_BLOCK = {"sale": ("gross", 1), "void": ("gross", -1), "return": ("returns", 1)}
FACTOR = {"sale": 1, "void": -1, "return": -1}



def _report_date(op: Op, before: BusinessSnapshot, after: BusinessSnapshot) -> str | None:
    date = op.value.get("business_date")
    if date:
        return str(date)
    no = op.value.get("terminal_no")
    return before.terminal_dates.get(int(no)) if no is not None else None


def expected_report(ops: Iterable[Op], before: BusinessSnapshot, after: BusinessSnapshot,
                    tolerated: Mapping[str, int] | None = None, pending: set[str] = frozenset()
                    ) -> tuple[dict[tuple[int, str], dict[str, Band]], list[str]]:
    """(terminal, business date) -> figure key -> band of the change the load made.

    `tolerated`: business key -> extra applications by the report subscriber that the seed
    tolerates (its state store was unreachable); each may add the operation's effect again."""
    out: dict[tuple[int, str], dict[str, Band]] = defaultdict(lambda: defaultdict(Band))
    notes: list[str] = []
    for op in ops:
        certain = certainty(op)
        if certain is False or op.f not in (*REPORT_BLOCK, "cash_in", "cash_out"):
            continue
        extra = (tolerated or {}).get(op_key(op.f, op.value), 0) if op.f in REPORT_BLOCK else 0
        for _ in range(extra):
            _report_effect(op, False, out, notes, before, after, TOLERATED)
        owed = op.op_id in pending
        _report_effect(op, bool(certain) and not owed, out, notes, before, after, "", owed,
                       info_op=op.op_id if certain is None and not owed else None)
    return out, notes


#: Band keys standing for every tax / payment figure of a report: set unknown when an
#: operation's tax or payment lines are not known (which codes it moved is then unknown).
ANY_TAX, ANY_PAYMENT = "tax[*]", "payment[*]"


def _report_effect(op: Op, certain: bool, out: dict[tuple[int, str], dict[str, Band]], notes: list[str],
                   before: BusinessSnapshot, after: BusinessSnapshot, note: str, owed: bool = False,
                   info_op: str | None = None) -> None:
    """Add one application of `op` to the report bands (`note`: why it may apply again;
    `info_op`: the info operation whose whole effect this is)."""
    no, date = op.value.get("terminal_no"), _report_date(op, before, after)
    if no is None or date is None:
        notes.append(f"{op.f} {op.op_id}: no terminal or business date; its report effect is not placed")
        return
    bands = out[(int(no), date)]
    if op.f in ("cash_in", "cash_out"):
        amount = number_or_none(op.value.get("amount"))
        bands[f"{op.f}.count"].add(1, certain, owed, info_op)
        if amount is None:
            bands[f"{op.f}.amount"].unknown = "a cash movement of unknown amount"
        else:
            bands[f"{op.f}.amount"].add(amount if op.f == "cash_in" else -abs(amount), certain, owed, info_op)
        return
    block, sign = REPORT_BLOCK[op.f]
    factor = FACTOR[op.f]
    amount, quantity, tax = (number_or_none(op.value.get(k)) for k in ("amount", "quantity", "tax"))
    moved: list[tuple[str, float | None]] = [
        (f"{block}.count", sign), ("net.count", factor),
        (f"{block}.amount", None if amount is None else sign * amount),
        (f"{block}.quantity", None if quantity is None else sign * quantity),
        ("net.quantity", None if quantity is None else factor * quantity),
        ("net.amount", None if amount is None or tax is None else factor * (amount - tax))]
    taxes, payments = op.value.get("taxes"), op.value.get("payments")
    if not taxes and (tax is None or tax != 0):
        bands[ANY_TAX].unknown = f"a {op.f} whose tax lines the load never saw"
    if not payments:
        bands[ANY_PAYMENT].unknown = f"a {op.f} whose payments the load never saw"
    for t in taxes or []:
        code = str(t.get("tax_code"))
        for f in ("tax_amount", "target_amount", "target_quantity"):
            v = number_or_none(t.get(f))
            moved.append((f"tax[{code}].{f}", None if v is None else factor * v))
    for pay in payments or []:
        code = str(pay.get("payment_code"))
        v = number_or_none(pay.get("amount"))
        moved += [(f"payment[{code}].amount", None if v is None else factor * v), (f"payment[{code}].count", factor)]
    for key, value in moved:
        if value is None:
            bands[key].unknown = f"a {op.f} whose figures the load never saw"
        else:
            bands[key].add(value, certain, owed, info_op)
        if note:
            bands[key].note = note


def report_figures(report: SalesReport | None) -> dict[str, float | None]:
    """The figures of a report as flat keys (absent report: every figure 0; a figure the
    answer did not carry: None, unknown)."""
    if report is None:
        return {}
    out: dict[str, float | None] = {}
    for block in ("gross", "returns", "net", "cash_in", "cash_out"):
        fig: Figure = getattr(report, block)
        out[f"{block}.amount"], out[f"{block}.quantity"], out[f"{block}.count"] = fig.amount, fig.quantity, fig.count
    for code, t in report.taxes.items():
        for field_, value in t.items():
            out[f"tax[{code}].{field_}"] = value
    for code, p in report.payments.items():
        out[f"payment[{code}].amount"], out[f"payment[{code}].count"] = p["amount"], p["count"]
    return out


def _unnamed_lines(*figures: Mapping[str, float | None]) -> dict[str, str]:
    """"tax" / "payment" -> why every line of that kind is unknown: the report answer did not
    carry the list, or a line without its name (filed under UNNAMED), so no line can be
    attributed to its code."""
    out = {}
    for kind in ("tax", "payment"):
        if any(key.startswith(f"{kind}[{UNNAMED}]") for fig in figures for key in fig):
            out[kind] = f"the report answer's {kind} lines cannot be told apart (a list or a line's name not carried)"
    return out


def _terminal_unknown(no: int, date: str, when: str, why: Unreadable | None) -> dict[str, Any]:
    """One terminal's report could not be read: an unknown record for that terminal alone
    (contracts §9: `reason`, `part`, `terminal_no`, `business_date`, and the answer)."""
    record: dict[str, Any] = {"part": "report", "terminal_no": no, "business_date": date, "when": when}
    if why is None:
        record["reason"] = f"report: no report read {when} for terminal {no}, {date}"
    else:
        record["reason"] = f"report: terminal {no}, {date}: report unreadable {when}: {why.text()}"
        record.update(request=why.request, status=why.status, body=why.body, error=why.error)
    return record


def reason_text(item: str | Mapping[str, Any]) -> str:
    """An unknown reason as text (records carry it under `reason`)."""
    return item if isinstance(item, str) else str(item.get("reason", item))


# Quantities of cash blocks are not figures Kugelpos fills; they are not compared.
_NOT_COMPARED = {"cash_in.quantity", "cash_out.quantity"}


def judge_report(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot, p: OutcomePolicy,
                 ex: Examples, tolerated: Mapping[str, Counter[str]], pending: set[str]) -> Table:
    table = Table("report")
    expected, notes = expected_report(ops, before, after, tolerated.get("report"), pending)
    table.unknown += notes[:5]
    # Every report that was read, expected or asked for: a terminal whose report could not be
    # read after the drill is unknown even where the load moved none of its figures (nobody saw
    # that they stayed put).
    keys = (set(expected) | {(r.terminal_no, r.business_date) for r in after.reports.values()}
            | _unread_reports(after))
    for no, date in sorted(keys):
        after_r = after.report(no, date)
        before_r = before.report(no, date)
        if after_r is None:
            why = after.unreadable_report(no, date)
            table.unknown.append(_terminal_unknown(no, date, "after the drill", why))
            continue
        why = before.unreadable_report(no, date)
        if before_r is None and (before.terminal_dates.get(no, "") >= date or why is not None):
            # The terminal (may have) had that business date before the load, and we did not read it.
            table.unknown.append(_terminal_unknown(no, date, "before the load", why))
            continue
        a, b = report_figures(after_r), report_figures(before_r)
        bands = expected.get((no, date), {})
        unnamed = _unnamed_lines(a, b)
        for key in sorted((set(a) | set(bands)) - _NOT_COMPARED - {ANY_TAX, ANY_PAYMENT}):
            after_v, before_v = a.get(key, 0.0), b.get(key, 0.0)
            observed = None if after_v is None or before_v is None else after_v - before_v
            band = bands.get(key, Band())
            kind = "tax" if key.startswith("tax[") else "payment" if key.startswith("payment[") else ""
            wildcard = bands.get(ANY_TAX if kind == "tax" else ANY_PAYMENT if kind else "")
            why = wildcard.unknown if wildcard is not None else ""
            why = why or unnamed.get(kind, "")
            if why and not band.unknown:
                band = Band(band.lo, band.hi, band.full_lo, band.full_hi, why, band.note, band.info)
            verdict = table.add(f"{no}/{date}/{key}", band, observed, p.amount_tolerance)
            if verdict is False:
                ex.add("report_mismatch", {"key": f"report {no}/{date} {key}", "expected": band.text(),
                                           "observed": fmt(observed)})
    return table


def _unread_reports(after: BusinessSnapshot) -> set[tuple[int, str]]:
    """(terminal, business date) of every report the read after the drill asked for and did
    not get; a failure without its date stands for the terminal's date of that moment."""
    out = set()
    for u in after.unreadable:
        if u.part in ("report", "terminal") and u.terminal_no is not None:
            date = u.business_date or after.terminal_dates.get(u.terminal_no, "")
            if after.report(u.terminal_no, date) is None:
                out.add((u.terminal_no, date))
    return out
