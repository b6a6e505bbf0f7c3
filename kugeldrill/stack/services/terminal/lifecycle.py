"""Terminal lifecycle (docs/kugelpos-facts.md §4): open, cash-in, cash-out, close — the calls that
publish cash logs and open/close logs.

As Kugelpos: open needs status ≠ Opened, sets `business_date` (Asia/Tokyo), `open_counter`
(+1 on the same date, else 1) and `business_counter` +1, and logs the initial amount as a
cash log without `event_type`; cash-in/out need Opened and a staff, cash-out stores a
negative amount; close needs Opened and counts the open period's cash logs locally and its
tranlogs (cancelled included) through cart's transactions API. Every log is committed with
its outbox row in one transaction and published after the commit; a failed publish is
logged and the call still succeeds. Open and close answer an `X-New-Token`.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.app import ServiceUnavailable, call_service
from kugeldrill.stack.services.common.db import dumps
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, ok
from kugeldrill.stack.services.common.timeutil import business_date_today, now_iso
from kugeldrill.stack.services.terminal import model
from kugeldrill.stack.services.terminal.context import (
    CASH_FAILURE, OPEN_CLOSE_FAILURE, Publication, TerminalService, terminal_service,
)
from kugeldrill.stack.services.terminal.schemas import cash_answer, close_answer, open_answer

router = APIRouter(prefix="/api/v1/terminals/{terminal_id}")
Service = Depends(terminal_service)


class OpenIn(ApiModel):
    initial_amount: float | None = None


class CashIn(ApiModel):
    amount: float
    description: str | None = None


class CloseIn(ApiModel):
    physical_amount: float | None = None


def _require_opened(svc: TerminalService, cur: dict[str, Any]) -> None:
    if cur["status"] != "Opened":
        raise bad_request(f"terminal {cur['terminal_id']} is not opened (status {cur['status']})", service=svc.name)


def _store_terminal(conn: Any, cur: dict[str, Any], now: str) -> None:
    cur["updated_at"] = now
    conn.execute("UPDATE terminals SET doc = ? WHERE terminal_id = ?", (dumps(cur), cur["terminal_id"]))


@router.post("/open")
async def open_terminal(terminal_id: str, request: Request, body: OpenIn | None = Body(default=None),
                        svc: TerminalService = Service) -> JSONResponse:
    await svc.for_request(request, terminal_id)
    initial = body.initial_amount if body else None
    async with svc.locks[terminal_id]:
        cur = await svc.get(terminal_id)
        assert cur is not None
        if cur["status"] == "Opened":
            raise bad_request(f"terminal {terminal_id} is already opened", service=svc.name)
        sname = await svc.store_name(cur["tenant_id"], cur["store_code"])
        today = business_date_today()
        cur["open_counter"] = (cur.get("open_counter") or 0) + 1 if cur.get("business_date") == today else 1
        cur.update(business_date=today, business_counter=(cur.get("business_counter") or 0) + 1, status="Opened",
                   initial_amount=initial, physical_amount=None)
        now = now_iso()
        pubs: list[Publication] = []
        cash = None
        if initial is not None:
            eid = str(uuid.uuid4())
            cash = model.cash_log(cur, sname, now, eid, initial, "Initial amount", event_type=False)
            pubs.append((eid, *model.CASHLOG, cash, CASH_FAILURE))
        oid = str(uuid.uuid4())
        open_log = model.open_close_log(cur, sname, now, oid, "open")
        pubs.append((oid, *model.OPENCLOSELOG, open_log, OPEN_CLOSE_FAILURE))

        def commit(conn: Any) -> None:
            if cash is not None:
                model.insert_cash(conn, cash)
            model.insert_open_close(conn, open_log)
            for eid, pubsub, topic, payload, _ in pubs:
                outbox.insert_event(conn, eid, pubsub, topic, payload, model.SUBSCRIBERS)
            _store_terminal(conn, cur, now)

        await svc.db.write(commit)
    await svc.publish_logs(pubs)
    return ok(open_answer(cur, open_log), operation="terminal_open", headers=svc.new_token_header(cur),
              message=f"Terminal Opened. terminal_id: {terminal_id}")


async def _cash_in_out(svc: TerminalService, terminal_id: str, request: Request, body: CashIn, sign: int) -> JSONResponse:
    await svc.for_request(request, terminal_id)
    if body.amount <= 0:
        raise bad_request(f"amount must be positive, got {body.amount}", service=svc.name)
    async with svc.locks[terminal_id]:
        cur = await svc.get(terminal_id)
        assert cur is not None
        _require_opened(svc, cur)
        if not cur.get("staff"):
            raise bad_request(f"no staff is signed in on terminal {terminal_id}", service=svc.name)
        sname = await svc.store_name(cur["tenant_id"], cur["store_code"])
        description = body.description or ("Cash In (Default)" if sign > 0 else "Cash Out (Default)")
        eid = str(uuid.uuid4())
        cash = model.cash_log(cur, sname, now_iso(), eid, sign * body.amount, description)

        def commit(conn: Any) -> None:
            model.insert_cash(conn, cash)
            outbox.insert_event(conn, eid, *model.CASHLOG, cash, model.SUBSCRIBERS)

        await svc.db.write(commit)
    await svc.publish_logs([(eid, *model.CASHLOG, cash, CASH_FAILURE)])
    what = "Cashed In" if sign > 0 else "Cashed Out"
    return ok(cash_answer(terminal_id, cash), operation="terminal_cash_in" if sign > 0 else "terminal_cash_out",
              message=f"Terminal {what}. terminal_id: {terminal_id}")


@router.post("/cash-in")
async def cash_in(terminal_id: str, body: CashIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    return await _cash_in_out(svc, terminal_id, request, body, +1)


@router.post("/cash-out")
async def cash_out(terminal_id: str, body: CashIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    return await _cash_in_out(svc, terminal_id, request, body, -1)


async def _cart_counts(svc: TerminalService, doc: dict[str, Any]) -> dict[str, Any]:
    """Tranlogs of the open period (incl. cancelled) from cart's transactions API."""
    path = f"/tenants/{doc['tenant_id']}/stores/{doc['store_code']}/terminals/{doc['terminal_no']}/transactions"
    resp = await call_service(
        svc.app, "cart", "GET", path, headers={"X-API-KEY": doc["api_key"]},
        params={"terminal_id": doc["terminal_id"], "business_date": doc["business_date"],
                "open_counter": doc["open_counter"], "include_cancelled": "true", "limit": 1, "page": 1,
                "sort": "transaction_no:-1"},
    )
    if resp.status_code != 200:
        raise ServiceUnavailable(f"cart answered {resp.status_code} to the close count of {doc['terminal_id']}: "
                                 f"{resp.text[:200]}")
    body = resp.json()
    items = body.get("data") or []
    return {
        "cart_transaction_count": int((body.get("metadata") or {}).get("total", 0)),
        "cart_transaction_last_no": items[0].get("transactionNo") if items else None,
    }


@router.post("/close")
async def close_terminal(terminal_id: str, request: Request, body: CloseIn | None = Body(default=None),
                         svc: TerminalService = Service) -> JSONResponse:
    await svc.for_request(request, terminal_id)
    async with svc.locks[terminal_id]:
        cur = await svc.get(terminal_id)
        assert cur is not None
        _require_opened(svc, cur)
        counts = await _cart_counts(svc, cur)
        cash = await svc.db.fetchone(
            "SELECT COUNT(*) AS n, MAX(generate_date_time) AS last FROM cash_logs WHERE tenant_id = ? AND"
            " store_code = ? AND terminal_no = ? AND business_date = ? AND open_counter = ?",
            (cur["tenant_id"], cur["store_code"], cur["terminal_no"], cur["business_date"], cur["open_counter"]),
        )
        counts["cash_in_out_count"] = cash["n"] if cash else 0
        counts["cash_in_out_last_datetime"] = cash["last"] if cash else None
        sname = await svc.store_name(cur["tenant_id"], cur["store_code"])
        cur["status"] = "Closed"
        cur["physical_amount"] = body.physical_amount if body else None
        eid = str(uuid.uuid4())
        now = now_iso()
        close_log = model.open_close_log(cur, sname, now, eid, "close", counts)

        def commit(conn: Any) -> None:
            model.insert_open_close(conn, close_log)
            outbox.insert_event(conn, eid, *model.OPENCLOSELOG, close_log, model.SUBSCRIBERS)
            _store_terminal(conn, cur, now)

        await svc.db.write(commit)
    await svc.publish_logs([(eid, *model.OPENCLOSELOG, close_log, OPEN_CLOSE_FAILURE)])
    return ok(close_answer(cur, close_log), operation="terminal_close", headers=svc.new_token_header(cur),
              message=f"Terminal Closed. terminal_id: {terminal_id}")
