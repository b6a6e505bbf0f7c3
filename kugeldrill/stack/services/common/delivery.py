"""The publishers' delivery-status callback (docs/kugelpos-facts.md §5.4), shared by cart and terminal.

Subscribers report `received`/`failed` per event; the answer is snake_case
`{event_id, service, status, success}` inside the envelope, as Kugelpos answers.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, internal, ok


class DeliveryStatusIn(ApiModel):
    event_id: str
    service: str
    status: str
    message: str | None = None


async def apply_delivery_status(db: Database, body: DeliveryStatusIn, service_name: str) -> JSONResponse:
    """Update the outbox row; unknown event → 500 (Kugelpos' InternalErrorException)."""
    try:
        await outbox.update_delivery(db, body.event_id, body.service, body.status, body.message)
    except outbox.UnknownEvent as exc:
        raise internal(f"Delivery status not found for event_id {body.event_id}", service=service_name) from exc
    except outbox.UnknownSubscriber as exc:
        raise bad_request(f"service {body.service!r} is not a subscriber of event {body.event_id}",
                          service=service_name) from exc
    except ValueError as exc:
        raise bad_request(str(exc), service=service_name) from exc
    return ok({"event_id": body.event_id, "service": body.service, "status": body.status, "success": True},
              camel=False, message="Delivery status updated", operation="update_delivery_status")
