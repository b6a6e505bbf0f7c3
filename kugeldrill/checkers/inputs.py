"""CheckInputs: everything the checkers may look at, with where it came from and what is missing.

Adapters fill one CheckInputs per run; checkers only read it. Each field is either
present (its source named in `sources`) or absent (the reason in `missing`), so a checker
can tell "the data say nothing went wrong" from "there were no data" and answer unknown
for the latter instead of passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.model import (
    Application,
    BreakerCall,
    BreakerTransition,
    BusinessSnapshot,
    IdempotencyMarker,
    MarkWrite,
    Op,
    OutboxEntry,
    ProcessCrash,
    Publication,
    StateUnreachable,
    StreamGroup,
)

#: The names used in `sources` / `missing`, one per kind of record.
FIELDS = (
    "ops",
    "faults",
    "breaker_transitions",
    "breaker_calls",
    "publications",
    "applications",
    "duplicate_skips",
    "state_unreachable",
    "crashes",
    "mark_writes",
    "outbox",
    "stream_groups",
    "markers",
)


@dataclass(slots=True)
class CheckInputs:
    """Normalised records of one run plus their provenance.

    duplicate_skips: (subscriber, event_id, mono) of deliveries a subscriber recognised as
    already processed (stand-in `duplicate_skipped`, Kugelpos "already processed" lines).
    notes: adapter remarks a report should show (unparsed lines, skipped records, ...).
    """

    ops: list[Op] = field(default_factory=list)
    faults: list[AppliedFault] = field(default_factory=list)  # the applied ones (each has a window)
    breaker_transitions: list[BreakerTransition] = field(default_factory=list)
    breaker_calls: list[BreakerCall] = field(default_factory=list)
    publications: list[Publication] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    duplicate_skips: list[tuple[str, str, float]] = field(default_factory=list)
    state_unreachable: list[StateUnreachable] = field(default_factory=list)
    crashes: list[ProcessCrash] = field(default_factory=list)  # services that ended abruptly by themselves
    mark_writes: list[MarkWrite] = field(default_factory=list)  # subscribers' idempotency mark writes, per event
    outbox: list[OutboxEntry] = field(default_factory=list)
    stream_groups: list[StreamGroup] = field(default_factory=list)
    markers: list[IdempotencyMarker] = field(default_factory=list)
    unapplied_faults: list[AppliedFault] = field(default_factory=list)  # due but never took effect
    t0: tuple[float, float] | None = None  # (wall, mono) of the load's first operation, from the timeline
    business_before: BusinessSnapshot | None = None  # report, journal, stock before the load
    business_after: BusinessSnapshot | None = None  # ... and after the drill (checkers/adapters/business.py)
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)  # derived indexes shared by checkers

    def has(self, name: str) -> bool:
        """True when the source of `name` was read (even if it held no records)."""
        return name in self.sources and name not in self.missing

    def mark(self, name: str, source: str) -> None:
        """Record that `name` was read from `source`."""
        self.sources[name] = source
        self.missing.pop(name, None)

    def mark_missing(self, name: str, reason: str) -> None:
        """Record that `name` could not be read, and why (only if no other source gave it)."""
        if name not in self.sources:
            self.missing[name] = reason

    def merge(self, other: "CheckInputs") -> "CheckInputs":
        """Add another adapter's records (e.g. history + timeline + stand-in events)."""
        for name in FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if not isinstance(theirs, list) and not mine:
                setattr(self, name, theirs)  # a column store (checkers.columnar, index) is kept, not copied
            elif theirs:
                if not isinstance(mine, list):
                    mine = list(mine)
                    setattr(self, name, mine)
                mine.extend(theirs)
        for name, src in other.sources.items():
            self.sources[name] = f"{self.sources[name]}; {src}" if name in self.sources else src
            self.missing.pop(name, None)
        for name, reason in other.missing.items():
            if name not in self.sources:
                self.missing.setdefault(name, reason)
        self.unapplied_faults.extend(other.unapplied_faults)
        self.t0 = self.t0 or other.t0
        self.business_before = self.business_before or other.business_before
        self.business_after = self.business_after or other.business_after
        self.notes.extend(other.notes)
        self.cache.clear()
        return self

    @property
    def clock_offset(self) -> float | None:
        """mono − wall of the run, to put wall-clock-only sources (log lines) on the monotonic axis."""
        return None if self.t0 is None else self.t0[1] - self.t0[0]

    def provenance(self) -> dict[str, Any]:
        """{"sources", "missing", "records"} for reports."""
        return {
            "sources": dict(self.sources),
            "missing": dict(self.missing),
            "records": {name: len(getattr(self, name)) for name in FIELDS},
        }
