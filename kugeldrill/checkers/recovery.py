"""What each process fault did to the events in flight, and how the system came back — numbers.

Not a verdict (the fan-out and duplicate checkers judge); the report's evidence of
recovery after a kill, pause or restart:

* in flight at the fault: (event, subscriber) pairs whose event was published before the
  fault started (or before one of its kills) but not yet applied by that subscriber then —
  what the fault could lose;
* of those, how many were applied after the fault (recovered) and how many never (lost);
  how many were applied only after the fault had ended;
* publications during the fault that failed, and republishes after it (the publishers'
  outbox bringing back what the fault swallowed);
* duplicates straddling the fault (one application before it, another after).

Pairs are counted on event ids; a topic's expected subscribers come from the fan-out
policy (EXPECTED_SUBSCRIBERS). A fault on one app's process or sidecar concerns only that
app's pairs: a subscriber's own deliveries, or the events a publisher published; a Redis
fault concerns them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.model import EXPECTED_SUBSCRIBERS


def process_fault_recovery(inputs: CheckInputs,
                           expected: Mapping[str, Sequence[str]] = EXPECTED_SUBSCRIBERS) -> list[dict[str, Any]]:
    """One dict of counts per process fault in `inputs.faults` (empty when there is none)."""
    faults = [f for f in inputs.faults if f.process is not None]
    if not faults:
        return []
    first_pub: dict[str, tuple[float, str, str]] = {}  # event id -> (first ok publication mono, topic, publisher)
    pubs: list[tuple[float, str, str]] = []  # (mono, outcome, attempt)
    for p in inputs.publications:
        pubs.append((p.mono, p.outcome, p.attempt))
        if p.outcome == "ok" and p.event_id and (p.event_id not in first_pub or p.mono < first_pub[p.event_id][0]):
            first_pub[p.event_id] = (p.mono, p.topic, p.publisher)
    applied: dict[tuple[str, str], list[float]] = defaultdict(list)  # (event, subscriber) -> monos
    for a in inputs.applications:
        if a.event_id:
            applied[(a.event_id, a.subscriber)].append(a.mono)
    for monos in applied.values():
        monos.sort()
    return [_one(f, first_pub, pubs, applied, expected) for f in faults]


def _one(f: AppliedFault, first_pub: Mapping[str, tuple[float, str, str]], pubs: list[tuple[float, str, str]],
         applied: Mapping[tuple[str, str], list[float]], expected: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    start = f.start_mono
    end = f.end_mono if f.end_mono is not None else float("inf")
    instants = sorted({start, *f.kills})
    subscribers = {s for subs in expected.values() for s in subs}
    only_sub = f.app if f.process_kind in ("app", "sidecar") and f.app in subscribers else None
    only_pub = f.app if f.process_kind in ("app", "sidecar") and only_sub is None else None
    in_flight: dict[tuple[str, str], float] = {}  # pair -> the first instant it was in flight at
    duplicates = 0
    for event_id, (mono, topic, publisher) in first_pub.items():
        if mono >= instants[-1] or (only_pub is not None and publisher != only_pub):
            continue
        for sub in expected.get(topic, ()):
            if only_sub is not None and sub != only_sub:
                continue
            monos = applied.get((event_id, sub), [])
            for instant in instants:
                if mono < instant and not any(m < instant for m in monos):
                    in_flight[(event_id, sub)] = instant
                    break
            if any(m < start for m in monos) and any(m >= start for m in monos):
                duplicates += 1
    recovered = recovered_after_end = lost = 0
    for pair, instant in in_flight.items():
        after = [m for m in applied.get(pair, []) if m >= instant]
        if after:
            recovered += 1
            recovered_after_end += after[0] > end
        else:
            lost += 1
    return {
        "fault_id": f.fault_id, "process": f.process, "kind": f.kind,
        "in_flight": len(in_flight), "recovered": recovered, "recovered_after_fault_end": recovered_after_end,
        "lost": lost, "duplicated_across_fault": duplicates,
        "publish_failed_during": sum(1 for m, o, _ in pubs if start <= m <= end and o != "ok"),
        "republished_after": sum(1 for m, o, a in pubs if m > end and o == "ok" and a == "republish"),
        "kills": len(f.kills), "state_lost": f.state_lost,
    }
