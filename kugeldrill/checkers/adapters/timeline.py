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
                notes.append(f"fault {f.get('id')} on {f.get('link') or f.get('process')} was not applied: "
                             f"{f.get('error')}")
            if unapplied is not None:
                unapplied.append(UnappliedFault(
                    fault_id=str(f.get("id", "")), link=str(f.get("link") or ""), kind=str(f.get("kind", "")),
                    at=float(f.get("at") or 0.0), params=dict(f.get("params") or {}),
                    status=str(f.get("status") or ""), error=f.get("error"), process=f.get("process")))
            continue
        window = FaultWindow(
            fault_id=str(f.get("id", "")),
            link=str(f.get("link") or ""),
            kind=str(f.get("kind", "")),
            start_mono=float(f["applied_mono"]),
            start_wall=float(f.get("applied_wall") or 0.0),
            end_mono=None if f.get("healed_mono") is None else float(f["healed_mono"]),
            end_wall=None if f.get("healed_wall") is None else float(f["healed_wall"]),
            params=dict(f.get("params") or {}),
            status=str(f.get("status") or ""),
            error=f.get("error"),
        )
        if f.get("process"):
            _process_facts(window, f)
        out.append(window)
    return out


def _process_facts(window: FaultWindow, f: dict[str, Any]) -> None:
    """Target, kill instants, readiness and (for Redis) whether the markers were lost."""
    window.process = str(f["process"])
    events = [e for e in f.get("events") or [] if isinstance(e, dict)]
    window.actions = [dict(e) for e in events]
    window.observations = [dict(o) for o in f.get("observations") or [] if isinstance(o, dict)]
    # A kill's instant is when the action returned — the process was gone by then. (It began
    # earlier: checks and bookkeeping come before the signal, and the process works on
    # meanwhile; an effect it commits then is still before its death.)
    for e in events:
        if e.get("error"):
            continue
        if e.get("action") == "kill" or (e.get("action") == "stop" and e.get("outcome") == "escalated"):
            window.kills.append(float(e["mono"]) + float(e.get("seconds") or 0.0))
    # Not serving until the restarted process answers: the window lasts until then.
    ready = [float(e["ready_mono"]) for e in events if e.get("action") == "start" and e.get("ready_mono")]
    if window.end_mono is not None and ready and max(ready) > window.end_mono:
        shift = max(ready) - window.end_mono
        window.end_mono = max(ready)
        window.end_wall = (window.end_wall or 0.0) + shift
    window.state_lost = state_lost(f)


def state_lost(f: dict[str, Any]) -> bool | None:
    """For a Redis kill/restart: did idempotency markers vanish? From the observer's readings:
    markers before vs how many of exactly those survived (None: not measured, or not a
    Redis restart)."""
    if f.get("process") != "redis" or f.get("kind") not in ("kill", "restart"):
        return None
    before: int | None = None
    lost: bool | None = None
    for obs in f.get("observations") or []:
        data = obs.get("data") or {}
        if obs.get("phase") == "before" and data.get("markers_total") is not None:
            before = int(data["markers_total"])
        elif obs.get("phase") == "after" and before is not None:
            survived = (data.get("survived") or {}).get("markers_survived")
            if survived is not None:
                lost = bool(lost) or int(survived) < before
    return lost


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
