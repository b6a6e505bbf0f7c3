"""The stand-in's answer transformers give the real Kugelpos answers' shapes, without a
running service: each builds its answer from the documents the stand-in stores, and its
field paths and types must be those of the real answer recorded in
tests/fixtures/kugelpos/api (the `data` of the envelope). The whole routes, envelope
included, are compared by tests/integration/test_api_shapes.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from apishape import FIXTURES, shape, types_text
from kugeldrill.stack.services.cart import calc
from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.cart.schemas import BaseCartCreateResponse, cart_answer, tran_answer
from kugeldrill.stack.services.journal.schemas import journal_answer
from kugeldrill.stack.services.master_data.schemas import master_answer
from kugeldrill.stack.services.report.app import compute_sales
from kugeldrill.stack.services.report.schemas import report_answer
from kugeldrill.stack.services.terminal import model
from kugeldrill.stack.services.terminal.schemas import cash_answer, close_answer, open_answer, terminal_answer

NOW = "2026-12-07T12:46:29.198136+09:00"
CTX = {"tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "terminal_id": "T1-5678-1", "status": "Opened",
       "business_date": "20261207", "open_counter": 1, "business_counter": 1, "staff_id": "staff001",
       "staff_name": "Staff"}
ITEM = {"item_code": "ITEM000", "description": "Item 0", "unit_price": 100.0, "category_code": "CAT00",
        "tax_code": "01", "image_urls": [], "is_discount_restricted": False}
CASH = {"description": "Cash", "is_active": True, "can_deposit_over": True}


def real_data_shape(name: str) -> dict[str, set[str]]:
    """The recorded real answer's shape, the `data` part only."""
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return {p: set(t.split("|")) for p, t in doc["shape"].items() if p == "data" or p.startswith(("data.", "data[]"))}


def answer_shape(answer: Any) -> dict[str, set[str]]:
    body = answer.model_dump(by_alias=True, mode="json") if isinstance(answer, BaseModel) else answer
    return shape(body, "data")


def differences(real: dict[str, set[str]], ours: dict[str, set[str]]) -> list[str]:
    """Paths one side lacks, and types of ours the real answers never had (one answer of ours
    shows one of the types the real ones showed: `initialAmount` null or a number)."""
    return [f"{p}: real {types_text(real.get(p)) or 'absent'}, stand-in {types_text(ours.get(p)) or 'absent'}"
            for p in sorted(set(real) | set(ours)) if p not in real or p not in ours or not ours[p] <= real[p]]


def _cart(*, paid: bool) -> dict[str, Any]:
    cart = calc.new_cart("c1", CTX, "Store 5678", 101, "u1", "User", NOW)
    calc.add_line(cart, ITEM, 2, None)
    calc.recalc(cart)
    cart["cart_status"] = calc.PAYING
    if paid:
        calc.add_payment(cart, "01", 1000, CASH, None)
    return cart


def _billed(cancel: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    cart = _cart(paid=not cancel)
    tran = tl.from_cart(cart, transaction_no=1, receipt_no=111111, is_cancelled=cancel, now=NOW, event_id="e1")
    cart.update(transaction_no=1, receipt_no=111111, receipt_text=tran["receipt_text"],
                journal_text=tran["journal_text"], cart_status=calc.CANCELLED if cancel else calc.COMPLETED)
    return cart, tran


def _terminal(status: str = "Opened") -> dict[str, Any]:
    return {"terminal_id": "T1-5678-1", "tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "description": "t",
            "function_mode": "MainMenu", "status": status, "business_date": "20261207", "open_counter": 1,
            "business_counter": 1, "initial_amount": 500000.0, "physical_amount": None,
            "staff": {"id": "staff001", "name": "Staff", "pin": "1234"}, "api_key": "k", "created_at": NOW,
            "updated_at": NOW}


def _report() -> dict[str, Any]:
    _, tran = _billed()
    row = {"is_cancelled": 0, "transaction_type": 101, "data": json.dumps(tran),
           "total_amount_with_tax": tran["sales"]["total_amount_with_tax"],
           "total_quantity": tran["sales"]["total_quantity"], "total_discount_amount": 0.0}
    data = {"tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "business_date": "20261207",
            "open_counter": None, "business_counter": None, **compute_sales([row], [{"amount": 500000.0}])}
    return report_answer("flash", data).model_dump(by_alias=True, mode="json")


def _journal_entry() -> dict[str, Any]:
    row = {"tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "transaction_no": None, "transaction_type": 401,
           "business_date": "20261207", "open_counter": 1, "business_counter": 1, "generate_date_time": NOW,
           "receipt_no": None, "amount": 500000.0, "quantity": 0.0, "staff_id": "staff001", "user_id": None,
           "journal_text": "j", "receipt_text": "r"}
    return journal_answer(row).model_dump(by_alias=True, mode="json")


CASES = {
    "sale-post-cart-api-v1-carts-201": lambda: BaseCartCreateResponse(cart_id="c1"),
    "sale-post-cart-api-v1-carts-cart-id-subtotal-200": lambda: cart_answer(_cart(paid=False)),
    "sale-post-cart-api-v1-carts-cart-id-payments-200": lambda: cart_answer(_cart(paid=True)),
    "sale-post-cart-api-v1-carts-cart-id-bill-200": lambda: cart_answer(_billed()[0]),
    "cancel-post-cart-api-v1-carts-cart-id-cancel-200": lambda: cart_answer(_billed(cancel=True)[0]),
    "void-post-cart-api-v1-tenants-tenant-id-stores-store-code-terminals-n-transactions-n-void-200": lambda: tran_answer(
        tl.reversal(_billed()[1], CTX, transaction_type=tl.VOID_SALES, transaction_no=2, receipt_no=111112,
                    payments=[{"payment_code": "01", "amount": 220.0, "description": "Cash"}], now=NOW, event_id="e2")),
    "business-get-terminal-api-v1-terminals-terminal-id-200": lambda: terminal_answer(_terminal()),
    "provision-post-terminal-api-v1-terminals-terminal-id-open-200": lambda: open_answer(
        _terminal(), model.open_close_log(_terminal(), "Store", NOW, "e3", "open")),
    "openclose-post-terminal-api-v1-terminals-terminal-id-close-200": lambda: close_answer(
        {**_terminal("Closed"), "initial_amount": None}, model.open_close_log(_terminal("Closed"), "Store", NOW, "e4", "close")),
    "cash-post-terminal-api-v1-terminals-terminal-id-cash-in-200": lambda: cash_answer(
        "T1-5678-1", model.cash_log(_terminal(), "Store", NOW, "e5", 1234.0, "kd")),
    "provision-post-master-data-api-v1-tenants-tenant-id-items-201": lambda: master_answer(
        "items", {**ITEM, "unit_cost": 50.0, "item_details": [], "created_at": NOW, "updated_at": None}),
    "provision-post-master-data-api-v1-tenants-tenant-id-payments-201": lambda: master_answer(
        "payments", {"payment_code": "01", "description": "Cash", "limit_amount": 0.0, "can_refund": True,
                     "can_deposit_over": True, "can_change": True, "is_active": True, "created_at": NOW,
                     "updated_at": None}),
    "provision-post-master-data-api-v1-tenants-tenant-id-staff-201": lambda: master_answer(
        "staff", {"id": "staff001", "name": "Staff", "pin": "1234", "roles": ["staff"], "created_at": NOW,
                  "updated_at": None}),
    "business-get-report-api-v1-tenants-tenant-id-stores-store-code-terminals-n-reports-200": _report,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_answer_has_the_real_shape(name: str) -> None:
    assert not differences(real_data_shape(name), answer_shape(CASES[name]())), name


def test_a_journal_entry_has_the_real_shape() -> None:
    real = real_data_shape("business-get-journal-api-v1-tenants-tenant-id-stores-store-code-journals-200")
    entry = {p.replace("data[]", "data", 1): t for p, t in real.items() if p.startswith("data[]")}
    assert not differences(entry, shape(_journal_entry(), "data"))


def test_a_field_the_real_answer_lacks_is_a_difference() -> None:
    """The comparison itself: an extra field, or a payment amount under another name, is caught."""
    bill = cart_answer(_billed()[0]).model_dump(by_alias=True, mode="json")
    bill["payments"][0]["amount"] = bill["payments"][0].pop("paymentAmount")
    found = differences(real_data_shape("sale-post-cart-api-v1-carts-cart-id-bill-200"), shape(bill, "data"))
    assert found == ["data.payments[].amount: real absent, stand-in number",
                     "data.payments[].paymentAmount: real number, stand-in absent"]
