"""Every structured event a subscriber writes (contracts §3), in one place.

A checker reads these lines as the subscriber's own record of what it did: `applied` (one
business effect committed, with its `applied` row), `duplicate_skipped` (an event whose
effect was already there: its marker, or its business key), `marked` (its idempotency mark
written, or the write failed), `crash` (the crash knob is about to exit). Evidence a checker needs about an event is added here, once, for every
subscriber.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.stack.services.common.events import EventLog


class SubscriberEvents:
    """The events of one subscriber service (`subscriber` is its name)."""

    def __init__(self, log: EventLog, subscriber: str) -> None:
        self.log = log
        self.subscriber = subscriber

    def applied(self, *, event_id: str, topic: str, attempt: int, dedup: str, payload_keys: dict[str, Any],
                row: int, **recovered: Any) -> None:
        """A committed effect (`recovered`: `ts`, `mono`, `recovered=True` when written at start-up
        for a row whose line the stopped process never wrote)."""
        self.log.emit("applied", **recovered, event_id=event_id, topic=topic, subscriber=self.subscriber,
                      attempt=attempt, dedup=dedup, payload_keys=payload_keys, row=row)

    def duplicate_skipped(self, *, event_id: str, topic: str) -> None:
        self.log.emit("duplicate_skipped", event_id=event_id, topic=topic, subscriber=self.subscriber)

    def marked(self, *, event_id: str, ok: bool, started_mono: float) -> None:
        """The mark write of `event_id`: `ok` (written, or the save failed) and when it was called —
        the duplicate checker's evidence of whether the mark was there at a redelivery."""
        self.log.emit("marked", event_id=event_id, subscriber=self.subscriber, ok=ok, started_mono=started_mono)

    def crash(self, *, event_id: str, reason: str) -> None:
        self.log.emit("crash", event_id=event_id, reason=reason)
