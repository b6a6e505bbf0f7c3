"""Turning a run folder's raw files into the RunSummary's chart data.

Used twice: at the end of a drill, and by `kugeldrill report RUN_DIR` to re-render
later. Everything here reads files only (Locust CSV, timeline.json, events/*.jsonl) and
tolerates missing or torn files, because a partial run (Ctrl-C, crash) must still
produce a report of what was gathered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kugeldrill.drill.locust import read_history, read_totals
from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.reports.summary import RunSummary

_STATES = {"closed": "CLOSED", "open": "OPEN", "half_open": "HALF_OPEN", "half-open": "HALF_OPEN"}


def _state(value: Any) -> str:
    text = str(value or "")
    return _STATES.get(text.lower(), text.upper())


def read_timeline(run_dir: Path, t0_mono: float) -> list[dict[str, Any]]:
    """Fault windows from timeline.json, in seconds since t0 (end None: never healed)."""
    path = run_dir / "timeline.json"
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    out = []
    for f in doc.get("faults", []):
        if f.get("applied_mono") is None:
            if f.get("status") in ("pending", "skipped"):
                continue  # never applied (run stopped before it): nothing to shade
            start = float(f.get("at") or 0.0)
        else:
            start = float(f["applied_mono"]) - t0_mono
        end = float(f["healed_mono"]) - t0_mono if f.get("healed_mono") is not None else None
        out.append({"id": f.get("id"), "link": f.get("link"), "kind": f.get("kind"), "params": f.get("params") or {},
                    "start": round(start, 3), "end": None if end is None else round(end, 3),
                    "error": f.get("error"), "status": f.get("status")})
    return out


def event_files(run_dir: Path, live: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """The copied events/*.jsonl of the run folder, else the stack's live files."""
    copied = {p.stem: p for p in sorted((run_dir / "events").glob("*.jsonl"))} if (run_dir / "events").is_dir() else {}
    if copied:
        return copied
    return {k: Path(v) for k, v in (live or {}).items() if Path(v).exists()}


def read_breakers_and_counts(files: Mapping[str, Path], t0_mono: float,
                             buckets: dict[int, dict[str, float]] | None = None
                             ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Breaker transitions (t since t0) and published/applied counts from stand-in events.

    `buckets`, when given, is filled with per-second counts (published, republished,
    applied, duplicates) — the picture of republish amplification after a fault.
    """
    transitions: list[dict[str, Any]] = []
    counts = {"published": 0, "publish_failed": 0, "applied": 0, "duplicates_skipped": 0}

    def bump(rec: Mapping[str, Any], key: str) -> None:
        if buckets is not None:
            sec = math.floor(float(rec.get("mono", 0.0)) - t0_mono)
            buckets.setdefault(sec, {"published": 0, "republished": 0, "applied": 0, "duplicates": 0})[key] += 1

    for _app, path in files.items():
        try:
            for rec in read_jsonl(path):
                kind = rec.get("kind")
                if kind == "breaker":
                    transitions.append({"service": rec.get("service"), "breaker": str(rec.get("breaker", "")),
                                        "t": round(float(rec.get("mono", 0.0)) - t0_mono, 3),
                                        "from": _state(rec.get("from")), "to": _state(rec.get("to")),
                                        "failures": rec.get("failures"), "reason": rec.get("reason", "")})
                elif kind == "publish":
                    ok = rec.get("outcome") == "ok"
                    counts["published" if ok else "publish_failed"] += 1
                    if ok:
                        bump(rec, "republished" if rec.get("attempt") == "republish" else "published")
                elif kind == "applied":
                    counts["applied"] += 1
                    bump(rec, "applied")
                elif kind == "duplicate_skipped":
                    counts["duplicates_skipped"] += 1
                    bump(rec, "duplicates")
        except OSError:
            continue
    transitions.sort(key=lambda r: r["t"])
    return transitions, counts


def transitions_from_inputs(inputs: Any, t0_mono: float) -> list[dict[str, Any]]:
    """Breaker transitions from checker inputs (the only source for a real target)."""
    out = []
    for tr in getattr(inputs, "breaker_transitions", []) or []:
        out.append({"service": tr.service, "breaker": tr.breaker, "t": round(tr.mono - t0_mono, 3),
                    "from": tr.from_state, "to": tr.to_state, "failures": tr.failures, "reason": tr.reason})
    return sorted(out, key=lambda r: r["t"])


def fill_from_folder(summary: RunSummary, run_dir: Path, live_events: Mapping[str, Path] | None = None) -> None:
    """Series, totals, endpoints, faults, breaker transitions and event counts from files."""
    # A missing source file keeps what the summary already has (re-rendering an old run).
    if (run_dir / "locust_stats_history.csv").exists():
        summary.series = read_history(run_dir, summary.t0_wall)
    totals, endpoints = read_totals(run_dir)
    if totals:
        summary.totals, summary.endpoints = totals, endpoints
    if (run_dir / "timeline.json").exists():
        summary.faults = read_timeline(run_dir, summary.t0_mono)
    files = event_files(run_dir, live_events)
    if files:
        buckets: dict[int, dict[str, float]] = {}
        transitions, summary.events = read_breakers_and_counts(files, summary.t0_mono, buckets)
        # Stopping the stack makes breakers trip (sidecars go first): not part of the drill.
        cutoff = next((p["start"] for p in summary.phases if p.get("name") == "teardown"), None)
        if cutoff is not None:
            transitions = [t for t in transitions if t["t"] <= cutoff]
            buckets = {sec: b for sec, b in buckets.items() if sec <= cutoff}
        summary.breaker_transitions = transitions
        # Before t0 is provisioning (opens publish too); the chart starts with the load.
        summary.event_series = [{"t": float(sec) + 0.5, **buckets[sec]} for sec in sorted(buckets) if sec >= 0]
