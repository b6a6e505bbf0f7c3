"""Tranlogs as Kugelpos builds and publishes them (docs/kugelpos-facts.md §3.2).

A tranlog is created by bill (NormalSales 101), cancel (101 with `sales.is_cancelled`),
void (VoidSales 201 / VoidReturn 202) and return (ReturnSales 102). The published
payload is the snake_case transaction plus a fresh uuid4 `event_id`; clients never see
the event id (Kugelpos returns none).
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common import outbox

TRANLOG = ("pubsub-tranlog-report", "topic-tranlog")
SUBSCRIBERS = ["report", "journal", "stock"]
NORMAL_SALES, RETURN_SALES, VOID_SALES, VOID_RETURN = 101, 102, 201, 202
RECEIPT_NO_START, RECEIPT_NO_END = 111111, 999999

SCHEMA = outbox.SCHEMA + """
CREATE TABLE IF NOT EXISTS tenants (tenant_id TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS carts (
    cart_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    cart_status TEXT NOT NULL, doc TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS terminal_counters (
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    transaction_no INTEGER NOT NULL, receipt_no INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, store_code, terminal_no));
CREATE TABLE IF NOT EXISTS tranlogs (
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    transaction_no INTEGER NOT NULL, transaction_type INTEGER NOT NULL, business_date TEXT,
    open_counter INTEGER, receipt_no INTEGER, is_cancelled INTEGER NOT NULL, is_voided INTEGER NOT NULL,
    is_refunded INTEGER NOT NULL, generate_date_time TEXT NOT NULL, doc TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no, transaction_no));
CREATE INDEX IF NOT EXISTS ix_tranlogs_period ON tranlogs (tenant_id, store_code, terminal_no, business_date, open_counter);
"""


def next_numbers(conn: Any, tenant_id: str, store_code: str, terminal_no: int, *, bounded: bool) -> tuple[int, int]:
    """Per-terminal transaction and receipt numbers (bill/cancel wrap receipts 111111–999999)."""
    row = conn.execute(
        "SELECT transaction_no, receipt_no FROM terminal_counters WHERE tenant_id = ? AND store_code = ? AND terminal_no = ?",
        (tenant_id, store_code, terminal_no),
    ).fetchone()
    tran_no = (row["transaction_no"] if row else 0) + 1
    receipt = (row["receipt_no"] if row else RECEIPT_NO_START - 1) + 1
    if bounded and not RECEIPT_NO_START <= receipt <= RECEIPT_NO_END:
        receipt = RECEIPT_NO_START
    conn.execute(
        "INSERT INTO terminal_counters VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, store_code, terminal_no)"
        " DO UPDATE SET transaction_no = excluded.transaction_no, receipt_no = excluded.receipt_no",
        (tenant_id, store_code, terminal_no, tran_no, receipt),
    )
    return tran_no, receipt


def sales_of(src: dict[str, Any], *, is_cancelled: bool, reference: str) -> dict[str, Any]:
    return {
        "reference_date_time": reference, "total_amount": src["total_amount"],
        "total_amount_with_tax": src["total_amount_with_tax"], "tax_amount": src["tax_amount"],
        "total_quantity": src["total_quantity"], "change_amount": src["change_amount"],
        "total_discount_amount": src["total_discount_amount"], "is_cancelled": is_cancelled,
        "is_stamp_duty_applied": False, "stamp_duty_target_amount": 0.0, "stamp_duty_amount": 0.0,
    }


def texts(kind: str, tran: dict[str, Any]) -> tuple[str, str]:
    lines = [f"{li['description'] or li['item_code']} x{li['quantity']} {li['amount']:,.0f}" for li in tran["line_items"]
             if not li["is_cancelled"]]
    sales = tran["sales"]
    receipt = "\n".join([
        f"{tran['store_name']} / terminal {tran['terminal_no']}", f"{kind}  #{tran['transaction_no']}  receipt {tran['receipt_no']}",
        tran["generate_date_time"], *lines, f"TOTAL {sales['total_amount_with_tax']:,.0f}",
        *[f"{p['description'] or p['payment_code']} {p['deposit_amount']:,.0f}" for p in tran["payments"]],
        f"CHANGE {sales['change_amount']:,.0f}",
    ])
    journal = f"[{kind}] transaction {tran['transaction_no']} receipt {tran['receipt_no']} total {sales['total_amount_with_tax']:,.0f}"
    return receipt, journal


def from_cart(cart: dict[str, Any], *, transaction_no: int, receipt_no: int, is_cancelled: bool, now: str,
              event_id: str) -> dict[str, Any]:
    """The tranlog of a billed or cancelled cart."""
    tran = {
        "tenant_id": cart["tenant_id"], "store_code": cart["store_code"], "store_name": cart["store_name"],
        "terminal_no": cart["terminal_no"], "transaction_no": transaction_no, "transaction_type": NORMAL_SALES,
        "business_date": cart["business_date"], "open_counter": cart["open_counter"],
        "business_counter": cart["business_counter"], "generate_date_time": now, "receipt_no": receipt_no,
        "user": cart["user"], "sales": sales_of(cart, is_cancelled=is_cancelled, reference=now),
        "line_items": cart["line_items"], "payments": cart["payments"], "taxes": cart["taxes"],
        "subtotal_discounts": cart["subtotal_discounts"], "origin": None, "staff": cart["staff"],
        "additional_info": None, "is_voided": False, "is_refunded": False,
        "shard_key": f"{cart['tenant_id']}_{cart['store_code']}_{cart['terminal_no']}_{cart['business_date']}",
        "created_at": now, "updated_at": now, "etag": event_id[:8], "cart_id": cart["cart_id"],
    }
    tran["receipt_text"], tran["journal_text"] = texts("CANCEL" if is_cancelled else "SALE", tran)
    tran["event_id"] = event_id
    return tran


def reversal(original: dict[str, Any], ctx: dict[str, Any], *, transaction_type: int, transaction_no: int,
             receipt_no: int, payments: list[dict[str, Any]], now: str, event_id: str) -> dict[str, Any]:
    """A void or return of `original`: same lines and amounts, the new type, `origin` set.

    As in Kugelpos, the new tranlog keeps the original's terminal_no but its numbers come
    from the requesting terminal's counter; business date/counters are the requester's.
    """
    tran = {k: v for k, v in original.items() if k != "event_id"}
    payment_docs = [
        {"payment_no": i, "payment_code": p["payment_code"], "deposit_amount": float(p["amount"]),
         "amount": float(p["amount"]), "description": p.get("description", ""), "detail": None}
        for i, p in enumerate(payments, start=1)
    ]
    sales = dict(original["sales"])
    sales.update({"reference_date_time": now, "change_amount": 0.0, "is_cancelled": False})
    tran.update({
        "transaction_no": transaction_no, "transaction_type": transaction_type, "receipt_no": receipt_no,
        "business_date": ctx.get("business_date"), "open_counter": ctx.get("open_counter"),
        "business_counter": ctx.get("business_counter"), "generate_date_time": now, "sales": sales,
        "payments": payment_docs, "staff": {"id": ctx.get("staff_id"), "name": ctx.get("staff_name")},
        "origin": {
            "tenant_id": original["tenant_id"], "store_code": original["store_code"],
            "terminal_no": original["terminal_no"], "transaction_no": original["transaction_no"],
            "transaction_type": original["transaction_type"], "receipt_no": original["receipt_no"],
            "business_date": original["business_date"], "generate_date_time": original["generate_date_time"],
        },
        "is_voided": False, "is_refunded": False, "created_at": now, "updated_at": now, "etag": event_id[:8],
    })
    kind = {VOID_SALES: "VOID", VOID_RETURN: "VOID RETURN", RETURN_SALES: "RETURN"}.get(transaction_type, "REVERSAL")
    tran["receipt_text"], tran["journal_text"] = texts(kind, tran)
    tran["event_id"] = event_id
    return tran


def insert_tranlog(conn: Any, tran: dict[str, Any]) -> None:
    """Store the tranlog (without its event id: Kugelpos' log_tran has none) and its outbox row."""
    from kugeldrill.stack.services.common.db import dumps

    stored = {k: v for k, v in tran.items() if k != "event_id"}
    conn.execute(
        "INSERT INTO tranlogs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (tran["tenant_id"], tran["store_code"], tran["terminal_no"], tran["transaction_no"], tran["transaction_type"],
         tran["business_date"], tran["open_counter"], tran["receipt_no"], int(tran["sales"]["is_cancelled"]),
         0, 0, tran["generate_date_time"], dumps(stored)),
    )
    outbox.insert_event(conn, tran["event_id"], *TRANLOG, tran, SUBSCRIBERS)
