"""Cart arithmetic and state machine (no I/O)."""

from __future__ import annotations

import pytest

from kugeldrill.stack.services.cart import calc
from kugeldrill.stack.services.common.envelope import ApiError

CTX = {"tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "terminal_id": "T1-5678-1",
       "business_date": "20260101", "open_counter": 1, "business_counter": 1, "staff_id": "s1", "staff_name": "S"}


def item(code: str, price: float, tax: str = "01") -> dict:
    return {"item_code": code, "unit_price": price, "tax_code": tax, "description": code}


def cart() -> dict:
    return calc.new_cart("c1", CTX, "Store", 101, None, None, "2026-01-01T10:00:00+09:00")


def test_external_and_internal_tax() -> None:
    c = cart()
    calc.add_line(c, item("A", 105), 2, None)          # 210, external 10% → 21
    calc.add_line(c, item("B", 108, "12"), 1, None)    # 108 incl. 8% → 8 contained
    calc.recalc(c)
    assert c["total_amount"] == 318 and c["total_amount_with_tax"] == 339 and c["tax_amount"] == 29
    assert c["balance_amount"] == 339 and c["total_quantity"] == 3 and c["cart_status"] == calc.ENTERING


def test_cash_gives_change_and_cashless_cannot_exceed_balance() -> None:
    c = cart()
    calc.add_line(c, item("A", 100), 1, None)
    calc.recalc(c)
    with pytest.raises(ApiError) as err:
        calc.add_payment(c, "11", 200, {"can_deposit_over": False}, None)
    assert err.value.status_code == 406
    calc.add_payment(c, "01", 1000, {"description": "Cash"}, None)
    assert c["change_amount"] == 890 and c["balance_amount"] == 0 and c["deposit_amount"] == 1000
    with pytest.raises(ApiError) as err:
        calc.add_payment(c, "01", 10, {}, None)
    assert err.value.status_code == 406  # balance already zero


def test_split_payment_and_unknown_code() -> None:
    c = cart()
    calc.add_line(c, item("A", 100), 3, None)  # 330
    calc.recalc(c)
    calc.add_payment(c, "11", 100, {}, None)
    assert c["balance_amount"] == 230 and c["cart_status"] == calc.PAYING
    with pytest.raises(ApiError, match="no payment plugin"):
        calc.add_payment(c, "99", 10, {}, None)


def test_discounts() -> None:
    c = cart()
    calc.add_line(c, item("A", 100), 2, None)
    c["line_items"][0]["discounts"].append({"discount_amount": calc.discount_value("DiscountPercentage", 10, 200)})
    c["subtotal_discounts"].append({"discount_amount": calc.discount_value("DiscountAmount", 30, 0)})
    calc.recalc(c)
    assert c["subtotal_amount"] == 180 and c["total_amount"] == 150 and c["total_amount_with_tax"] == 165
    assert c["total_discount_amount"] == 50
    with pytest.raises(ApiError, match="discount_type"):
        calc.discount_value("Free", 1, 1)


@pytest.mark.parametrize("state, event", [
    (calc.IDLE, "subtotal"), (calc.IDLE, "bill"), (calc.ENTERING, "bill"), (calc.PAYING, "add_item"),
    (calc.COMPLETED, "cancel"), (calc.CANCELLED, "add_payment"),
])
def test_bad_sequences_are_400(state: str, event: str) -> None:
    c = cart()
    c["cart_status"] = state
    with pytest.raises(ApiError) as err:
        calc.require(c, event)
    assert err.value.status_code == 400 and state in err.value.message


def test_allowed_sequence() -> None:
    c = cart()
    for state, event in ((calc.IDLE, "add_item"), (calc.ENTERING, "subtotal"), (calc.PAYING, "bill"),
                         (calc.PAYING, "cancel"), (calc.IDLE, "cancel")):
        c["cart_status"] = state
        calc.require(c, event)
