"""What every terminal route shares: stored terminals and stores, the caller's
authorisation on a terminal, new terminal tokens, and log publication.

One `TerminalService` per app (`app.state.terminal`, reached by routes through
`Depends(terminal_service)`). A terminal's document changes only through `update()`,
one write under the terminal's lock, so concurrent lifecycle calls (open, cash, close) on
one terminal are serialised as Kugelpos' single document write serialises them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from kugeldrill.stack.services.common.auth import resolve_principal
from kugeldrill.stack.services.common.db import Database, dumps, loads
from kugeldrill.stack.services.common.envelope import forbidden, not_found
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.publisher import PublishingService, request_helper
from kugeldrill.stack.services.common.timeutil import now_iso
from kugeldrill.stack.services.common.tokens import create_terminal_token
from kugeldrill.stack.services.terminal.schemas import terminal_answer

CASH_FAILURE = "Failed to publish cash in/out log: {error}. Continuing processing..."
OPEN_CLOSE_FAILURE = "Failed to publish open/close log: {error}. Continuing processing..."

#: One log to publish: (event id, pubsub, topic, payload, Kugelpos' failure line).
Publication = tuple[str, str, str, dict[str, Any], str]


def token_claims_source(doc: dict[str, Any]) -> dict[str, Any]:
    staff = doc.get("staff") or {}
    return {**doc, "staff_id": staff.get("id"), "staff_name": staff.get("name")}


class TerminalService(PublishingService):
    """The terminal service's state shared by its routers."""

    def __init__(self, app: FastAPI, db: Database, events: EventLog, log: logging.Logger) -> None:
        super().__init__(app, db, events, log)
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def get(self, terminal_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT doc FROM terminals WHERE terminal_id = ?", (terminal_id,))
        return loads(row["doc"]) if row else None

    async def update(self, terminal_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply `change` to one terminal's document and stamp `updated_at`, in one write
        under the terminal's lock; `change` may raise to refuse (nothing is written)."""
        async with self.locks[terminal_id]:
            def upd(conn: Any) -> dict[str, Any]:
                cur = loads(conn.execute("SELECT doc FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()["doc"])
                change(cur)
                cur["updated_at"] = now_iso()
                conn.execute("UPDATE terminals SET doc = ? WHERE terminal_id = ?", (dumps(cur), terminal_id))
                return cur

            return await self.db.write(upd)

    async def lookup_by_key(self, terminal_id: str, api_key: str) -> dict[str, Any] | None:
        """The terminal whose id and API key these are (the API-key auth of every service)."""
        doc = await self.get(terminal_id)
        return doc if doc is not None and secrets.compare_digest(doc["api_key"], api_key) else None

    async def info_by_key(self, terminal_id: str, api_key: str) -> dict[str, Any] | None:
        """The API-key lookup every service's auth uses (common/auth.TerminalLookup): the
        terminal as this service answers it (snake_case), as a peer would read it."""
        doc = await self.lookup_by_key(terminal_id, api_key)
        return terminal_answer(doc, show_key=True).model_dump() if doc is not None else None

    async def store_name(self, tenant_id: str, store_code: str) -> str:
        row = await self.db.fetchone("SELECT doc FROM stores WHERE tenant_id = ? AND store_code = ?",
                                     (tenant_id, store_code))
        return (loads(row["doc"]) or {}).get("store_name", "") if row else ""

    async def for_request(self, request: Request, terminal_id: str) -> dict[str, Any]:
        """Kugelpos' terminal-endpoint auth: API key of this terminal, or a JWT of its tenant."""
        principal = await resolve_principal(request, self.config.secret_key, terminal_id=terminal_id,
                                            lookup=self.info_by_key)
        doc = await self.get(terminal_id)
        if doc is None:
            raise not_found(f"Terminal not found: {terminal_id}", service=self.name)
        if principal.tenant_id != doc["tenant_id"]:
            raise forbidden(f"terminal {terminal_id} belongs to another tenant", service=self.name)
        return doc

    def new_token_header(self, doc: dict[str, Any]) -> dict[str, str]:
        """Kugelpos' `X-New-Token` (sign-in, sign-out, open, close): the terminal's new claims."""
        return {"X-New-Token": create_terminal_token(token_claims_source(doc), self.config.secret_key)}

    async def publish_logs(self, items: list[Publication]) -> None:
        """Publish committed logs (their outbox rows are written) through one request-scoped helper."""
        helper = request_helper(self.app)
        for event_id, pubsub, topic, payload, failure in items:
            await self.publish_event(event_id=event_id, pubsub=pubsub, topic=topic, payload=payload,
                                     failure_text=failure, helper=helper)


def terminal_service(request: Request) -> TerminalService:
    """FastAPI dependency: the app's TerminalService."""
    return request.app.state.terminal
