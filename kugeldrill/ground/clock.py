"""Timestamps that every record of a run carries: wall time and the monotonic clock.

Wall time lets people read a report; CLOCK_MONOTONIC is shared by all processes on one
Linux machine, so Locust workers, the fault timeline and the stand-in's services can be
ordered against each other without trusting the wall clock.
"""

from __future__ import annotations

import time


def stamp() -> dict[str, float]:
    """{"wall": epoch seconds, "mono": monotonic seconds} taken together."""
    return {"wall": time.time(), "mono": time.monotonic()}
