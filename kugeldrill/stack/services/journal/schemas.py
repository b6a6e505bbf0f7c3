"""What journal answers: Kugelpos' journal entry schema (journal/app/api/common/schemas.py:
BaseJournalSchema) and its list metadata, whose `filter` is the MongoDB query Kugelpos ran
(journal_repository.get_journals_paginated_async) and whose `sort` its sort keys."""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.envelope import AnswerModel

#: Kugelpos' default sort (journal.py: parse_sort without `sort`).
DEFAULT_SORT = (("terminal_no", 1), ("business_date", 1), ("receipt_no", 1))


class BaseJournalSchema(AnswerModel):
    tenant_id: str
    store_code: str
    terminal_no: int
    journal_seq_no: int | None = -1
    transaction_no: int | None = None
    transaction_type: int
    business_date: str
    open_counter: int
    business_counter: int
    generate_date_time: str
    receipt_no: int | None = None
    amount: float | None = 0.0
    quantity: int | None = 0
    staff_id: str | None = None
    user_id: str | None = None
    content: str | None = "please refer to receipt_text field"
    journal_text: str
    receipt_text: str


def journal_answer(row: dict[str, Any]) -> BaseJournalSchema:
    """A stored entry; a log published without texts shows empty ones (Kugelpos' are required strings)."""
    return BaseJournalSchema.model_validate({**row, "journal_text": row.get("journal_text") or "",
                                             "receipt_text": row.get("receipt_text") or ""})


def search_filter(tenant_id: str, store_code: str, *, terminals: list[int] | None, transaction_types: list[int] | None,
                  ranges: list[tuple[str, Any, Any]], keywords: str | None) -> dict[str, Any]:
    """The MongoDB query Kugelpos builds for a journal search, as it reports it in `metadata.filter`."""
    query: dict[str, Any] = {"tenant_id": tenant_id, "store_code": store_code}
    if terminals:
        query["terminal_no"] = {"$in": terminals}
    if transaction_types:
        query["transaction_type"] = {"$in": transaction_types}
    for column, lo, hi in ranges:
        if lo is not None and hi is not None:
            query[column] = {"$gte": lo, "$lte": hi}
    if keywords:
        query["journal_text"] = {"$regex": keywords}
    return query


def sort_text(sort: tuple[tuple[str, int], ...] = DEFAULT_SORT) -> str:
    return ", ".join(f"{field}:{order}" for field, order in sort)
