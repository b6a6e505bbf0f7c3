"""The target file of a native Kugelpos (`kugeldrill kugelpos up`): the real code, drilled as a deployment.

Everything a drill may use is what a real deployment offers: the services' URLs, the
Toxiproxy API with the links the launcher created, Kugelpos' own log files (`app.log` of
each service, written by its logging.conf), Dapr's Redis and the MongoDB server (outboxes).
The breaker is Kugelpos' real one (kugelpos.md §6): 3 failures counted cumulatively, open
for more than 60 whole seconds (so 61 s), every call admitted in HALF_OPEN, and one Dapr
call lasting at most 3 attempts x 30 s + 3 x 1 s.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.deploy.from_state import reach_from_state, service_logs
from kugeldrill.target import BreakerSpec, ObserveSpec, PublisherSpec, TargetFile

KUGELPOS_BREAKER = BreakerSpec(threshold=3, reset_seconds=61.0, half_open="unlimited", failures="cumulative",
                               max_call_seconds=93.0)


def publisher_from_env(env: dict[str, str]) -> PublisherSpec:
    """Kugelpos' republish job as the services were started (`--env` may change its settings):
    every UNDELIVERED_CHECK_INTERVAL_IN_MINUTES (5) for events at least that old, for
    UNDELIVERED_CHECK_PERIOD_IN_HOURS (24) hours (kugelpos.md §3.3)."""
    def number(name: str, default: float) -> float:
        try:
            return float(env[name])
        except (KeyError, ValueError):
            return default

    interval = number("UNDELIVERED_CHECK_INTERVAL_IN_MINUTES", 5.0) * 60.0
    return PublisherSpec(republish_interval_seconds=interval, republish_min_age_seconds=interval,
                         republish_window_seconds=number("UNDELIVERED_CHECK_PERIOD_IN_HOURS", 24.0) * 3600.0)


def target_from_native(state: dict[str, Any], name: str = "kugelpos-native") -> TargetFile:
    checkout = state.get("checkout") or {}
    commit = checkout.get("commit")
    return TargetFile(
        name=name,
        description=(f"The real Kugelpos services from {checkout.get('path')}"
                     + (f" (commit {commit[:12]})" if commit else "")
                     + f", run natively by kugeldrill with {_sidecars(state)} sidecars and an "
                     "in-memory MongoDB wire-compatible server (no multi-document atomicity)."
                     + _workers(state)),
        **reach_from_state(state),
        observe=ObserveSpec(
            logs=service_logs(state, "app_log"),
            redis_url=state["redis"]["url"],
            mongodb_url=state["mongo"]["url"],
        ),
        breaker=KUGELPOS_BREAKER.model_copy(),
        publisher=publisher_from_env((state["services"].get("cart") or {}).get("env") or {}),
    )


def _workers(state: dict[str, Any]) -> str:
    """What several uvicorn workers per service mean for a drill (nothing when each runs one)."""
    several = {app: svc.get("workers", 1) for app, svc in state["services"].items() if svc.get("workers", 1) > 1}
    if not several:
        return ""
    counts = ", ".join(f"{app} {n}" for app, n in several.items())
    return (f" Several uvicorn worker processes per service ({counts}; "
            f"{(state.get('workers') or {}).get('source', 'explicit')}): the breaker is per process (each worker "
            "counts its own failures and opens on its own), each worker runs its own republish job, and a "
            "service's workers all write its one app.log without naming their process.")


def _sidecars(state: dict[str, Any]) -> str:
    """"daprd 1.18.0": which daprd ran beside the services."""
    return f"daprd {(state.get('sidecar') or {}).get('version') or ''}".strip()
