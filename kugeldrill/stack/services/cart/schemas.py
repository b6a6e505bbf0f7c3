"""What the cart answers: Kugelpos' cart API schemas (cart/app/api/common/schemas.py) and
its transformer (schemas_transformer.py), field for field.

The cart keeps its own documents (a cart, a tranlog: the snake_case payload it
publishes); a client sees them only through these models, as in Kugelpos. So an answer
carries exactly Kugelpos' fields under Kugelpos' names — a payment's amount is
`paymentAmount`, a line's name `itemName` — and nothing the real answer lacks. The
transformer's quirks are kept, since a client reads them: a cart answers `businessDate`
and `generateDateTime` null, `status` null, and -1 for its numbers before the bill; a
transaction answers its `totalAmount` with tax included.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.envelope import AnswerModel


class BaseDiscount(AnswerModel):
    discount_type: str
    discount_value: float
    discount_amount: float
    discount_detail: str | None = "no detail"
    promotion_code: str | None = None
    promotion_type: str | None = None


class BaseTranLineItem(AnswerModel):
    line_no: int
    item_code: str
    item_name: str
    category_code: str | None = None
    unit_price: float
    unit_price_original: float | None = None
    is_unit_price_changed: bool
    quantity: int
    amount: float
    discounts: list[BaseDiscount]
    image_urls: list[str]
    is_cancelled: bool
    is_discount_restricted: bool | None = False


class BaseTranPayment(AnswerModel):
    payment_no: int
    payment_code: str
    payment_name: str
    payment_amount: float
    payment_detail: str | None = "no detail"


class BaseTranTax(AnswerModel):
    tax_no: int
    tax_code: str
    tax_type: str
    tax_name: str
    tax_amount: float
    target_amount: float
    target_quantity: int


class BaseTranStaff(AnswerModel):
    id: str
    name: str


class BaseTranStatus(AnswerModel):
    is_cancelled: bool = False
    is_voided: bool = False
    is_refunded: bool = False


class BaseTran(AnswerModel):
    tenant_id: str
    store_code: str
    store_name: str | None = None
    terminal_no: int
    total_amount: float
    total_amount_with_tax: float
    total_quantity: int
    total_discount_amount: float
    deposit_amount: float
    change_amount: float
    stamp_duty_amount: float | None = None
    receipt_no: int
    transaction_no: int
    transaction_type: int
    business_date: str | None = None
    generate_date_time: str | None = None
    line_items: list[BaseTranLineItem] | None = None
    payments: list[BaseTranPayment] | None = None
    taxes: list[BaseTranTax] | None = None
    subtotal_discounts: list[BaseDiscount] | None = None
    receipt_text: str | None = None
    journal_text: str | None = None
    staff: BaseTranStaff | None = None
    status: BaseTranStatus | None = None


class BaseCart(BaseTran):
    cart_id: str
    cart_status: str
    subtotal_amount: float
    balance_amount: float


class BaseCartCreateResponse(AnswerModel):
    cart_id: str


# ---------------------------------------------------------------------- transformer


def _discounts(discounts: list[dict[str, Any]]) -> list[BaseDiscount]:
    return [BaseDiscount(discount_type=d["discount_type"], discount_value=d["discount_value"],
                         discount_amount=d["discount_amount"], discount_detail=d.get("discount_detail"))
            for d in discounts]


def _line_items(lines: list[dict[str, Any]]) -> list[BaseTranLineItem]:
    return [BaseTranLineItem(
        line_no=li["line_no"], item_code=li["item_code"], item_name=li.get("description") or "",
        category_code=li.get("category_code"), unit_price=li["unit_price"],
        unit_price_original=li.get("unit_price_original"), is_unit_price_changed=li["is_unit_price_changed"],
        quantity=li["quantity"], amount=li["amount"], discounts=_discounts(li.get("discounts") or []),
        image_urls=li.get("image_urls") or [], is_cancelled=li["is_cancelled"],
        is_discount_restricted=li.get("is_discount_restricted", False)) for li in lines]


def _payments(payments: list[dict[str, Any]]) -> list[BaseTranPayment]:
    return [BaseTranPayment(payment_no=p["payment_no"], payment_code=p["payment_code"],
                            payment_name=p.get("description") or "", payment_amount=p["amount"],
                            payment_detail=p.get("detail")) for p in payments]


def _taxes(taxes: list[dict[str, Any]]) -> list[BaseTranTax]:
    return [BaseTranTax(tax_no=t["tax_no"], tax_code=t["tax_code"], tax_type=t["tax_type"], tax_name=t["tax_name"],
                        tax_amount=t["tax_amount"], target_amount=t["target_amount"],
                        target_quantity=int(t["target_quantity"])) for t in taxes]


def _staff(staff: dict[str, Any] | None) -> BaseTranStaff:
    staff = staff or {}
    return BaseTranStaff(id=str(staff.get("id") or ""), name=str(staff.get("name") or ""))


def cart_answer(cart: dict[str, Any]) -> BaseCart:
    """A cart as Kugelpos' transform_cart shows it."""
    no = cart.get("transaction_no")
    receipt = cart.get("receipt_no")
    return BaseCart(
        cart_id=cart["cart_id"], tenant_id=cart["tenant_id"], store_code=cart["store_code"],
        store_name=cart.get("store_name"), terminal_no=cart["terminal_no"], total_amount=cart["total_amount"],
        total_amount_with_tax=cart["total_amount_with_tax"], total_discount_amount=cart["total_discount_amount"],
        total_quantity=cart["total_quantity"], subtotal_amount=cart["total_amount"],
        deposit_amount=cart["deposit_amount"], change_amount=cart["change_amount"],
        stamp_duty_amount=cart.get("stamp_duty_amount"), balance_amount=cart["balance_amount"],
        receipt_no=-1 if receipt is None else receipt, transaction_no=-1 if no is None else no,
        transaction_type=cart["transaction_type"], cart_status=cart["cart_status"],
        line_items=_line_items(cart["line_items"]), payments=_payments(cart["payments"]),
        taxes=_taxes(cart["taxes"]), subtotal_discounts=_discounts(cart["subtotal_discounts"]),
        receipt_text=cart.get("receipt_text") or "", journal_text=cart.get("journal_text"),
        staff=_staff(cart.get("staff")))


def tran_answer(tran: dict[str, Any]) -> BaseTran:
    """A tranlog as Kugelpos' transform_tran shows it (`total_amount` with tax, as there)."""
    sales = tran["sales"]
    return BaseTran(
        tenant_id=tran["tenant_id"], store_code=tran["store_code"], store_name=tran.get("store_name"),
        terminal_no=tran["terminal_no"], total_amount=sales["total_amount_with_tax"],
        total_amount_with_tax=sales["total_amount_with_tax"], total_discount_amount=sales["total_discount_amount"],
        total_quantity=sales["total_quantity"],
        deposit_amount=sum(float(p.get("deposit_amount") or 0.0) for p in tran.get("payments") or []),
        change_amount=sales["change_amount"], stamp_duty_amount=sales.get("stamp_duty_amount"),
        receipt_no=tran["receipt_no"], transaction_no=tran["transaction_no"],
        transaction_type=tran["transaction_type"], business_date=tran.get("business_date"),
        generate_date_time=tran.get("generate_date_time"), line_items=_line_items(tran.get("line_items") or []),
        payments=_payments(tran.get("payments") or []), taxes=_taxes(tran.get("taxes") or []),
        subtotal_discounts=_discounts(tran.get("subtotal_discounts") or []), receipt_text=tran.get("receipt_text"),
        journal_text=tran.get("journal_text"), staff=_staff(tran.get("staff")),
        status=BaseTranStatus(is_cancelled=bool(sales.get("is_cancelled")), is_voided=bool(tran.get("is_voided")),
                              is_refunded=bool(tran.get("is_refunded"))))
