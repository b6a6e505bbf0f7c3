"""Fault timeline (`timeline.json`, contracts §5) -> AppliedFault records: its one reader.

The records are chaos' own (`AppliedFault.from_record` reads what `record()` wrote); this
adapter splits them into the faults that took effect (each with a window the checkers
judge against) and those that never did (noted, and kept for the report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.inputs import CheckInputs


def parse_timeline(doc: dict[str, Any], notes: list[str] | None = None,
                   unapplied: list[AppliedFault] | None = None) -> list[AppliedFault]:
    """Faults that were actually applied; the others are noted (and kept in `unapplied`)."""
    out: list[AppliedFault] = []
    for i, entry in enumerate(doc.get("faults", [])):
        try:
            fault = AppliedFault.from_record(entry)
        except (TypeError, ValueError, AttributeError) as exc:
            if notes is not None:
                notes.append(f"timeline entry {i} is not a fault record ({exc}); left out")
            continue
        if fault.applied:
            out.append(fault)
            continue
        if notes is not None:
            notes.append(f"fault {fault.id} on {fault.subject} was not applied: {fault.error}")
        if unapplied is not None:
            unapplied.append(fault)
    return out


def load_timeline(path: str | Path) -> CheckInputs:
    """CheckInputs with `faults` and the run's clock (t0); a missing or unreadable file is marked missing."""
    inputs = CheckInputs()
    path = Path(path)
    if not path.is_file():
        inputs.mark_missing("faults", f"no timeline at {path}")
        return inputs
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        inputs.mark_missing("faults", f"unreadable timeline {path}: {exc}")
        return inputs
    inputs.faults = parse_timeline(doc, inputs.notes, inputs.unapplied_faults)
    try:
        inputs.t0 = (float(doc["t0_wall"]), float(doc["t0_mono"]))
    except (KeyError, TypeError, ValueError):
        inputs.notes.append(f"timeline {path} has no t0 (t0_wall, t0_mono)")
    inputs.mark("faults", str(path))
    return inputs
