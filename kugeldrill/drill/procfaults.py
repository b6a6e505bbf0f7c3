"""The report's numbers for process faults: Redis before / after / at the end, and recovery.

For every process fault of the run: what its observations measured in Redis just before
it and right after the restart (recorded in the timeline, read by its adapter), what
Redis holds now that the system is quiet again, what was lost in between (before −
survived), and the recovery counts of `kugeldrill.checkers.recovery` (events in flight,
recovered, lost, republished).
"""

from __future__ import annotations

from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.recovery import process_fault_recovery
from kugeldrill.drill.observe import read_inventory
from kugeldrill.reports.summary import ProcessFaultReport

# (total before the fault, how many of exactly those the "after" reading still found)
LOSS_KEYS = {"markers_total": "markers_survived", "stream_entries_total": "stream_entries_survived",
             "groups_total": "groups_survived", "pending_total": "pending_survived"}


def _observation(observations: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    for obs in observations:
        if obs.get("phase") == phase and not (obs.get("data") or {}).get("error"):
            return obs.get("data")
    return None


def redis_losses(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, int] | None:
    """What the restart took away: before − survived, for markers, stream entries, consumer
    groups and pending entries; None without both readings."""
    survived = (after or {}).get("survived")
    if not before or not survived or survived.get("error"):
        return None
    return {k: int(before.get(k) or 0) - int(survived.get(v) or 0) for k, v in LOSS_KEYS.items()}


def process_fault_summary(inputs: CheckInputs, redis_url: str | None,
                          allow_hosts: tuple[str, ...] = ()) -> list[ProcessFaultReport]:
    """One report per applied process fault: recovery counts and (Redis) inventories."""
    faults = [f for f in inputs.faults if f.process]
    recovery = {r["fault_id"]: r for r in process_fault_recovery(inputs)}
    end = read_inventory(redis_url, allow_hosts) if redis_url and any(f.process == "redis" for f in faults) else None
    out = []
    for f in faults:
        report = ProcessFaultReport(id=f.fault_id, process=str(f.process), kind=f.kind, recovery=recovery.get(f.fault_id))
        if f.process == "redis":
            before, after = _observation(f.observations, "before"), _observation(f.observations, "after")
            report.redis = {"before": before, "after_restart": after, "end": end, "lost": redis_losses(before, after)}
        out.append(report)
    return out
