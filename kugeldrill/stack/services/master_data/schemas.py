"""What master-data answers: Kugelpos' master schemas (master-data/app/api/common/schemas.py)
for the staff, item and payment masters, built from the service's stored documents.

The stand-in keeps a little more than it shows (short and long item descriptions, the
tenant); the answer carries Kugelpos' fields only, with `entryDatetime` and
`lastUpdateDatetime` for the record's times.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.envelope import AnswerModel


class StaffMasterResponse(AnswerModel):
    id: str
    name: str
    pin: str
    roles: list[str]
    entry_datetime: str
    last_update_datetime: str | None = None


class ItemCommonMasterResponse(AnswerModel):
    item_code: str
    description: str
    unit_price: float
    unit_cost: float
    item_details: list[Any]
    image_urls: list[str]
    category_code: str
    tax_code: str
    is_discount_restricted: bool
    is_deleted: bool
    entry_datetime: str
    last_update_datetime: str | None = None


class PaymentMasterResponse(AnswerModel):
    payment_code: str
    description: str
    limit_amount: float
    can_refund: bool
    can_deposit_over: bool
    can_change: bool
    is_active: bool
    entry_datetime: str
    last_update_datetime: str | None = None


ANSWERS: dict[str, type[AnswerModel]] = {
    "staff": StaffMasterResponse, "items": ItemCommonMasterResponse, "payments": PaymentMasterResponse,
}


def master_answer(kind: str, doc: dict[str, Any]) -> AnswerModel:
    """A stored master document (`kind`: staff, items, payments) as Kugelpos answers it."""
    return ANSWERS[kind].model_validate({"is_deleted": False, **doc, "entry_datetime": doc["created_at"],
                                         "last_update_datetime": doc.get("updated_at")})
