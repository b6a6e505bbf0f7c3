"""The report's pictures of a run, built from what was already read: the checkers' typed inputs
(timeline, events, logs — each parsed once, by its adapter) and Locust's CSV (parsed by
kugeldrill.drill.locust). Nothing here opens a run-folder file of its own.

Tolerant of partial data: an interrupted run still gets charts of what was gathered.
"""

from __future__ import annotations

import math
from pathlib import Path

from kugeldrill.chaos.record import AppliedFault, FaultStatus
from kugeldrill.checkers.columns import rows
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.drill.locust import read_history, read_totals
from kugeldrill.reports.summary import BreakerPoint, EventBucket, EventTotals, RunSummary


def fill_load(summary: RunSummary, run_dir: Path) -> None:
    """Series, totals and per-endpoint rows from Locust's CSV (kept as they are when absent)."""
    series = read_history(run_dir, summary.t0_wall)
    if series:
        summary.series = series
    totals, endpoints = read_totals(run_dir)
    if totals is not None:
        summary.totals, summary.endpoints = totals, endpoints


def shown_faults(inputs: CheckInputs, t0_mono: float) -> list[AppliedFault]:
    """Applied faults, and ones that failed to apply (shown where they were due); pending and
    skipped ones (the run stopped before them) have nothing to shade. In time order."""
    shown = list(inputs.faults) + [u for u in inputs.unapplied_faults
                                   if u.status not in (FaultStatus.PENDING, FaultStatus.SKIPPED)]
    return sorted(shown, key=lambda f: f.since(t0_mono)[0])


def breaker_points(inputs: CheckInputs, t0_mono: float, until: float = math.inf) -> list[BreakerPoint]:
    """Breaker transitions up to `until` (seconds since t0), in time order."""
    out = [BreakerPoint(service=t.service, breaker=t.breaker, t=round(t.mono - t0_mono, 3), from_state=t.from_state,
                        to_state=t.to_state, failures=t.failures, reason=t.reason)
           for t in inputs.breaker_transitions]
    return sorted((p for p in out if p.t <= until), key=lambda p: p.t)


def event_counts(inputs: CheckInputs, t0_mono: float, until: float = math.inf
                 ) -> tuple[EventTotals | None, list[EventBucket]]:
    """Totals and per-second counts of publications, applications and recognised duplicates.

    None when the source records no publications or applications at all (a real target's
    logs): the report then says "not recorded" instead of zeros.
    """
    if not inputs.has("publications") and not inputs.has("applications"):
        return None, []
    totals = EventTotals()
    buckets: dict[int, EventBucket] = {}

    def bump(mono: float, key: str) -> None:
        t = mono - t0_mono
        if t > until:
            return
        sec = math.floor(t)
        bucket = buckets.get(sec)
        if bucket is None:
            bucket = buckets[sec] = EventBucket(t=sec + 0.5)
        setattr(bucket, key, getattr(bucket, key) + 1)

    for mono, outcome, attempt in rows(inputs.publications, "mono", "outcome", "attempt"):
        if outcome == "ok":
            totals.published += 1
            bump(mono, "republished" if attempt == "republish" else "published")
        else:
            totals.publish_failed += 1
    for mono, _sub in rows(inputs.applications, "mono", "subscriber"):
        totals.applied += 1
        bump(mono, "applied")
    for _sub, _eid, mono in inputs.duplicate_skips:
        totals.duplicates_skipped += 1
        bump(mono, "duplicates")
    # Before t0 is provisioning (opens publish too); the chart starts with the load.
    return totals, [buckets[s] for s in sorted(buckets) if s >= 0]


def fill_from_inputs(summary: RunSummary, inputs: CheckInputs, until: float = math.inf) -> None:
    """Faults, breaker transitions and event counts of the summary from the checkers' inputs.

    `until` (seconds since t0) leaves out what happened after it, e.g. breakers tripping
    while the stack was being stopped (not part of the drill).
    """
    summary.faults = shown_faults(inputs, summary.t0_mono)
    summary.breaker_transitions = breaker_points(inputs, summary.t0_mono, until)
    summary.events, summary.event_series = event_counts(inputs, summary.t0_mono, until)
