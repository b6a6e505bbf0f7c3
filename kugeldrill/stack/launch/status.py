"""Status of a launched deployment: every recorded process, whether it runs, and (optionally)
whether it answers.

One probe per part with a generous timeout: a busy machine must not read as unhealthy. Each
deployment adds its own fields (the embedded stack its events files and restarts, the native
runner its MongoDB and Kugelpos' log files) to what `recorded_status` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.stack.launch.health import Probe, port_probe, redis_probe, sidecar_probe, toxiproxy_probe
from kugeldrill.stack.launch.procs import pid_matches, pid_stopped


def part_status(entry: dict[str, Any], probe: Probe | None, client: httpx.Client | None) -> dict[str, Any]:
    """`url`, `pid`, `log`, `running`, `stopped` and (when probed) `healthy` and `problem` of one part."""
    out: dict[str, Any] = {"url": entry.get("url") or entry.get("api"), "pid": entry.get("pid"), "log": entry.get("log"),
                           "running": pid_matches(entry.get("pid"), entry.get("match", []))}
    # A paused (SIGSTOPped) process runs but cannot answer: not probed, not unhealthy.
    out["stopped"] = bool(out["running"]) and pid_stopped(entry.get("pid"))
    if client is not None and probe is not None and out["running"] and not out["stopped"]:
        problem = probe(client)
        out["healthy"] = problem is None
        if problem:
            out["problem"] = problem
    return out


def recorded_status(state: dict[str, Any], state_path: Path, *, service_probe_for: Callable[[str], Probe],
                    probe: bool = True, timeout: float = 5.0) -> dict[str, Any]:
    """URLs of everything, the sidecar block (which daprd), and per process whether it runs and answers
    (services through `service_probe_for(url)`, sidecars their `/v1.0/healthz`)."""
    client = httpx.Client(timeout=timeout) if probe else None
    try:
        services = {a: part_status(e, service_probe_for(e["url"]), client) for a, e in state.get("services", {}).items()}
        sidecars = {a: {**part_status(e, sidecar_probe(e["url"], False), client), "version": e.get("version"),
                        "metrics_url": e.get("metrics_url")}
                    for a, e in state.get("sidecars", {}).items()}
        servers = {"redis": lambda e: redis_probe(e.get("port", 0)),
                   "toxiproxy": lambda e: toxiproxy_probe(e.get("api", "")),
                   "mongo": lambda e: port_probe(e.get("port", 0))}
        out: dict[str, Any] = {
            "state_file": str(state_path),
            "status": state.get("status"),
            "sidecar": dict(state.get("sidecar") or {}),
            "redis_url": (state.get("redis") or {}).get("url"),
            "toxiproxy_url": (state.get("toxiproxy") or {}).get("api"),
        }
        for name, probe_for in servers.items():
            entry = state.get(name) or {}
            if entry or name != "mongo":
                out[name] = part_status(entry, probe_for(entry), client) if entry else None
        out.update(services=services, sidecars=sidecars,
                   links={name: dict(link) for name, link in state.get("links", {}).items()})
        return out
    finally:
        if client is not None:
            client.close()

