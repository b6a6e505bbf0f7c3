"""The cart's state machine and arithmetic (docs/kugelpos-facts.md §3.1), free of I/O so it is unit-testable.

States Initial → Idle → EnteringItem → Paying → Completed/Cancelled; an event not
allowed in the current state is Kugelpos' EventBadSequenceException (HTTP 400).
Amounts follow Kugelpos' model: line amount = unit price × quantity − line discounts;
subtotal discounts are spread over the lines in proportion (for the tax base); external
tax is added on top, internal tax is contained; cash (01) gives change, cashless (11)
and others (12) must not exceed the balance.
"""

from __future__ import annotations

import math
from typing import Any

from kugeldrill.stack.services.common.envelope import ApiError
from kugeldrill.stack.services.common.tax import tax_amount, tax_of

IDLE, ENTERING, PAYING, COMPLETED, CANCELLED = "Idle", "EnteringItem", "Paying", "Completed", "Cancelled"

ALLOWED: dict[str, set[str]] = {
    "add_item": {IDLE, ENTERING},
    "cancel_line": {ENTERING},
    "update_quantity": {ENTERING},
    "update_unit_price": {ENTERING},
    "line_discount": {ENTERING},
    "subtotal": {ENTERING},
    "cart_discount": {PAYING},
    "add_payment": {ENTERING, PAYING},
    "resume_item_entry": {PAYING},
    "bill": {PAYING},
    "cancel": {IDLE, ENTERING, PAYING},
}

PAYMENT_PLUGINS = {"01": "cash", "11": "cashless", "12": "others"}


class BadSequence(ApiError):
    def __init__(self, event: str, state: str) -> None:
        super().__init__(400, f"Event {event} is not allowed in cart status {state}", service="cart", detail_code="10")


def require(cart: dict[str, Any], event: str) -> None:
    if cart["cart_status"] not in ALLOWED[event]:
        raise BadSequence(event, cart["cart_status"])


def new_cart(cart_id: str, ctx: dict[str, Any], store_name: str, transaction_type: int,
             user_id: str | None, user_name: str | None, now: str) -> dict[str, Any]:
    cart = {
        "cart_id": cart_id, "cart_status": IDLE, "tenant_id": ctx["tenant_id"], "store_code": ctx["store_code"],
        "store_name": store_name, "terminal_no": ctx["terminal_no"], "terminal_id": ctx.get("terminal_id"),
        "transaction_type": transaction_type, "business_date": ctx.get("business_date"),
        "open_counter": ctx.get("open_counter"), "business_counter": ctx.get("business_counter"),
        "generate_date_time": now, "user": {"id": user_id, "name": user_name},
        "staff": {"id": ctx.get("staff_id"), "name": ctx.get("staff_name")},
        "line_items": [], "payments": [], "taxes": [], "subtotal_discounts": [],
        "receipt_no": None, "transaction_no": None, "receipt_text": None, "journal_text": None,
        "status": {"is_cancelled": False, "is_voided": False, "is_refunded": False},
        "created_at": now, "updated_at": now,
    }
    recalc(cart)
    return cart


def add_line(cart: dict[str, Any], item: dict[str, Any], quantity: int, unit_price: float | None) -> None:
    if quantity <= 0:
        raise ApiError(400, f"quantity must be positive, got {quantity}", service="cart")
    price = float(unit_price if unit_price is not None else item.get("unit_price", 0.0))
    original = float(item.get("unit_price", price))
    cart["line_items"].append({
        "line_no": len(cart["line_items"]) + 1, "item_code": item["item_code"],
        "category_code": item.get("category_code", ""), "description": item.get("description", ""),
        "description_short": item.get("description_short", ""), "unit_price": price,
        "unit_price_original": original, "is_unit_price_changed": price != original, "quantity": quantity,
        "discounts": [], "discounts_allocated": [], "amount": 0.0, "tax_code": item.get("tax_code", "01"),
        "is_cancelled": False, "is_discount_restricted": bool(item.get("is_discount_restricted", False)),
        "image_urls": list(item.get("image_urls") or []),
    })
    cart["cart_status"] = ENTERING


def line(cart: dict[str, Any], line_no: int) -> dict[str, Any]:
    for li in cart["line_items"]:
        if li["line_no"] == line_no:
            if li["is_cancelled"]:
                raise ApiError(400, f"line {line_no} is cancelled", service="cart")
            return li
    raise ApiError(404, f"line {line_no} not found in cart {cart['cart_id']}", service="cart")


def discount(seq_no: int, kind: str, value: float, amount: float, detail: str | None) -> dict[str, Any]:
    """One line or subtotal discount as the cart stores it."""
    return {"seq_no": seq_no, "discount_type": kind, "discount_value": value, "discount_amount": amount,
            "discount_detail": detail}


def discount_value(kind: str, value: float, base: float) -> float:
    if value < 0:
        raise ApiError(400, f"discount_value must not be negative, got {value}", service="cart")
    if kind == "DiscountAmount":
        return float(value)
    if kind == "DiscountPercentage":
        return float(math.floor(base * value / 100 + 1e-9))
    raise ApiError(400, f"discount_type must be DiscountAmount or DiscountPercentage, got {kind!r}", service="cart")


def recalc(cart: dict[str, Any]) -> None:
    """Recompute every derived amount from lines, discounts and payments."""
    live = [li for li in cart["line_items"] if not li["is_cancelled"]]
    line_discount_total = 0.0
    for li in live:
        gross = li["unit_price"] * li["quantity"]
        disc = sum(d["discount_amount"] for d in li["discounts"])
        li["amount"] = gross - disc
        line_discount_total += disc
    subtotal = sum(li["amount"] for li in live)
    sub_disc = sum(d["discount_amount"] for d in cart["subtotal_discounts"])
    sub_disc = min(sub_disc, subtotal)
    # Spread subtotal discounts over lines (largest remainder on the last line) for the tax base.
    remaining = sub_disc
    for i, li in enumerate(live):
        share = remaining if i == len(live) - 1 else (math.floor(sub_disc * li["amount"] / subtotal) if subtotal else 0.0)
        remaining -= share
        li["discounts_allocated"] = [{"discount_amount": float(share)}] if share else []
    total = subtotal - sub_disc
    by_code: dict[str, dict[str, float]] = {}
    for li in live:
        net = li["amount"] - sum(d["discount_amount"] for d in li["discounts_allocated"])
        entry = by_code.setdefault(li["tax_code"], {"target_amount": 0.0, "target_quantity": 0})
        entry["target_amount"] += net
        entry["target_quantity"] += li["quantity"]
    taxes, external, tax_total = [], 0.0, 0.0
    for no, (code, entry) in enumerate(sorted(by_code.items()), start=1):
        master = tax_of(code) or {"tax_type": "Exempt", "tax_name": code}
        amount = tax_amount(code, entry["target_amount"])
        taxes.append({"tax_no": no, "tax_code": code, "tax_type": master["tax_type"], "tax_name": master["tax_name"],
                      "tax_amount": amount, "target_amount": entry["target_amount"],
                      "target_quantity": entry["target_quantity"]})
        tax_total += amount
        if master["tax_type"] == "External":
            external += amount
    paid = sum(p["amount"] for p in cart["payments"])
    cart.update({
        "subtotal_amount": float(subtotal), "total_amount": float(total),
        "total_amount_with_tax": float(total + external), "tax_amount": float(tax_total), "taxes": taxes,
        "total_quantity": sum(li["quantity"] for li in live),
        "total_discount_amount": float(line_discount_total + sub_disc),
        "deposit_amount": float(sum(p["deposit_amount"] for p in cart["payments"])),
        "change_amount": float(sum(p["deposit_amount"] - p["amount"] for p in cart["payments"])),
        "balance_amount": float(total + external - paid), "stamp_duty_amount": 0.0,
    })


def add_payment(cart: dict[str, Any], code: str, amount: float, master: dict[str, Any], detail: Any) -> None:
    """Apply one payment (Kugelpos' plugins 01/11/12)."""
    if code not in PAYMENT_PLUGINS:
        raise ApiError(400, f"payment code {code!r} has no payment plugin (supported: 01 cash, 11 cashless, 12 others)",
                       service="cart")
    if not master.get("is_active", True):
        raise ApiError(400, f"payment {code} is not active", service="cart")
    if amount <= 0:
        raise ApiError(400, f"payment amount must be positive, got {amount}", service="cart")
    balance = cart["balance_amount"]
    if balance <= 0:
        raise ApiError(406, f"balance is already {balance:.0f}; no further payment is accepted", service="cart",
                       detail_code="20")
    if amount > balance and PAYMENT_PLUGINS[code] != "cash" and not master.get("can_deposit_over", False):
        raise ApiError(406, f"payment {code} of {amount:.0f} exceeds the balance {balance:.0f} (deposit over not allowed)",
                       service="cart", detail_code="21")
    paid = min(float(amount), balance)
    cart["payments"].append({
        "payment_no": len(cart["payments"]) + 1, "payment_code": code, "deposit_amount": float(amount),
        "amount": paid, "description": master.get("description", ""), "detail": detail,
    })
    cart["cart_status"] = PAYING
    recalc(cart)
