"""The seed's idempotent subscriber, shared by report, journal and stock.

Seed pattern (冪等性保証パターン): check `event_id` in `statestore` → apply → mark. When the
state store cannot be read, apply anyway (the seed tolerates duplicates then: "Redis障害:
ステートストアフォールバック、重複処理許容") and say so (log + `applied` event with
`dedup: "error"`). Each application is written to the service's `applied` table in the
same SQLite transaction as its business effect (common/applied.py), so
`GET /api/v1/diagnostics/applied` is exact ground truth: an event counted there did change
the business data, once per row.

Answers follow Dapr's contract (docs/dapr-contract.md §4): 200 `{"status":"SUCCESS"}` when done or a
duplicate, 200 `{"status":"DROP"}` for a message that can never be processed, a real HTTP
500 `{"status":"RETRY"}` to get a redelivery. The defect switches reproduce Kugelpos where
it differs (docs/kugelpos-facts.md §5.2–5.3, Surprises 1–3): see stack/services/README.md. The parts:
the events it writes (subscriber_events.py), the `applied` table (applied.py), the fault
knobs (effect_knobs.py), the delivery-status callback (callback.py), the app around it
(subscriber_app.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.applied import Applier, AppliedStore
from kugeldrill.stack.services.common.callback import notify
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper, get_dapr_client
from kugeldrill.stack.services.common.db import Database, dumps
from kugeldrill.stack.services.common.effect_knobs import EffectKnobs
from kugeldrill.stack.services.common.events import EventLog, payload_keys
from kugeldrill.stack.services.common.subscriber_events import SubscriberEvents

STATESTORE = "statestore"

#: Kugelpos' pub/sub components and topics (docs/kugelpos-facts.md §5.1).
TRANLOG = ("pubsub-tranlog-report", "topic-tranlog", "/api/v1/tranlog", "tranlog")
CASHLOG = ("pubsub-cashlog-report", "topic-cashlog", "/api/v1/cashlog", "cashlog")
OPENCLOSELOG = ("pubsub-opencloselog-report", "topic-opencloselog", "/api/v1/opencloselog", "opencloselog")

#: Kugelpos' repository wording for an existing business key ("Transaction already exists…").
EXISTS_NOUN = {"tranlog": "Transaction", "cashlog": "Cashlog", "opencloselog": "OpenCloseLog"}


@dataclass
class Route:
    pubsub: str
    topic: str
    path: str
    log_type: str  # "tranlog" | "cashlog" | "opencloselog" (Kugelpos' log wording)
    apply: Applier
    callback: str  # "cart" | "terminal": who gets the delivery-status callback


class Subscriber:
    """One subscriber service's pub/sub side: dedup, effects, marks and callbacks."""

    def __init__(self, app: FastAPI, config: Any, db: Database, events: EventLog, routes: list[Route], *,
                 logger: logging.Logger, array_body_capable: bool) -> None:
        self.app = app
        self.config = config
        self.name: str = config.name
        self.db = db
        self.routes = routes
        self.log = logger
        self.events = SubscriberEvents(events, self.name)
        self.applied = AppliedStore(db, self.name, self.events)
        self.knobs = EffectKnobs(int(config.crash_before_effect_every or 0), int(getattr(config, "fail_effect_every", 0) or 0),
                                 logger, self.events)
        # Only report/journal return tuples in Kugelpos; stock answers proper JSONResponses.
        self.array_body = array_body_capable and config.has_defect("subscriber_array_body")
        self.no_idempotency = config.has_defect("stock_no_idempotency") and self.name == "stock"
        self.mark_first = config.has_defect("mark_before_effect")
        # Concurrent deliveries of one event id (reclaim while in flight, republish racing
        # a redelivery) are serialised in-process so the second one sees the first's mark.
        self._inflight: dict[str, tuple[asyncio.Lock, int]] = {}

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

    async def handle(self, request: Request, route: Route) -> JSONResponse:
        """One delivery: drop what can never be processed, then process it, one per event id at a time."""
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
        attempt = await self.applied.count_delivery(event_id)
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
                self.events.duplicate_skipped(event_id=event_id, topic=route.topic)
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
        await self.knobs.maybe_crash(event_id)
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
            self.events.duplicate_skipped(event_id=event_id, topic=route.topic)

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
        """Effect + `applied` row (one SQLite transaction), then the `applied` event; False when
        the business key already existed. Counted by the crash knob's `recording()` from
        before the first await until the event is written, so the knob never exits between a
        commit and its event."""
        with self.knobs.recording():
            def tx(conn: Any) -> int | None:
                self.knobs.maybe_fail_write(event_id)
                return self.applied.apply_tx(conn, route.apply, route.topic, data, event_id, attempt, dedup,
                                             cloudevent_id)

            row = await self.db.write(tx)
            if row is not None:
                self.events.applied(event_id=event_id, topic=route.topic, attempt=attempt, dedup=dedup,
                                    payload_keys=payload_keys(data), row=row)
            return row is not None

    async def _mark(self, dapr: DaprClientHelper, event_id: str) -> None:
        started = time.monotonic()
        ok = await dapr.save_state(STATESTORE, event_id, {"event_id": event_id})
        if not ok:
            self.log.error("Failed to save state. state_id: %s", event_id)
        # The duplicate checker's evidence: whether (and when) this event's mark was written.
        self.events.marked(event_id=event_id, ok=ok, started_mono=started)

    async def _notify(self, request: Request, route: Route, data: dict[str, Any], event_id: str, status: str,
                      message: str | None) -> bool:
        return await notify(getattr(request.app.state, "http", None), self.config, self.log, callback=route.callback,
                            data=data, event_id=event_id, status=status, message=message)
