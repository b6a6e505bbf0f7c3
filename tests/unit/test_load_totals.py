"""The load reads every figure under the real Kugelpos names, and a figure an answer lacks is
unknown (None) and named in `missing`, never 0. The answers are the real code's, recorded in
tests/fixtures/kugelpos/api (by tests/integration/test_api_differential.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kugeldrill.locustfiles.totals import read_period, read_sale, record

API = Path(__file__).resolve().parents[1] / "fixtures" / "kugelpos" / "api"


def answer(name: str) -> dict[str, Any]:
    """The `data` of a recorded real answer."""
    return json.loads((API / f"{name}.json").read_text(encoding="utf-8"))["example"]["data"]


BILL = "sale-post-cart-api-v1-carts-cart-id-bill-200"
VOID = "void-post-cart-api-v1-tenants-tenant-id-stores-store-code-terminals-n-transactions-n-void-200"
OPEN = "provision-post-terminal-api-v1-terminals-terminal-id-open-200"


def test_a_real_bill_gives_every_figure() -> None:
    bill = answer(BILL)
    reading = read_sale(bill)
    assert reading.missing == []
    f = reading.figures
    assert f["transaction_no"] == bill["transactionNo"] and f["amount"] == bill["totalAmountWithTax"]
    assert f["amount_without_tax"] == bill["totalAmount"] and f["quantity"] == bill["totalQuantity"]
    assert f["payments"] == [{"payment_code": p["paymentCode"], "amount": p["paymentAmount"]} for p in bill["payments"]]
    assert f["tax"] == sum(t["taxAmount"] for t in bill["taxes"]) and f["taxes"][0]["tax_code"] == "01"
    assert f["items"] == [{"item_code": li["itemCode"], "quantity": li["quantity"]} for li in bill["lineItems"]]


def test_a_figure_under_another_name_is_unknown_and_named() -> None:
    bill = copy.deepcopy(answer(BILL))
    pay = bill["payments"][0]
    pay["amount"] = pay.pop("paymentAmount")  # the name the stand-in once answered
    reading = read_sale(bill)
    assert reading.figures["payments"][0]["amount"] is None
    assert reading.missing == ["payments[0].paymentAmount"]


def test_missing_taxes_make_the_tax_unknown_not_zero() -> None:
    bill = copy.deepcopy(answer(BILL))
    del bill["taxes"]
    bill["totalQuantity"] = None
    reading = read_sale(bill)
    assert reading.figures["tax"] is None and reading.figures["taxes"] is None and reading.figures["quantity"] is None
    assert reading.missing == ["totalQuantity", "taxes"]


def test_a_transaction_answer_keeps_the_original_amount_without_tax() -> None:
    """Kugelpos' transform_tran answers `totalAmount` with tax: it is not read as the amount without tax."""
    void = answer(VOID)
    assert void["totalAmount"] == void["totalAmountWithTax"]
    reading = read_sale(void, cart=False)
    assert "amount_without_tax" not in reading.figures and reading.missing == []
    value = {"amount_without_tax": 102.0}
    record(value, reading)
    assert value["amount_without_tax"] == 102.0 and value["amount"] == void["totalAmountWithTax"]


def test_an_open_answer_gives_its_period_and_a_bare_one_names_what_it_lacks() -> None:
    opened = answer(OPEN)
    reading = read_period(opened)
    assert reading.figures == {"business_date": opened["businessDate"], "open_counter": opened["openCounter"]}
    assert read_period({}).missing == ["businessDate", "openCounter"]


def test_record_replaces_figures_and_clears_a_stale_missing_list() -> None:
    value: dict[str, Any] = {"amount": 1.0}
    record(value, read_sale({}, numbered=False))
    assert value["amount"] is None and "totalAmountWithTax" in value["missing"]
    record(value, read_sale(answer(BILL)))
    assert value["amount"] == answer(BILL)["totalAmountWithTax"] and "missing" not in value
