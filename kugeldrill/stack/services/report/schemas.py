"""What report answers: Kugelpos' sales report schema (report/app/api/common/schemas.py:
BaseSalesReportResponse), field for field.

Kugelpos names a report's taxes and payments but gives no codes (`taxes[{taxName, ...}]`,
`payments[{paymentName, amount, count}]`); the stand-in's aggregation keeps the codes to
sort by, and this model leaves them out, as a client of the real service never sees them.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.envelope import AnswerModel


class SalesReportTemplate(AnswerModel):
    amount: float
    quantity: int
    count: int


class TaxReportTemplate(AnswerModel):
    tax_name: str
    tax_amount: float
    target_amount: float
    target_quantity: int


class PaymentReportTemplate(AnswerModel):
    payment_name: str
    amount: float
    count: int


class CashInOutReportTemplate(AnswerModel):
    amount: float
    count: int


class CashBalanceReportTemplate(AnswerModel):
    logical_amount: float
    physical_amount: float | None = None
    difference_amount: float | None = None
    cash_in: CashInOutReportTemplate
    cash_out: CashInOutReportTemplate


class BaseSalesReportResponse(AnswerModel):
    tenant_id: str
    store_code: str
    terminal_no: int | None = None
    business_date: str | None = None
    business_date_from: str | None = None
    business_date_to: str | None = None
    open_counter: int | None = None
    business_counter: int | None = None
    sales_gross: SalesReportTemplate
    sales_net: SalesReportTemplate
    discount_for_lineitems: SalesReportTemplate
    discount_for_subtotal: SalesReportTemplate
    returns: SalesReportTemplate
    taxes: list[TaxReportTemplate]
    payments: list[PaymentReportTemplate]
    cash: CashBalanceReportTemplate
    receipt_text: str | None = None
    journal_text: str | None = None


def report_text(scope: str, data: dict[str, Any]) -> str:
    """The report's printable text (Kugelpos renders a receipt; the stand-in a plain summary)."""
    gross, returns = data["sales_gross"], data["returns"]
    return (f"SALES REPORT ({scope}) {data['store_code']} terminal {data.get('terminal_no') or 'all'} "
            f"{data.get('business_date')}\nGROSS {gross['count']} {gross['amount']:,.0f}\n"
            f"RETURNS {returns['count']} {returns['amount']:,.0f}\n")


def report_answer(scope: str, data: dict[str, Any]) -> BaseSalesReportResponse:
    """The computed report (report/app.py: compute_sales plus its keys) as Kugelpos answers it."""
    cash = data["cash"]
    physical = cash.get("physical_amount") or 0.0
    text = report_text(scope, data)
    return BaseSalesReportResponse.model_validate({
        **data, "receipt_text": text, "journal_text": text,
        "cash": {**cash, "physical_amount": physical, "difference_amount": physical - cash["logical_amount"]},
    })
