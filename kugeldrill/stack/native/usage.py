"""CPU seconds each part of a running native Kugelpos has used, by process (the pace's evidence).

On a shared 2-core machine wall-clock latencies move with whatever else runs; the CPU a part
spends per sale does much less, so it is what finds and proves a change in pace. Two
snapshots of `cpu_seconds(state)` around a load phase give each part's CPU for that phase.

A service counts with all its processes: uvicorn's supervisor, its live worker processes
(`--workers prod`) and workers already reaped (the kernel adds a reaped child's CPU to its
parent's). A part whose recorded pid is gone or now belongs to another program is None:
unknown, never 0.
"""

from __future__ import annotations

from typing import Any

import psutil

from kugeldrill.ground.pids import pid_matches

SERVER_PARTS = {"mongo": "mongodb", "redis": "redis", "toxiproxy": "toxiproxy"}


def _process_tree_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    times = proc.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in proc.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue  # exited between listing and reading: counted once reaped
        total += child_times.user + child_times.system
    return total


def _seconds(entry: dict[str, Any] | None) -> float | None:
    if not entry or not entry.get("pid") or not pid_matches(entry["pid"], entry.get("match", [])):
        return None
    try:
        return round(_process_tree_seconds(int(entry["pid"])), 3)
    except psutil.Error:
        return None


def part_names(state: dict[str, Any]) -> list[str]:
    """The parts `cpu_seconds` reports, in a stable order: services, sidecars, servers."""
    return ([f"service {app}" for app in state.get("services", {})]
            + [f"sidecar {app}" for app in state.get("sidecars", {})]
            + [name for key, name in SERVER_PARTS.items() if state.get(key)])


def cpu_seconds(state: dict[str, Any]) -> dict[str, float | None]:
    """part name -> user+system CPU seconds so far (None: not running, or not the recorded program)."""
    out: dict[str, float | None] = {}
    for app, entry in state.get("services", {}).items():
        out[f"service {app}"] = _seconds(entry)
    for app, entry in state.get("sidecars", {}).items():
        out[f"sidecar {app}"] = _seconds(entry)
    for key, name in SERVER_PARTS.items():
        if state.get(key):
            out[name] = _seconds(state[key])
    return out


def cpu_delta(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    """Each part's CPU between two snapshots (None where either is unknown or the part restarted)."""
    out: dict[str, float | None] = {}
    for name, end in after.items():
        start = before.get(name)
        out[name] = round(end - start, 3) if start is not None and end is not None and end >= start else None
    return out
