"""Which figures each load record must carry, and which ones a record lacks.

The outcome checker computes what report, journal and stock must show from the figures the
load recorded (docs/contracts.md §4). A record that lacks one — an `ok` sale with no amount,
a payment without its amount, an answer the load could not read under Kugelpos' names —
would otherwise turn into a silent 0 (a false alarm) or a figure nobody compares (a blind
spot). Such a record is a loud, named problem: the figures it moves are unknown, and the
verdict names the operation and the figure.

Two sources: a figure that is absent or None in `value`, and the load's own `missing` list
(`value["missing"]`: the paths, in Kugelpos' names, of figures an answer did not carry,
written by the load for every kind of operation). `as_seen` gives the checkers an operation
with the figures those paths feed blanked (None), so each one's comparisons are unknown
whatever value the record happens to hold (an item line whose `isCancelled` the answer did
not carry was counted as sold; a tax line without its code was filed under "None").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kugeldrill.checkers.model import Op
from kugeldrill.ground.numbers import number_or_none

_TRANSACTION = ("amount", "tax", "quantity", "taxes", "payments", "items")
#: Figures an operation of each kind must carry once its outcome is known (`ok`); an `info`
#: one must carry those it knew before the effecting call (a sale's subtotal) — all but
#: its transaction number.
REQUIRED: dict[str, tuple[str, ...]] = {
    "sale": ("transaction_no", *_TRANSACTION),
    "void": ("transaction_no", *_TRANSACTION),
    "return": ("transaction_no", *_TRANSACTION),
    "cancel": ("transaction_no",),
    "cash_in": ("amount",),
    "cash_out": ("amount",),
}
_NESTED = {"taxes": ("tax_amount", "target_amount", "target_quantity"), "payments": ("amount",),
           "items": ("quantity",)}


@dataclass(slots=True)
class LoadRecordProblem:
    """An operation whose record lacks figures it should carry."""

    op_id: str
    f: str
    outcome: str
    missing: list[str]
    terminal_no: Any = None
    transaction_no: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op_id, "f": self.f, "outcome": self.outcome, "missing": self.missing,
                "terminal_no": self.terminal_no, "transaction_no": self.transaction_no}


def missing_figures(op: Op) -> list[str]:
    """The figures `op` should carry and does not (empty: complete, or a `fail` that moves nothing)."""
    return lacking(op.f, op.outcome, op.value)


def lacking(f: str, outcome: str | None, value: dict[str, Any]) -> list[str]:
    """`missing_figures` of an operation given by its kind, outcome and value."""
    if outcome == "fail":
        return []
    if f not in REQUIRED:  # open, close: only the load's own note (businessDate, openCounter)
        return [str(name) for name in value.get("missing") or []]
    wanted = REQUIRED[f] if outcome == "ok" else tuple(k for k in REQUIRED[f] if k != "transaction_no")
    out: list[str] = []
    for name in wanted:
        item = value.get(name)
        if name in _NESTED:
            if not isinstance(item, list) or not item:
                if name == "taxes" and number_or_none(value.get("tax")) == 0:
                    continue  # an untaxed transaction may carry no tax lines
                out.append(name)
                continue
            for i, entry in enumerate(item):
                for sub in _NESTED[name]:
                    if not isinstance(entry, dict) or number_or_none(entry.get(sub)) is None:
                        out.append(f"{name}[{i}].{sub}")
        elif name == "transaction_no" and item is None:
            out.append(name)
        elif name != "transaction_no" and number_or_none(item) is None:
            out.append(name)
    for name in value.get("missing") or []:
        if str(name) not in out:
            out.append(str(name))
    return out


#: Which record fields an answer's path feeds (its first segment, Kugelpos' names; locustfiles/totals.py).
_FEEDS: dict[str, tuple[str, ...]] = {
    "transactionNo": ("transaction_no",), "totalAmountWithTax": ("amount",), "totalAmount": ("amount_without_tax",),
    "totalQuantity": ("quantity",), "taxes": ("taxes",), "payments": ("payments",), "lineItems": ("items",),
    "businessDate": ("business_date",), "openCounter": ("open_counter",)}
#: A path the load names that feeds no known field: every figure of the operation is unknown.
_EVERY_FIGURE = ("amount", "amount_without_tax", "tax", "quantity", "taxes", "payments", "items")


def _fed_by(path: str) -> tuple[str, ...]:
    head = path.split("[", 1)[0].split(".", 1)[0]
    fields = _FEEDS.get(head, _EVERY_FIGURE)
    if head == "taxes" and (path == "taxes" or path.endswith(".taxAmount")):
        fields = (*fields, "tax")  # the tax sum is made of the lines' amounts
    return fields


def as_seen(op: Op) -> Op:
    """`op` with every figure the load's `missing` paths feed set to None (unknown, never a
    guess); the operation itself when it names none."""
    paths = [str(p) for p in op.value.get("missing") or []]
    if not paths or op.outcome == "fail":
        return op
    value = dict(op.value)
    for path in paths:
        for name in _fed_by(path):
            value[name] = None
    return replace(op, value=value)


def load_record_problems(ops: list[Op]) -> list[LoadRecordProblem]:
    """Every operation whose record lacks a figure it should carry, in history order."""
    out = []
    for op in ops:
        lacking = missing_figures(op)
        if lacking:
            out.append(LoadRecordProblem(op.op_id, op.f, op.outcome or "info", lacking,
                                         op.value.get("terminal_no"), op.value.get("transaction_no")))
    return out


def describe(problems: list[LoadRecordProblem]) -> str:
    """One line naming the problem: how many records, which figures, the first operation."""
    figures: dict[str, int] = {}
    for p in problems:
        for name in p.missing:
            base = name.split("[", 1)[0]
            figures[base] = figures.get(base, 0) + 1
    first = problems[0]
    named = ", ".join(f"{k} ({v})" for k, v in sorted(figures.items()))
    return (f"{len(problems)} load record(s) lack figures they should carry: {named}; e.g. {first.outcome} "
            f"{first.f} {first.op_id} lacks {', '.join(first.missing[:4])}")
