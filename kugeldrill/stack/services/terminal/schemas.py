"""What the terminal service answers: Kugelpos' terminal API schemas
(terminal/app/api/common/schemas.py), field for field, built from the service's own
documents (tenants, stores, terminals: snake_case, `created_at`/`updated_at`).

A terminal's staff is `{staffId, staffName, staffPin}`; times are `entryDatetime` and
`lastUpdateDatetime`; a cash movement answers only what Kugelpos answers (terminal,
amount, description, receipt and journal text), so a client never relies on a field the
real service does not send.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.envelope import AnswerModel
from kugeldrill.stack.services.terminal import model


class BaseStore(AnswerModel):
    store_code: str
    store_name: str
    status: str | None = None
    business_date: str | None = None
    tags: list[str] | None = None
    entry_datetime: str
    last_update_datetime: str | None = None


class BaseTenant(AnswerModel):
    tenant_id: str
    tenant_name: str
    tags: list[str]
    stores: list[BaseStore]
    entry_datetime: str
    last_update_datetime: str | None = None


class BaseStaff(AnswerModel):
    staff_id: str
    staff_name: str
    staff_pin: str | None = None


class BaseTerminal(AnswerModel):
    terminal_id: str
    tenant_id: str
    store_code: str
    terminal_no: int
    description: str
    function_mode: str
    status: str
    business_date: str | None = None
    open_counter: int
    business_counter: int
    initial_amount: float | None = None
    physical_amount: float | None = None
    staff: BaseStaff | None = None
    api_key: str | None = None
    entry_datetime: str
    last_update_datetime: str | None = None


class BaseCashInOutResponse(AnswerModel):
    terminal_id: str
    amount: float
    description: str
    receipt_text: str
    journal_text: str


class BaseTerminalOpenResponse(AnswerModel):
    terminal_id: str
    business_date: str
    open_counter: int
    business_counter: int
    initial_amount: float | None = None
    terminal_info: BaseTerminal
    receipt_text: str
    journal_text: str


class BaseTerminalCloseResponse(BaseTerminalOpenResponse):
    physical_amount: float | None = None


# ---------------------------------------------------------------------- transformer


def store_answer(doc: dict[str, Any]) -> BaseStore:
    return BaseStore(store_code=doc["store_code"], store_name=doc.get("store_name") or "", status=doc.get("status"),
                     business_date=doc.get("business_date"), tags=doc.get("tags") or [],
                     entry_datetime=doc["created_at"], last_update_datetime=doc.get("updated_at"))


def tenant_answer(doc: dict[str, Any], stores: list[dict[str, Any]]) -> BaseTenant:
    return BaseTenant(tenant_id=doc["tenant_id"], tenant_name=doc.get("tenant_name") or "", tags=doc.get("tags") or [],
                      stores=[store_answer(s) for s in stores], entry_datetime=doc["created_at"],
                      last_update_datetime=doc.get("updated_at"))


def terminal_answer(doc: dict[str, Any], *, show_key: bool = False) -> BaseTerminal:
    """A terminal; its API key masked unless `show_key` (at creation, in a close's terminal info)."""
    staff = doc.get("staff")
    return BaseTerminal(
        terminal_id=doc["terminal_id"], tenant_id=doc["tenant_id"], store_code=doc["store_code"],
        terminal_no=doc["terminal_no"], description=doc.get("description") or "", function_mode=doc["function_mode"],
        status=doc["status"], business_date=doc.get("business_date"), open_counter=doc.get("open_counter") or 0,
        business_counter=doc.get("business_counter") or 0, initial_amount=doc.get("initial_amount"),
        physical_amount=doc.get("physical_amount"),
        staff=BaseStaff(staff_id=staff["id"], staff_name=staff.get("name") or "", staff_pin=staff.get("pin"))
        if staff else None,
        api_key=doc["api_key"] if show_key else model.MASKED_KEY, entry_datetime=doc["created_at"],
        last_update_datetime=doc.get("updated_at"))


def cash_answer(terminal_id: str, cash: dict[str, Any]) -> BaseCashInOutResponse:
    return BaseCashInOutResponse(terminal_id=terminal_id, amount=cash["amount"], description=cash["description"],
                                 receipt_text=cash["receipt_text"], journal_text=cash["journal_text"])


def open_answer(doc: dict[str, Any], log_doc: dict[str, Any]) -> BaseTerminalOpenResponse:
    return BaseTerminalOpenResponse(
        terminal_id=doc["terminal_id"], business_date=doc["business_date"], open_counter=doc["open_counter"],
        business_counter=doc["business_counter"], initial_amount=doc.get("initial_amount"),
        terminal_info=terminal_answer(doc), receipt_text=log_doc["receipt_text"], journal_text=log_doc["journal_text"])


def close_answer(doc: dict[str, Any], log_doc: dict[str, Any]) -> BaseTerminalCloseResponse:
    return BaseTerminalCloseResponse(
        terminal_id=doc["terminal_id"], business_date=doc["business_date"], open_counter=doc["open_counter"],
        business_counter=doc["business_counter"], initial_amount=doc.get("initial_amount"),
        terminal_info=terminal_answer(doc, show_key=True), receipt_text=log_doc["receipt_text"],
        journal_text=log_doc["journal_text"], physical_amount=doc.get("physical_amount"))
