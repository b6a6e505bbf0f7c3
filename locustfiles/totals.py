"""What a transaction amounts to, as the load saw it: the figures the outcome checker expects
report, journal and stock to show (contracts §4, `value.totals` & co).

Read from Kugelpos' answers: a cart (subtotal or bill: flat `totalAmountWithTax`, `taxes`,
`payments`, `lineItems`) or a transaction (void/return: nested `sales{...}`). Both spellings
(lowerCamelCase answers, snake_case payloads) are accepted. A sale's figures are known from
its subtotal before the effecting bill, so an `info` sale still says what it would have moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kugeldrill.ground.numbers import number_or_none


def _pick(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def totals_of(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    """{amount, amount_without_tax, tax, quantity, taxes, payments, items} of a cart or
    transaction answer; keys the answer does not carry are left out."""
    if not isinstance(answer, Mapping):
        return {}
    sales = answer.get("sales") if isinstance(answer.get("sales"), Mapping) else answer
    out: dict[str, Any] = {}
    for key, names in (("amount", ("totalAmountWithTax", "total_amount_with_tax")),
                       ("amount_without_tax", ("totalAmount", "total_amount")),
                       ("quantity", ("totalQuantity", "total_quantity"))):
        value = number_or_none(_pick(sales, *names))
        if value is not None:
            out[key] = value
    taxes = []
    for t in answer.get("taxes") or []:
        if isinstance(t, Mapping):
            taxes.append({"tax_code": str(_pick(t, "taxCode", "tax_code")),
                          "tax_amount": number_or_none(_pick(t, "taxAmount", "tax_amount")) or 0.0,
                          "target_amount": number_or_none(_pick(t, "targetAmount", "target_amount")) or 0.0,
                          "target_quantity": number_or_none(_pick(t, "targetQuantity", "target_quantity")) or 0.0})
    if taxes:
        out["taxes"] = taxes
        out["tax"] = sum(t["tax_amount"] for t in taxes)
    else:
        tax = number_or_none(_pick(sales, "taxAmount", "tax_amount"))
        if tax is not None:
            out["tax"] = tax
    payments = [{"payment_code": str(_pick(p, "paymentCode", "payment_code")),
                 # Kugelpos' cart answers `paymentAmount` (BaseTranPayment.payment_amount); the stand-in `amount`
                 "amount": number_or_none(_pick(p, "paymentAmount", "payment_amount", "amount")) or 0.0}
                for p in answer.get("payments") or [] if isinstance(p, Mapping)]
    if payments:
        out["payments"] = payments
    items = [{"item_code": str(_pick(li, "itemCode", "item_code")), "quantity": number_or_none(_pick(li, "quantity")) or 0.0}
             for li in answer.get("lineItems") or answer.get("line_items") or []
             if isinstance(li, Mapping) and not _pick(li, "isCancelled", "is_cancelled")]
    if items:
        out["items"] = items
    return out
