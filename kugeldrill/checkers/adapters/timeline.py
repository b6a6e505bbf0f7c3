"""Fault timeline (`timeline.json`, contracts §5) -> FaultWindow records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import FaultWindow


def parse_timeline(doc: dict[str, Any], notes: list[str] | None = None) -> list[FaultWindow]:
    """Faults that were actually applied; ones with an error or never applied are noted, not used."""
    out: list[FaultWindow] = []
    for f in doc.get("faults", []):
        if f.get("applied_mono") is None:
            if notes is not None:
                notes.append(f"fault {f.get('id')} on {f.get('link')} was not applied: {f.get('error')}")
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
            )
        )
    return out


def load_timeline(path: str | Path) -> CheckInputs:
    """CheckInputs with `faults`; a missing or unreadable file is marked missing."""
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
    inputs.faults = parse_timeline(doc, inputs.notes)
    inputs.mark("faults", str(path))
    return inputs


def clock_offset(path: str | Path) -> float | None:
    """mono − wall of the run (from t0), to put wall-clock-only sources on the monotonic axis."""
    try:
        doc = json.loads(Path(path).read_text())
        return float(doc["t0_mono"]) - float(doc["t0_wall"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
