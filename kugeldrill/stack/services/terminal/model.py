"""Terminal service storage (SQLite) and the log payloads it publishes (docs/kugelpos-facts.md §4)."""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.db import dumps

SCHEMA = outbox.SCHEMA + """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id TEXT PRIMARY KEY, doc TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS stores (
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, doc TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (tenant_id, store_code));
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, store_code TEXT NOT NULL,
    terminal_no INTEGER NOT NULL, api_key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no));
CREATE TABLE IF NOT EXISTS cash_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, generate_date_time TEXT NOT NULL, amount REAL NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_cash_logs_open ON cash_logs (tenant_id, store_code, terminal_no, business_date, open_counter);
CREATE TABLE IF NOT EXISTS open_close_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, operation TEXT NOT NULL, doc TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no, business_date, open_counter, operation));
"""

CASHLOG = ("pubsub-cashlog-report", "topic-cashlog")
OPENCLOSELOG = ("pubsub-opencloselog-report", "topic-opencloselog")
SUBSCRIBERS = ["report", "journal"]
MASKED_KEY = "****-****-****-****"


def terminal_info(terminal: dict[str, Any], *, mask_key: bool) -> dict[str, Any]:
    """The `terminal_info` embedded in open/close logs (the real key on close, as Kugelpos)."""
    info = dict(terminal)
    if mask_key:
        info["api_key"] = MASKED_KEY
    return info


def _base(terminal: dict[str, Any], store_name: str, now: str, event_id: str) -> dict[str, Any]:
    staff = terminal.get("staff") or {}
    return {
        "tenant_id": terminal["tenant_id"],
        "store_code": terminal["store_code"],
        "store_name": store_name,
        "terminal_no": terminal["terminal_no"],
        "staff_id": staff.get("id"),
        "staff_name": staff.get("name"),
        "business_date": terminal.get("business_date"),
        "open_counter": terminal.get("open_counter"),
        "business_counter": terminal.get("business_counter"),
        "generate_date_time": now,
        "shard_key": f"{terminal['tenant_id']}_{terminal['store_code']}_{terminal['terminal_no']}_{terminal.get('business_date')}",
        "created_at": now,
        "updated_at": now,
        "etag": event_id[:8],
        "event_id": event_id,
    }


def cash_log(terminal: dict[str, Any], store_name: str, now: str, event_id: str, amount: float,
             description: str, *, event_type: bool = True) -> dict[str, Any]:
    """Cash in/out log; the open's initial-amount log has no `event_type` (Kugelpos)."""
    doc = _base(terminal, store_name, now, event_id)
    kind = "Cash In" if amount >= 0 else "Cash Out"
    doc.update({
        "amount": amount,
        "description": description,
        "receipt_text": f"{kind}\n{terminal['terminal_id']}\n{now}\nAmount: {amount:,.0f}\n{description}\n",
        "journal_text": f"[{kind}] terminal {terminal['terminal_no']} amount {amount:,.0f} ({description})",
    })
    if event_type:
        doc["event_type"] = "cash_in_out"
    return doc


def open_close_log(terminal: dict[str, Any], store_name: str, now: str, event_id: str, operation: str,
                   counts: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = _base(terminal, store_name, now, event_id)
    counts = counts or {}
    doc.update({
        "operation": operation,
        "terminal_info": terminal_info(terminal, mask_key=operation == "open"),
        "cart_transaction_count": counts.get("cart_transaction_count"),
        "cart_transaction_last_no": counts.get("cart_transaction_last_no"),
        "cash_in_out_count": counts.get("cash_in_out_count"),
        "cash_in_out_last_datetime": counts.get("cash_in_out_last_datetime"),
        "receipt_text": f"{operation.upper()}\n{terminal['terminal_id']}\n{now}\n",
        "journal_text": f"[{operation}] terminal {terminal['terminal_no']} business_date {terminal.get('business_date')}"
                        f" open_counter {terminal.get('open_counter')}",
        "event_type": operation,
    })
    return doc


def insert_cash(conn: Any, cash: dict[str, Any]) -> None:
    """Store a cash log (the close counts the open period's cash logs from here)."""
    conn.execute(
        "INSERT INTO cash_logs (event_id, tenant_id, store_code, terminal_no, business_date, open_counter,"
        " generate_date_time, amount, doc) VALUES (?,?,?,?,?,?,?,?,?)",
        (cash["event_id"], cash["tenant_id"], cash["store_code"], cash["terminal_no"], cash["business_date"],
         cash["open_counter"], cash["generate_date_time"], cash["amount"], dumps(cash)),
    )


def insert_open_close(conn: Any, log_doc: dict[str, Any]) -> None:
    """Store an open/close log (unique per terminal, date, open counter and operation)."""
    conn.execute(
        "INSERT INTO open_close_logs (event_id, tenant_id, store_code, terminal_no, business_date, open_counter,"
        " operation, doc) VALUES (?,?,?,?,?,?,?,?)",
        (log_doc["event_id"], log_doc["tenant_id"], log_doc["store_code"], log_doc["terminal_no"],
         log_doc["business_date"], log_doc["open_counter"], log_doc["operation"], dumps(log_doc)),
    )
