"""The three log collections report and journal both keep (Kugelpos `log_tran`,
`log_cash_in_out`, `log_open_close`), with Kugelpos' unique business keys (docs/kugelpos-facts.md §5.5).

The unique indexes are report/journal's second line of dedup: a redelivered event whose
business key exists changes nothing (`BusinessDuplicate` → no `applied` row).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from kugeldrill.stack.services.common.db import dumps
from kugeldrill.stack.services.common.applied import BusinessDuplicate

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_tran (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    transaction_no INTEGER NOT NULL, transaction_type INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, business_counter INTEGER,
    generate_date_time TEXT, receipt_no INTEGER, is_cancelled INTEGER NOT NULL,
    total_amount REAL NOT NULL, total_amount_with_tax REAL NOT NULL, tax_amount REAL NOT NULL,
    total_quantity REAL NOT NULL, change_amount REAL NOT NULL, total_discount_amount REAL NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no, transaction_no)
);
CREATE TABLE IF NOT EXISTS log_cash_in_out (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, business_counter INTEGER,
    generate_date_time TEXT NOT NULL, amount REAL NOT NULL, description TEXT, data TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no, business_date, open_counter, generate_date_time)
);
CREATE TABLE IF NOT EXISTS log_open_close (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, business_counter INTEGER,
    operation TEXT NOT NULL, generate_date_time TEXT,
    cart_transaction_count INTEGER, cart_transaction_last_no INTEGER, cash_in_out_count INTEGER,
    data TEXT NOT NULL,
    UNIQUE (tenant_id, store_code, terminal_no, business_date, open_counter, operation)
);
"""


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return default
    return int(value)  # a malformed number raises ValueError → the handler's RETRY path


def _num(obj: Any, key: str) -> float:
    value = (obj or {}).get(key) if isinstance(obj, dict) else None
    return float(value) if value is not None else 0.0


def sales_of(data: dict[str, Any]) -> dict[str, Any]:
    sales = data.get("sales") or {}
    if not isinstance(sales, dict):
        raise ValueError("tranlog field 'sales' is not an object")
    return sales


def insert_tranlog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    sales = sales_of(data)
    try:
        conn.execute(
            "INSERT INTO log_tran (tenant_id, store_code, terminal_no, transaction_no, transaction_type, business_date,"
            " open_counter, business_counter, generate_date_time, receipt_no, is_cancelled, total_amount,"
            " total_amount_with_tax, tax_amount, total_quantity, change_amount, total_discount_amount, data)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                str(data["tenant_id"]), str(data.get("store_code")), _int(data, "terminal_no"),
                _int(data, "transaction_no"), _int(data, "transaction_type"), data.get("business_date"),
                _int(data, "open_counter"), _int(data, "business_counter"), data.get("generate_date_time"),
                _int(data, "receipt_no"), 1 if sales.get("is_cancelled") else 0,
                _num(sales, "total_amount"), _num(sales, "total_amount_with_tax"), _num(sales, "tax_amount"),
                _num(sales, "total_quantity"), _num(sales, "change_amount"), _num(sales, "total_discount_amount"),
                dumps(data),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise BusinessDuplicate(str(exc)) from exc


def insert_cashlog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    try:
        conn.execute(
            "INSERT INTO log_cash_in_out (tenant_id, store_code, terminal_no, business_date, open_counter,"
            " business_counter, generate_date_time, amount, description, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                str(data["tenant_id"]), str(data.get("store_code")), _int(data, "terminal_no"), data.get("business_date"),
                _int(data, "open_counter"), _int(data, "business_counter"), str(data.get("generate_date_time")),
                float(data.get("amount") or 0), data.get("description"), dumps(data),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise BusinessDuplicate(str(exc)) from exc


def insert_opencloselog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    operation = data.get("operation") or data.get("event_type")
    if operation not in ("open", "close"):
        raise ValueError(f"open/close log has operation {operation!r}; expected 'open' or 'close'")
    try:
        conn.execute(
            "INSERT INTO log_open_close (tenant_id, store_code, terminal_no, business_date, open_counter,"
            " business_counter, operation, generate_date_time, cart_transaction_count, cart_transaction_last_no,"
            " cash_in_out_count, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                str(data["tenant_id"]), str(data.get("store_code")), _int(data, "terminal_no"), data.get("business_date"),
                _int(data, "open_counter"), _int(data, "business_counter"), operation, data.get("generate_date_time"),
                _int(data, "cart_transaction_count"), _int(data, "cart_transaction_last_no"),
                _int(data, "cash_in_out_count"), dumps(data),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise BusinessDuplicate(str(exc)) from exc
