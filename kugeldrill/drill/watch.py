"""Cheap live observation during a drill, for the console: the stand-in's new events (through
the checkers' events tail, the one parser of those files) and Locust's latest stats row."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kugeldrill.checkers.adapters.standin import EventsTail
from kugeldrill.drill.locust import read_history
from kugeldrill.reports.summary import SeriesPoint


class LiveEvents:
    """Running counts (published/applied) and each breaker's last state."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.tail = EventsTail(files)
        self.published = 0
        self.applied = 0
        self.breakers: dict[str, str] = {}

    def poll(self) -> None:
        new = self.tail.poll()
        self.published += sum(1 for p in new.publications if p.outcome == "ok")
        self.applied += len(new.applications)
        for tr in new.breaker_transitions:
            self.breakers[f"{tr.service}/{tr.breaker}".rstrip("/")] = tr.to_state


def latest_load(run_dir: Path, t0_wall: float) -> SeriesPoint | None:
    """The last Aggregated row of Locust's stats history (None before the first tick)."""
    rows = read_history(run_dir, t0_wall)
    return rows[-1] if rows else None
