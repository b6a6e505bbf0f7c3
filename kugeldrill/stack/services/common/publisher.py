"""Publishing after the local commit, and the republish job, for cart and terminal.

Seed: a failed publish skips the event and logs it ("イベント配信スキップ、ログ記録"); the
HTTP call that produced it still succeeds. Kugelpos publishes inline after the Mongo
commit and relies on a republish job for anything not `delivered`; the stand-in does the
same through the process-wide DaprClientHelper (its breaker, retries and `publish`
structured events), with the interval and minimum age taken from ServiceConfig so drills
can shorten Kugelpos' 5 minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.app import add_background_job, add_health_check, background_running, on_shutdown
from kugeldrill.stack.services.common.dapr_app import install_dapr
from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.events import EventLog, payload_keys, shared_event_log
from kugeldrill.stack.services.common.settings import ServiceConfig

# Kugelpos' windows (docs/kugelpos-facts.md §3.3): republish for 24 h, mark `failed` after 15 min.
REPUBLISH_WINDOW_SECONDS = 24 * 3600
FAILED_AFTER_SECONDS = 15 * 60


@dataclass(frozen=True)
class RepublishFlavor:
    """Kugelpos' log wording differs between cart (tranlog) and terminal (terminallog)."""

    noun: str  # "tranlogs" / "terminallogs"
    start_finish: bool  # cart logs Start/Finished lines
    per_event: bool  # terminal logs "Republished <topic kind>: event_id-><id>"


TRANLOG = RepublishFlavor("tranlogs", True, False)
TERMINALLOG = RepublishFlavor("terminallogs", False, True)


def _helper(app: FastAPI, scoped: Any = None) -> Any:
    if scoped is not None:
        return scoped
    helper = getattr(app.state, "dapr", None)
    return helper.scoped() if helper is not None else None


def request_helper(app: FastAPI) -> Any:
    """The helper one request (or one job run) uses for all its publishes: the shared one,
    or under `breaker_per_request` one with its own fresh breaker (Kugelpos' per-request
    PubsubManager). None when the service has no sidecar."""
    return _helper(app)


async def publish_event(
    app: FastAPI,
    db: Database,
    events: EventLog | None,
    logger: logging.Logger,
    *,
    event_id: str,
    pubsub: str,
    topic: str,
    payload: dict[str, Any],
    failure_text: str,
    attempt: str = "initial",
    helper: Any = None,
) -> bool:
    """Publish one outbox event; never raises. `failure_text` is Kugelpos' ERROR line, with
    `{error}` replaced by `Failed to publish message to <pubsub>/<topic>`."""
    error = f"Failed to publish message to {pubsub}/{topic}"
    ok = False
    try:
        client = _helper(app, helper)
        if client is None:
            # No sidecar configured: the event stays in the outbox as failed.
            if events is not None:
                events.emit("publish", event_id=event_id, pubsub=pubsub, topic=topic, outcome="failed",
                            attempt=attempt, payload_keys=payload_keys(payload))
        else:
            ok = await client.publish_event(pubsub, topic, payload, attempt=attempt)
    except Exception as exc:  # noqa: BLE001 - a publish problem must never fail the sale
        logger.exception("unexpected error publishing %s: %s", event_id, exc)
    try:
        await outbox.record_publish(db, event_id, ok, None if ok else error)
    except Exception:  # noqa: BLE001
        logger.exception("could not record the publish outcome of %s", event_id)
    if not ok:
        logger.error(failure_text.format(error=error))
    return ok


async def republish_once(
    app: FastAPI,
    db: Database,
    events: EventLog | None,
    logger: logging.Logger,
    flavor: RepublishFlavor,
    *,
    min_age_seconds: float,
    window_seconds: float = REPUBLISH_WINDOW_SECONDS,
    failed_after_seconds: float = FAILED_AFTER_SECONDS,
) -> int:
    """One run of the republish job; returns how many events were published again."""
    rows = await outbox.undelivered(db, within_seconds=window_seconds)
    if not rows:
        return 0
    logger.warning("Undelivered %s found: %d", flavor.noun, len(rows))
    if flavor.start_finish:
        logger.info("Start republishing undelivered tranlog messages...")
    helper = _helper(app)  # one helper (and breaker, under breaker_per_request) per run
    now = time.time()
    count = 0
    for row in rows:
        services = row["services"]
        if services and all(s.get("status") == "received" for s in services.values()):
            await outbox.set_status(db, row["event_id"], "delivered")
            continue
        age = now - row["created_at"]
        if age < min_age_seconds:
            continue
        if age > failed_after_seconds and row["status"] != "failed":
            await outbox.set_status(db, row["event_id"], "failed", f"undelivered for more than {failed_after_seconds:.0f} s")
        ok = await publish_event(
            app, db, events, logger, event_id=row["event_id"], pubsub=row["pubsub"], topic=row["topic"],
            payload=row["payload"], attempt="republish", helper=helper,
            failure_text="Failed to republish " + row["event_id"] + ": {error}",
        )
        if ok:
            count += 1
            if flavor.per_event:
                kind = "cashlog" if "cash" in row["topic"] else "opencloselog"
                logger.info("Republished %s: event_id->%s", kind, row["event_id"])
    if flavor.start_finish:
        logger.info("Finished republishing undelivered tranlog messages.")
    return count


async def republish_loop(app: FastAPI, db: Database, events: EventLog | None, logger: logging.Logger,
                         flavor: RepublishFlavor) -> None:
    """The background job: every `republish_interval_seconds`, one `republish_once` run."""
    config = app.state.config
    if config.republish_interval_seconds <= 0:
        logger.info("republish job disabled (republish_interval_seconds = %s)", config.republish_interval_seconds)
        return
    while True:
        await asyncio.sleep(config.republish_interval_seconds)
        try:
            await republish_once(app, db, events, logger, flavor, min_age_seconds=config.republish_min_age_seconds)
        except Exception:  # noqa: BLE001 - the next run must still happen
            logger.exception("republish run failed")


class PublishingService:
    """What a publisher's routes share (cart's CartService, terminal's TerminalService): the
    app, its config, database (with the outbox), structured events and Kugelpos logger, and
    publishing a committed outbox event."""

    def __init__(self, app: FastAPI, db: Database, events: EventLog, log: logging.Logger) -> None:
        self.app = app
        self.config: ServiceConfig = app.state.config
        self.name: str = self.config.name
        self.db = db
        self.events = events
        self.log = log

    async def publish_event(self, *, event_id: str, pubsub: str, topic: str, payload: dict[str, Any],
                            failure_text: str, helper: Any = None) -> bool:
        """Publish one event whose outbox row is committed; never raises (see `publish_event`)."""
        return await publish_event(self.app, self.db, self.events, self.log, event_id=event_id, pubsub=pubsub,
                                   topic=topic, payload=payload, failure_text=failure_text, helper=helper)


def mount_outbox_diagnostics(app: FastAPI, db: Database) -> None:
    """`GET /api/v1/diagnostics/outbox?status=&since=&limit=` (contracts §3), read-only."""
    from fastapi.responses import JSONResponse

    @app.get("/api/v1/diagnostics/outbox")
    async def outbox_diagnostics(status: str | None = None, since: float | None = None, limit: int = 10000) -> JSONResponse:
        data = await outbox.diagnostics(db, status=status, since=since, limit=max(1, min(limit, 100000)))
        data["service"] = app.state.config.name
        return JSONResponse(data)


def install_publisher(app: FastAPI, config: ServiceConfig, schema: str, logger: logging.Logger,
                      flavor: RepublishFlavor) -> tuple[Database, EventLog]:
    """What cart and terminal set up alike as publishers: their database (with the outbox,
    closed on shutdown), the structured event log, the Dapr client when a sidecar is
    configured, the outbox diagnostics, and the republish job with its health check."""
    db = Database.for_service(config.data_dir, config.name, schema)
    events = shared_event_log(config.name, config.events_file)
    app.state.db = db
    if config.dapr_url:
        install_dapr(app, config, events)
    on_shutdown(app, db.close)
    mount_outbox_diagnostics(app, db)
    add_background_job(app, "republish", lambda: republish_loop(app, db, events, logger, flavor))

    async def _jobs() -> dict[str, Any]:
        return {"status": "healthy" if background_running(app) else "unhealthy", "details": {"jobs": ["republish"]}}

    add_health_check(app, "background_jobs", _jobs)
    return db, events
