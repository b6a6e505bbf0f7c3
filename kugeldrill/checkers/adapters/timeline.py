"""Fault timeline (`timeline.json`, contracts §5) -> FaultWindow records: its one reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import FaultWindow, UnappliedFault


def parse_timeline(doc: dict[str, Any], notes: list[str] | None = None,
                   unapplied: list[UnappliedFault] | None = None) -> list[FaultWindow]:
    """Faults that were actually applied; the others are noted (and kept in `unapplied`)."""
    out: list[FaultWindow] = []
    for f in doc.get("faults", []):
        if f.get("applied_mono") is None:
            if notes is not None:
                notes.append(f"fault {f.get('id')} on {f.get('link')} was not applied: {f.get('error')}")
            if unapplied is not None:
                unapplied.append(UnappliedFault(
                    fault_id=str(f.get("id", "")), link=str(f.get("link", "")), kind=str(f.get("kind", "")),
                    at=float(f.get("at") or 0.0), params=dict(f.get("params") or {}),
                    status=str(f.get("status") or ""), error=f.get("error")))
            continue
        out.append(
            FaultWindow(
                fault_id=str(f.get("id", "")),
                link=str(f.get("link", "")),
                kind=str(f.get("kind", "")),
                start_mono=float(f["applied_mono"]),
                start_wall=float(f.get("applied_wall") or 0.0),
                end_mono=None if f.get("healed_mono") is None else float(f["healed_mono"]),
                end_wall=None if f.get("healed_wall") is None else float(f["healed_wall"]),
                params=dict(f.get("params") or {}),
                status=str(f.get("status") or ""),
                error=f.get("error"),
            )
        )
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
