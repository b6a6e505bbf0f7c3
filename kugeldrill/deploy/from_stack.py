"""A target file for a running embedded stand-in, as if it were an external deployment.

This is how the real-deployment path is exercised without Docker: the drill then uses
only what the target file offers (HTTP URLs, the Toxiproxy API, Kugelpos-format log
files, the Redis URL) and none of the stand-in's structured events.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kugeldrill.deploy.from_state import reach_from_state, service_logs
from kugeldrill.target import BreakerSpec, ObserveSpec, ProcessesSpec, ProcessTargetSpec, PublisherSpec, TargetFile


# The stand-in's DaprClientHelper backs off 0.1, 0.2, ... s (at most 2 s) between attempts.
_BACKOFF_BASE, _BACKOFF_MAX = 0.1, 2.0


def max_call_seconds(state: dict[str, Any]) -> float:
    """Longest one Dapr call of the stand-in can take: timeout x attempts + backoffs.

    Read from the publishers'/subscribers' service configs (ServiceConfig JSON); the
    ServiceConfig defaults (5 s, 3 attempts) when none can be read.
    """
    worst = 0.0
    for svc in state.get("services", {}).values():
        try:
            cfg = json.loads(Path(svc["config"]).read_text())
        except (KeyError, OSError, ValueError, TypeError):
            continue
        if not cfg.get("dapr_url"):
            continue
        timeout, attempts = float(cfg.get("dapr_timeout_seconds", 5.0)), int(cfg.get("dapr_max_attempts", 3))
        backoff = sum(min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** i) for i in range(attempts - 1))
        worst = max(worst, timeout * attempts + backoff)
    return round(worst or 5.0 * 3 + 0.3, 3)


def processes_from_state(state: dict[str, Any], command: str = "stack") -> ProcessesSpec | None:
    """Command templates that act on a recorded deployment's processes through its own CLI
    (`kugeldrill stack|kugelpos process ACTION TARGET`), as a deployment's file would name docker
    or systemctl commands: process faults on this target go through the command path.
    None when the state names no state directory to point the commands at."""
    if not state.get("state_dir"):
        return None
    base = [sys.executable, "-m", "kugeldrill", command, "process"]
    tail = ["{target}", "--state-dir", str(state["state_dir"])]
    commands = {action: [*base, action, *tail] for action in ("kill", "pause", "resume", "start", "pids", "running")}
    commands["stop"] = [*base, "stop", *tail, "--grace", "{grace}"]
    commands["ready"] = [*base, "ready", *tail, "--timeout", "1"]
    names = (["redis"] if state.get("redis") else []) + [f"sidecar@{a}" for a in state.get("sidecars", {})] \
        + [f"app@{a}" for a in state.get("services", {})]
    return ProcessesSpec(commands=commands, targets={n: ProcessTargetSpec() for n in names})


def target_from_stack(state: dict[str, Any], name: str = "embedded-as-external") -> TargetFile:
    """The stand-in as a target file: its URLs, links, log files and Redis; its breaker as configured.

    The breaker section describes the stand-in's breaker as it behaves, defect switches
    included (as a real deployment's target file declares its real quirks); a defect
    that is not a breaker policy (e.g. shared_consumer_id) stays for the checkers to find.
    """
    options = state.get("options", {})
    breaker = options.get("breaker", {})
    defects = set(options.get("defects", []))
    trials = int(breaker.get("half_open_max_calls", 1))
    return TargetFile(
        name=name,
        description="The embedded stand-in described as an external deployment (observed through "
        "logs and Redis only).",
        **reach_from_state(state),
        observe=ObserveSpec(
            logs=service_logs(state, "log"),
            redis_url=state["redis"]["url"],
        ),
        breaker=BreakerSpec(
            threshold=int(breaker.get("threshold", 3)),
            reset_seconds=float(breaker.get("reset_seconds", 60.0)),
            half_open="unlimited" if "breaker_unlimited_half_open" in defects else ("single" if trials == 1 else trials),
            failures="cumulative" if "breaker_cumulative_failures" in defects else "consecutive",
            max_call_seconds=max_call_seconds(state),
        ),
        publisher=PublisherSpec(
            republish_interval_seconds=float(options.get("republish_interval_seconds", 300.0)),
            republish_min_age_seconds=float(options.get("republish_min_age_seconds")
                                            or options.get("republish_interval_seconds", 300.0)),
        ),
        processes=processes_from_state(state),
    )
