"""The delivery-status callback a subscriber sends its publisher (docs/kugelpos-facts.md §5.4).

Tranlogs are reported to cart (`…/tenants/{t}/stores/{s}/terminals/{n}/transactions/{no}/delivery-status`),
cash and open/close logs to terminal (`…/terminals/{t}-{s}-{n}/delivery-status`), both with
`?terminal_id=` and a 5-minute service JWT, body `{event_id, service, status, message}`,
so the publisher's outbox can settle. A callback that fails is logged and reported False:
the subscriber then answers RETRY, and the redelivery calls back again.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from kugeldrill.stack.services.common import tokens as jwt

TIMEOUT = 5.0


async def notify(client: httpx.AsyncClient | None, config: Any, log: logging.Logger, *, callback: str,
                 data: dict[str, Any], event_id: str, status: str, message: str | None) -> bool:
    """POST the delivery status to `callback` ("cart" | "terminal"); True when it was taken."""
    base = config.service_urls.get(callback)
    if not base:
        log.warning("No URL for %s; delivery-status callback skipped. event_id: %s", callback, event_id)
        return True  # nothing to notify in a stand-alone run (tests of one service)
    tenant, store, no = data.get("tenant_id"), data.get("store_code"), data.get("terminal_no")
    terminal_id = f"{tenant}-{store}-{no}"
    if callback == "cart":
        path = f"/api/v1/tenants/{tenant}/stores/{store}/terminals/{no}/transactions/{data.get('transaction_no')}/delivery-status"
    else:
        path = f"/api/v1/terminals/{terminal_id}/delivery-status"
    token = jwt.create_service_token(config.name, str(tenant), config.secret_key)
    body = {"event_id": event_id, "service": config.name, "status": status, "message": message or ""}
    own = client is None
    client = client or httpx.AsyncClient(timeout=TIMEOUT)
    try:
        resp = await client.post(base.rstrip("/") + path, params={"terminal_id": terminal_id}, json=body,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        log.error("Failed to notify %s of delivery status: %s: %s. event_id: %s", callback, type(exc).__name__, exc,
                  event_id)
        return False
    finally:
        if own:
            await client.aclose()
    if resp.status_code >= 300:
        log.error("Failed to notify %s of delivery status: HTTP %d - %s. event_id: %s", callback, resp.status_code,
                  resp.text[:300], event_id)
        return False
    return True
