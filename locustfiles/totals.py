"""What an operation amounts to, as the load saw it: the figures the outcome checker expects
report, journal and stock to show (contracts §4, `value.amount` & co), read from Kugelpos'
answers under the names Kugelpos answers them with.

The names are the real code's, and only those (cart/app/api/common/schemas.py, terminal's
schemas.py): a cart (subtotal, bill, cancel) is a `BaseCart`, a void or return a
`BaseTran` — `totalAmountWithTax`, `totalQuantity`, `taxes[{taxCode, taxAmount,
targetAmount, targetQuantity}]`, `payments[{paymentCode, paymentAmount}]`,
`lineItems[{itemCode, quantity, isCancelled}]`; an open or close answers `businessDate` and
`openCounter`. A figure the answer does not carry is recorded as unknown (None), never 0,
and its path goes into the reading's `missing` list (`payments[0].paymentAmount`), which
the load writes into the history record so the checkers name it (contracts §4).

A transaction answer's `totalAmount` is not read: Kugelpos' transform_tran fills it with the
amount *with* tax, so the amount without tax of a void or return is the original sale's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kugeldrill.ground.numbers import number_or_none


@dataclass
class Reading:
    """The figures read from one answer, and the paths of those it should have carried but did not."""

    figures: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class _Fields:
    """Reads named fields of one JSON object, noting the absent ones under `prefix`."""

    def __init__(self, obj: Any, prefix: str, missing: list[str]) -> None:
        self.obj = obj if isinstance(obj, Mapping) else {}
        self.prefix = prefix
        self.missing = missing

    def _get(self, name: str) -> Any:
        value = self.obj.get(name)
        if value is None:
            self.missing.append(self.prefix + name)
        return value

    def number(self, name: str) -> float | None:
        value = number_or_none(self._get(name))
        if value is None and self.prefix + name not in self.missing:
            self.missing.append(self.prefix + name)  # present but not a number: as unknown as absent
        return value

    def text(self, name: str) -> str | None:
        value = self._get(name)
        return None if value is None else str(value)

    def flag(self, name: str) -> bool | None:
        value = self._get(name)
        return None if value is None else bool(value)

    def entries(self, name: str) -> list["_Fields"] | None:
        """The objects of list field `name` (None, and noted, when the list is absent)."""
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            self.missing.append(self.prefix + name)
            return None
        return [_Fields(v, f"{self.prefix}{name}[{i}].", self.missing) for i, v in enumerate(value)]


def record(value: dict[str, Any], reading: Reading) -> None:
    """Put a reading into an operation's history value: its figures replace the earlier ones
    (an answer's figures are the latest word), and `missing` names what this answer lacked."""
    value.update(reading.figures)
    if reading.missing:
        value["missing"] = list(reading.missing)
    else:
        value.pop("missing", None)


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))


def read_sale(answer: Any, *, cart: bool = True, numbered: bool = True) -> Reading:
    """The figures of a cart answer (`cart`: subtotal, bill, cancel) or of a transaction answer
    (void, return). `numbered`: the answer must carry its `transactionNo` (not a subtotal's)."""
    reading = Reading()
    f = _Fields(answer, "", reading.missing)
    out = reading.figures
    if numbered:
        out["transaction_no"] = f.number("transactionNo")
        if out["transaction_no"] is not None:
            out["transaction_no"] = int(out["transaction_no"])
    out["amount"] = f.number("totalAmountWithTax")
    if cart:
        out["amount_without_tax"] = f.number("totalAmount")
    out["quantity"] = f.number("totalQuantity")
    taxes = f.entries("taxes")
    if taxes is None:
        out["taxes"], out["tax"] = None, None
    else:
        out["taxes"] = [{"tax_code": t.text("taxCode"), "tax_amount": t.number("taxAmount"),
                         "target_amount": t.number("targetAmount"), "target_quantity": t.number("targetQuantity")}
                        for t in taxes]
        out["tax"] = _sum([t["tax_amount"] for t in out["taxes"]])
    payments = f.entries("payments")
    out["payments"] = None if payments is None else [
        {"payment_code": p.text("paymentCode"), "amount": p.number("paymentAmount")} for p in payments]
    lines = f.entries("lineItems")
    if lines is None:
        out["items"] = None
    else:
        items = []
        for li in lines:
            code, quantity, cancelled = li.text("itemCode"), li.number("quantity"), li.flag("isCancelled")
            if not cancelled:
                items.append({"item_code": code, "quantity": quantity})
        out["items"] = items
    return reading


def read_period(answer: Any) -> Reading:
    """An open or close answer's business date and open counter (the open/close log's key)."""
    reading = Reading()
    f = _Fields(answer, "", reading.missing)
    date = f.text("businessDate")
    counter = f.number("openCounter")
    reading.figures = {"business_date": date, "open_counter": None if counter is None else int(counter)}
    return reading
