"""`stack status`: every recorded process, whether it runs, and (optionally) whether it answers.

One probe per part with a generous timeout: a busy machine must not read as unhealthy.
The result is what `kugeldrill stack status --json` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.stack.launch.health import redis_probe, service_probe, sidecar_probe, toxiproxy_probe
from kugeldrill.stack.launch.procs import pid_matches, pid_stopped


def stack_status(state: dict[str, Any], state_path: Path, probe: bool = True, timeout: float = 5.0) -> dict[str, Any]:
    """URLs of everything, the sidecar kind, and per process whether it runs and answers."""
    client = httpx.Client(timeout=timeout) if probe else None
    try:
        def proc(entry: dict[str, Any], probe_fn: Callable[[httpx.Client], str | None] | None) -> dict[str, Any]:
            out = {"url": entry.get("url") or entry.get("api"), "pid": entry.get("pid"), "log": entry.get("log"),
                   "running": pid_matches(entry.get("pid"), entry.get("match", []))}
            # A paused (SIGSTOPped) process runs but cannot answer: not probed, not unhealthy.
            out["stopped"] = bool(out["running"]) and pid_stopped(entry.get("pid"))
            if client is not None and probe_fn is not None and out["running"] and not out["stopped"]:
                problem = probe_fn(client)
                out["healthy"] = problem is None
                if problem:
                    out["problem"] = problem
            return out

        services = {a: {**proc(e, service_probe(e["url"])), "events": e.get("events"),
                        "restarts": len(e.get("restarts", []))}
                    for a, e in state.get("services", {}).items()}
        sidecars = {a: {**proc(e, sidecar_probe(e["url"], False)), "kind": e.get("kind", "standin"),
                        "version": e.get("version"), "metrics_url": e.get("metrics_url")}
                    for a, e in state.get("sidecars", {}).items()}
        redis = state.get("redis") or {}
        toxi = state.get("toxiproxy") or {}
        return {
            "state_file": str(state_path),
            "status": state.get("status"),
            "sidecar": sidecar_summary(state),
            "redis_url": redis.get("url"),
            "toxiproxy_url": toxi.get("api"),
            "redis": proc(redis, redis_probe(redis.get("port", 0))) if redis else None,
            "toxiproxy": proc(toxi, toxiproxy_probe(toxi.get("api", ""))) if toxi else None,
            "services": services,
            "sidecars": sidecars,
            "links": {name: dict(link) for name, link in state.get("links", {}).items()},
            "options": state.get("options"),
        }
    finally:
        if client is not None:
            client.close()


def sidecar_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The stack's `sidecar` block; a state file from before sidecar kinds ran the stand-in."""
    return dict(state.get("sidecar") or {"kind": "standin", "version": None, "requested": "standin"})
