"""The subscribers' fault knobs: `crash_before_effect_every` and `fail_effect_every`
(ServiceConfig; stack/services/README.md, "Defect switches").

The crash knob exits the process (`os._exit(70)`) just before every Nth effect it was about
to apply. Before exiting it parks every other delivery that reaches its effect and waits (up
to CRASH_DRAIN_SECONDS) until effects already committed have written their `applied` events
(`recording()` counts them): the crash still falls between an effect and its mark (the
window the seed's order leaves open), but never between an effect and its record, which
would make the events file — what the checkers read — show a lost event that was applied.
The fail knob makes every Nth business write raise, a processing error as when Kugelpos'
MongoDB write fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator

from kugeldrill.stack.services.common.subscriber_events import SubscriberEvents

CRASH_DRAIN_SECONDS = 10.0  # the crash knob's bound on waiting for committed effects' records


class EffectKnobs:
    """The knobs of one subscriber process (0 = off)."""

    def __init__(self, crash_every: int, fail_every: int, log: logging.Logger, events: SubscriberEvents) -> None:
        self.crash_every = crash_every
        self.fail_every = fail_every
        self.log = log
        self.events = events
        self._lock = threading.Lock()
        self._writes_started = 0
        self._effects_started = 0
        self._recording = 0  # effects between their SQLite commit and their `applied` event
        self._crashing = False

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Around an effect's commit and its `applied` event: the crash knob waits for these."""
        self._recording += 1
        try:
            yield
        finally:
            self._recording -= 1

    async def maybe_crash(self, event_id: str) -> None:
        """Knob `crash_before_effect_every`: exit hard before every Nth effect."""
        if self.crash_every <= 0:
            return
        if self._crashing:
            await asyncio.Event().wait()  # the process is about to exit; do nothing more
        with self._lock:
            self._effects_started += 1
            n = self._effects_started
        if n % self.crash_every:
            return
        self._crashing = True
        deadline = time.monotonic() + CRASH_DRAIN_SECONDS
        while self._recording and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        self.log.error("crash_before_effect_every=%d: exiting before the effect of event_id: %s", self.crash_every, event_id)
        # Written (one os.write) before the exit: another delivery in flight may have had
        # its effect without its mark, and its redelivery is the duplicate the seed allows.
        self.events.crash(event_id=event_id, reason="crash_before_effect_every")
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(70)

    def maybe_fail_write(self, event_id: str) -> None:
        """Knob `fail_effect_every`: every Nth business write raises (runs in the DB thread).

        The healthy subscriber answers a real 500 RETRY and the redelivery (the next write)
        applies the event; under `subscriber_array_body` the 200 + array answer is acked and
        it is not.
        """
        if self.fail_every <= 0:
            return
        with self._lock:
            self._writes_started += 1
            n = self._writes_started
        if n % self.fail_every == 0:
            raise sqlite3.OperationalError(
                f"fail_effect_every={self.fail_every}: the business write of event_id {event_id} failed (injected)")
