"""The seed's idempotent subscriber, shared by report, journal and stock.

Seed pattern (冪等性保証パターン): check `event_id` in `statestore` → apply → mark. When the
state store cannot be read, apply anyway (the seed tolerates duplicates then: "Redis障害:
ステートストアフォールバック、重複処理許容") and say so (log + `applied` event with
`dedup: "error"`). Each application is written to the service's `applied` table in the
same SQLite transaction as its business effect, so `GET /api/v1/diagnostics/applied`
is exact ground truth: an event counted there did change the business data, once per row.

Answers follow Dapr's contract (dapr.md §2.4): 200 `{"status":"SUCCESS"}` when done or a
duplicate, 200 `{"status":"DROP"}` for a message that can never be processed, a real HTTP
500 `{"status":"RETRY"}` to get a redelivery. The defect switches reproduce Kugelpos where
it differs (kugelpos.md §5.2–5.3, Surprises 1–3): see stack/services/README.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper, get_dapr_client
from kugeldrill.stack.services.common.db import Database, dumps, is_unique_violation
from kugeldrill.stack.services.common.events import EventLog, payload_keys

STATESTORE = "statestore"
CRASH_DRAIN_SECONDS = 10.0  # the crash knob's bound on waiting for committed effects' records

#: The `applied` table (ground truth) and the per-event delivery counter; every
#: subscriber's schema includes this.
APPLIED_SCHEMA = """
CREATE TABLE IF NOT EXISTS applied (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    dedup TEXT NOT NULL,
    cloudevent_id TEXT,
    ts REAL NOT NULL,
    mono REAL NOT NULL,
    payload_keys TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_event ON applied(event_id);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
"""

#: Kugelpos' pub/sub components and topics (kugelpos.md §5.1).
TRANLOG = ("pubsub-tranlog-report", "topic-tranlog", "/api/v1/tranlog", "tranlog")
CASHLOG = ("pubsub-cashlog-report", "topic-cashlog", "/api/v1/cashlog", "cashlog")
OPENCLOSELOG = ("pubsub-opencloselog-report", "topic-opencloselog", "/api/v1/opencloselog", "opencloselog")


#: Kugelpos' repository wording for an existing business key ("Transaction already exists…").
EXISTS_NOUN = {"tranlog": "Transaction", "cashlog": "Cashlog", "opencloselog": "OpenCloseLog"}


class BusinessDuplicate(Exception):
    """The business key already exists (Kugelpos' unique index): the effect is already there."""


#: apply(conn, data) runs inside the SQLite transaction; raise BusinessDuplicate to skip.
Applier = Callable[[sqlite3.Connection, dict[str, Any]], None]


@dataclass
class Route:
    pubsub: str
    topic: str
    path: str
    log_type: str  # "tranlog" | "cashlog" | "opencloselog" (Kugelpos' log wording)
    apply: Applier
    callback: str  # "cart" | "terminal": who gets the delivery-status callback


class Subscriber:
    """One subscriber service's pub/sub side: routes, dedup, effects, callbacks, diagnostics."""

    def __init__(
        self,
        app: FastAPI,
        config: Any,
        db: Database,
        events: EventLog,
        routes: list[Route],
        *,
        logger: logging.Logger,
        array_body_capable: bool,
    ) -> None:
        self.app = app
        self.config = config
        self.name: str = config.name
        self.db = db
        self.events = events
        self.routes = routes
        self.log = logger
        # Only report/journal return tuples in Kugelpos; stock answers proper JSONResponses.
        self.array_body = array_body_capable and config.has_defect("subscriber_array_body")
        self.no_idempotency = config.has_defect("stock_no_idempotency") and self.name == "stock"
        self.mark_first = config.has_defect("mark_before_effect")
        self.crash_every = int(config.crash_before_effect_every or 0)
        self.fail_every = int(getattr(config, "fail_effect_every", 0) or 0)
        self._writes_started = 0
        self._effects_started = 0
        self._crash_lock = threading.Lock()
        # Effects between their SQLite commit and their `applied` event (see _apply_and_record).
        self._recording = 0
        self._crashing = False
        # Concurrent deliveries of one event id (reclaim while in flight, republish racing
        # a redelivery) are serialised in-process so the second one sees the first's mark.
        self._inflight: dict[str, tuple[asyncio.Lock, int]] = {}

    # ---- wiring ------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/dapr/subscribe")
        async def subscribe() -> list[dict[str, str]]:
            return [{"pubsubname": r.pubsub, "topic": r.topic, "route": r.path} for r in self.routes]

        for route in self.routes:
            router.add_api_route(route.path, self._endpoint(route), methods=["POST"], include_in_schema=False)

        @router.get("/api/v1/diagnostics/applied")
        async def applied(since: int = 0, limit: int = 10000) -> JSONResponse:
            rows = await self.db.fetchall(
                "SELECT * FROM applied WHERE id > ? ORDER BY id LIMIT ?", (since, max(1, min(limit, 100000)))
            )
            for row in rows:
                row["payload_keys"] = json.loads(row["payload_keys"])
            last = rows[-1]["id"] if rows else since
            return JSONResponse({"service": self.name, "since": since, "last_id": last, "applied": rows})

        return router

    def _endpoint(self, route: Route) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def endpoint(request: Request) -> JSONResponse:
            return await self.handle(request, route)

        endpoint.__name__ = f"receive_{route.log_type}"
        return endpoint

    # ---- answers -----------------------------------------------------------------------

    def _answer(self, status: str, http: int, **extra: Any) -> JSONResponse:
        body = {"status": status, **extra}
        if self.array_body:
            # Kugelpos' handle_log returns (dict, code); FastAPI sends 200 + a JSON array.
            if http == 200:
                return JSONResponse(body, status_code=200)
            return JSONResponse([body, http], status_code=200)
        if status == "DROP":
            return JSONResponse(body, status_code=200)  # 2xx + DROP is how Dapr drops
        return JSONResponse(body, status_code=http)

    # ---- the handler -------------------------------------------------------------------

    async def handle(self, request: Request, route: Route) -> JSONResponse:
        try:
            envelope = json.loads(await request.body() or b"null")
        except ValueError:
            self.log.error("Invalid message body on %s", route.path)
            return self._answer("DROP", 400, message="body is not JSON")
        data = envelope.get("data") if isinstance(envelope, dict) else None
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        if not isinstance(data, dict):
            return self._answer("DROP", 400, message="CloudEvent has no JSON object in data")
        if data.get("test") == "health-check":
            return JSONResponse({"status": "SUCCESS", "operation": "health_check_drop"})
        event_id = data.get("event_id")
        if not event_id or not data.get("tenant_id"):
            self.log.error("Message has no event_id or tenant_id; dropping. %s: %s", route.log_type, dumps(data)[:500])
            return self._answer("DROP", 400, message="event_id and tenant_id are required")
        event_id = str(event_id)
        cloudevent_id = envelope.get("id") if isinstance(envelope, dict) else None
        lock, users = self._inflight.get(event_id, (asyncio.Lock(), 0))
        self._inflight[event_id] = (lock, users + 1)
        try:
            async with lock:
                return await self._process(request, route, data, event_id, cloudevent_id)
        finally:
            lock, users = self._inflight[event_id]
            if users <= 1:
                del self._inflight[event_id]
            else:
                self._inflight[event_id] = (lock, users - 1)

    async def _process(
        self, request: Request, route: Route, data: dict[str, Any], event_id: str, cloudevent_id: str | None
    ) -> JSONResponse:
        """Check → apply → mark → call back, for one event id at a time."""
        attempt = await self._count_delivery(event_id)
        dapr = get_dapr_client(request)

        # 1. check
        if self.no_idempotency:
            dedup = "disabled"
        else:
            result = await dapr.get_state_result(STATESTORE, event_id)
            if result.found:
                if self.name == "stock":
                    self.log.info("Duplicate transaction log received: %s", event_id)
                else:
                    self.log.warning("Message already processed. event_id: %s, %s: %s", event_id, route.log_type,
                                     dumps(payload_keys(data)))
                self.events.emit("duplicate_skipped", event_id=event_id, topic=route.topic, subscriber=self.name)
                return await self._finish_duplicate(request, route, data, event_id)
            if result.error:
                dedup = "error"
                self.log.error(
                    "Error checking for duplicates: %s. Proceeding with caution (duplicates possible). event_id: %s",
                    result.error, event_id,
                )
            else:
                dedup = "miss"

        # (defect) mark before the effect: a crash or failure below loses the event.
        if self.mark_first and not self.no_idempotency:
            await self._mark(dapr, event_id)

        # 2. apply (business effect + applied record, one transaction)
        await self._maybe_crash(event_id)
        try:
            applied = await self._apply_and_record(route, data, event_id, attempt, dedup, cloudevent_id)
        except Exception as exc:  # noqa: BLE001 - any processing error → RETRY answer
            self.log.error("Error processing %s: %s. event_id: %s", route.log_type, exc, event_id)
            if not await self._notify(request, route, data, event_id, "failed", f"{type(exc).__name__}: {exc}"):
                return JSONResponse({"status": "RETRY", "message": "delivery-status callback failed"}, status_code=500)
            return self._answer("RETRY", 500, message=f"{type(exc).__name__}: {exc}")
        keys = dumps({"event_id": event_id, **payload_keys(data)})
        if applied:
            if self.name == "stock":
                self.log.info("Received transaction log: %s", keys)
            else:
                self.log.info("%s received successfully. event_id: %s, %s: %s", route.log_type, event_id, route.log_type, keys)
        else:
            # Kugelpos' repository warning, then its (misleading) "received successfully" line.
            self.log.warning("%s already exists. %s", EXISTS_NOUN.get(route.log_type, route.log_type), keys)
            self.log.info("%s received successfully. event_id: %s, %s: %s", route.log_type, event_id, route.log_type, keys)
            self.events.emit("duplicate_skipped", event_id=event_id, topic=route.topic, subscriber=self.name)

        # 3. mark, then tell the publisher.
        if not self.mark_first and not self.no_idempotency:
            await self._mark(dapr, event_id)
        if not await self._notify(request, route, data, event_id, "received", None):
            # The effect and the mark are in place; a redelivery is skipped as a duplicate
            # and calls back again, which is what heals the publisher's outbox.
            # (Kugelpos too: the callback's exception escapes handle_log → a real 500.)
            return JSONResponse({"status": "RETRY", "message": "delivery-status callback failed"}, status_code=500)
        return JSONResponse({"status": "SUCCESS"})

    async def _finish_duplicate(self, request: Request, route: Route, data: dict[str, Any], event_id: str) -> JSONResponse:
        """A duplicate still reports `received`, so the publisher's outbox can settle."""
        if not await self._notify(request, route, data, event_id, "received", "Duplicate event"):
            return JSONResponse({"status": "RETRY", "message": "delivery-status callback failed"}, status_code=500)
        return JSONResponse({"status": "SUCCESS"})

    async def _apply_and_record(
        self, route: Route, data: dict[str, Any], event_id: str, attempt: int, dedup: str, cloudevent_id: str | None
    ) -> bool:
        """Effect + `applied` row (one SQLite transaction), then the `applied` event.

        Counted in `_recording` from before the first await until the event is written, so
        the crash knob, which waits for the count to drain, never exits between a commit and
        its event. (A real crash could; but then the events file — what the checkers read —
        would miss an application that happened, and a healthy crash drill would report a
        lost event that was not lost.)
        """
        self._recording += 1
        try:
            row = await self.db.write(lambda conn: self._apply_tx(conn, route, data, event_id, attempt, dedup, cloudevent_id))
            if row is not None:
                self.events.emit(
                    "applied", event_id=event_id, topic=route.topic, subscriber=self.name, attempt=attempt,
                    dedup=dedup, payload_keys=payload_keys(data), row=row,
                )
            return row is not None
        finally:
            self._recording -= 1

    def _apply_tx(
        self,
        conn: sqlite3.Connection,
        route: Route,
        data: dict[str, Any],
        event_id: str,
        attempt: int,
        dedup: str,
        cloudevent_id: str | None,
    ) -> int | None:
        """Business effect + applied row; the row id, or None when the business key already existed."""
        self._maybe_fail_write(event_id)
        conn.execute("SAVEPOINT effect")
        try:
            route.apply(conn, data)
        except BusinessDuplicate:
            conn.execute("ROLLBACK TO effect")
            conn.execute("RELEASE effect")
            return None
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO effect")
            conn.execute("RELEASE effect")
            if is_unique_violation(exc):
                return None
            raise
        conn.execute("RELEASE effect")
        cur = conn.execute(
            "INSERT INTO applied (event_id, topic, subscriber, attempt, dedup, cloudevent_id, ts, mono, payload_keys)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (event_id, route.topic, self.name, attempt, dedup, cloudevent_id, time.time(), time.monotonic(),
             dumps(payload_keys(data))),
        )
        return int(cur.lastrowid)

    async def reconcile_applied_events(self) -> int:
        """At start-up: write the `applied` event of every committed application whose event
        line is missing — the process was killed (SIGKILL, a process fault) between its
        SQLite commit and the line. The line carries the row's own times and
        `recovered: true`; without it the events file, which the checkers read, would show
        a lost event that was applied. Returns how many lines were written."""
        path = self.events.path
        if path is None:
            return 0
        total = await self.db.read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM applied").fetchone()[0]))
        if not total:
            return 0
        seen: set[int] = set()
        if path.exists():
            with open(path, "rb") as fh:
                for line in fh:
                    if b'"applied"' not in line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # a torn last line: its row is re-emitted below
                    if rec.get("kind") == "applied" and isinstance(rec.get("row"), int):
                        seen.add(rec["row"])
        if len(seen) >= total:
            return 0
        rows = await self.db.read(lambda conn: [dict(r) for r in conn.execute("SELECT * FROM applied ORDER BY id")])
        written = 0
        for row in rows:
            if row["id"] in seen:
                continue
            self.events.emit("applied", ts=row["ts"], mono=row["mono"], event_id=row["event_id"], topic=row["topic"],
                             subscriber=row["subscriber"], attempt=row["attempt"], dedup=row["dedup"],
                             payload_keys=json.loads(row["payload_keys"]), row=row["id"], recovered=True)
            written += 1
        if written:
            self.log.warning("Recovered %d applied record(s) whose event line was lost when the process stopped", written)
        return written

    async def _count_delivery(self, event_id: str) -> int:
        """How many times this app has seen the event (persisted, so it survives a crash)."""

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO deliveries (event_id, count) VALUES (?, 1)"
                " ON CONFLICT(event_id) DO UPDATE SET count = count + 1",
                (event_id,),
            )
            return int(conn.execute("SELECT count FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()[0])

        return await self.db.write(tx)

    async def _maybe_crash(self, event_id: str) -> None:
        """Knob `crash_before_effect_every`: exit hard before every Nth effect.

        Before exiting it parks every other delivery that reaches its effect and waits (up to
        CRASH_DRAIN_SECONDS) until effects already committed have written their `applied`
        events: the crash still falls between an effect and its mark (the window the seed's
        order leaves open), but never between an effect and its record.
        """
        if self.crash_every <= 0:
            return
        if self._crashing:
            await asyncio.Event().wait()  # the process is about to exit; do nothing more
        with self._crash_lock:
            self._effects_started += 1
            n = self._effects_started
        if n % self.crash_every == 0:
            self._crashing = True
            deadline = time.monotonic() + CRASH_DRAIN_SECONDS
            while self._recording and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            self.log.error("crash_before_effect_every=%d: exiting before the effect of event_id: %s", self.crash_every, event_id)
            # Written (one os.write) before the exit: another delivery in flight may have had
            # its effect without its mark, and its redelivery is the duplicate the seed allows.
            self.events.emit("crash", event_id=event_id, reason="crash_before_effect_every")
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(70)

    def _maybe_fail_write(self, event_id: str) -> None:
        """Knob `fail_effect_every`: every Nth business write raises (runs in the DB thread).

        A processing error, as when Kugelpos' MongoDB write fails: the healthy subscriber
        answers a real 500 RETRY and the redelivery (the next write) applies the event;
        under `subscriber_array_body` the 200 + array answer is acked and it is not.
        """
        if self.fail_every <= 0:
            return
        with self._crash_lock:
            self._writes_started += 1
            n = self._writes_started
        if n % self.fail_every == 0:
            raise sqlite3.OperationalError(
                f"fail_effect_every={self.fail_every}: the business write of event_id {event_id} failed (injected)")

    async def _mark(self, dapr: DaprClientHelper, event_id: str) -> None:
        started = time.monotonic()
        ok = await dapr.save_state(STATESTORE, event_id, {"event_id": event_id})
        if not ok:
            self.log.error("Failed to save state. state_id: %s", event_id)
        # The duplicate checker's evidence: whether (and when) this event's mark was written.
        self.events.emit("marked", event_id=event_id, subscriber=self.name, ok=ok, started_mono=started)

    async def _notify(
        self, request: Request, route: Route, data: dict[str, Any], event_id: str, status: str, message: str | None
    ) -> bool:
        """POST the delivery-status callback to cart (tranlog) or terminal (cash/open-close logs)."""
        base = self.config.service_urls.get(route.callback)
        if not base:
            self.log.warning("No URL for %s; delivery-status callback skipped. event_id: %s", route.callback, event_id)
            return True  # nothing to notify in a stand-alone run (tests of one service)
        tenant, store, no = data.get("tenant_id"), data.get("store_code"), data.get("terminal_no")
        terminal_id = f"{tenant}-{store}-{no}"
        if route.callback == "cart":
            path = f"/api/v1/tenants/{tenant}/stores/{store}/terminals/{no}/transactions/{data.get('transaction_no')}/delivery-status"
        else:
            path = f"/api/v1/terminals/{terminal_id}/delivery-status"
        token = jwt.create_service_token(self.name, str(tenant), self.config.secret_key)
        body = {"event_id": event_id, "service": self.name, "status": status, "message": message or ""}
        client: httpx.AsyncClient | None = getattr(request.app.state, "http", None)
        own = client is None
        client = client or httpx.AsyncClient(timeout=5.0)
        try:
            resp = await client.post(
                base.rstrip("/") + path, params={"terminal_id": terminal_id}, json=body,
                headers={"Authorization": f"Bearer {token}"}, timeout=5.0,
            )
        except httpx.HTTPError as exc:
            self.log.error("Failed to notify %s of delivery status: %s: %s. event_id: %s", route.callback, type(exc).__name__, exc, event_id)
            return False
        finally:
            if own:
                await client.aclose()
        if resp.status_code >= 300:
            self.log.error(
                "Failed to notify %s of delivery status: HTTP %d - %s. event_id: %s", route.callback, resp.status_code,
                resp.text[:300], event_id,
            )
            return False
        return True


# ---- service assembly and the parts every subscriber's query API shares --------------------


def build_subscriber_app(
    config: Any,
    schema: str,
    make_routes: Callable[[], list[Route]],
    *,
    logger: logging.Logger,
    array_body_capable: bool,
) -> tuple[FastAPI, Database, Subscriber]:
    """The common app (envelope, /health, /metrics), SQLite, Dapr helper and pub/sub routes."""
    from kugeldrill.stack.services.common.app import create_service_app, on_shutdown, on_startup
    from kugeldrill.stack.services.common.dapr_app import install_dapr
    from kugeldrill.stack.services.common.events import shared_event_log
    from kugeldrill.stack.services.common.tenants import tenant_router

    app = create_service_app(config)
    events = shared_event_log(config.name, config.events_file)
    db = Database.for_service(config.data_dir, config.name, APPLIED_SCHEMA + schema)
    install_dapr(app, config, events)
    sub = Subscriber(app, config, db, events, make_routes(), logger=logger, array_body_capable=array_body_capable)
    app.state.db = db
    app.state.subscriber = sub
    app.include_router(sub.router())
    app.include_router(tenant_router(db))
    on_startup(app, sub.reconcile_applied_events)
    on_shutdown(app, db.close)
    return app, db, sub


async def authorize_tenant(request: Request, tenant_id: str) -> Any:
    """Kugelpos auth (Bearer terminal/user/service JWT, or X-API-KEY + ?terminal_id=) for `tenant_id`."""
    from kugeldrill.stack.services.common.auth import RemoteTerminalLookup, resolve_principal
    from kugeldrill.stack.services.common.envelope import forbidden

    app = request.app
    lookup = getattr(app.state, "terminal_lookup", None)
    if lookup is None:
        lookup = app.state.terminal_lookup = RemoteTerminalLookup(app)
    principal = await resolve_principal(
        request, app.state.config.secret_key, terminal_id=request.query_params.get("terminal_id"), lookup=lookup
    )
    if principal.tenant_id != tenant_id:
        raise forbidden(f"tenant {tenant_id} does not match the authenticated tenant {principal.tenant_id}")
    return principal
