"""One action of a fault, as timeline.json records it and the report draws it.

A process fault's actions (kill, pause, resume, stop, start) carry the pids before and
after and, for a start, when the process answered its health probe again; a link fault's
intermediate steps (a flap's down/up, a ramp's latency=V) carry only their time and error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class FaultEvent:
    """One action of a fault: a process action (kill, pause, resume, stop, start, with the pids
    before and after) or a link step (a flap's down/up, a ramp's latency=V). `mono` is when it
    began; a start also records when the process answered its health probe (`ready_*`)."""

    action: str
    wall: float
    mono: float
    seconds: float | None = None
    target: str | None = None
    pids_before: list[int] | None = None
    pids_after: list[int] | None = None
    outcome: str | None = None  # done | already | escalated
    detail: str | None = None
    facts: dict[str, Any] | None = None
    error: str | None = None
    ready_wall: float | None = None
    ready_mono: float | None = None
    ready_seconds: float | None = None
    ready_error: str | None = None

    @property
    def acted(self) -> bool:
        """It changed something (no error, not `already`)."""
        return self.error is None and self.outcome != "already"

    def record(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None or k == "error"}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> FaultEvent:
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        return cls(**{"wall": 0.0, "mono": 0.0, **kept})
