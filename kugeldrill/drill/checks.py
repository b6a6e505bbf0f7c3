"""Running the checkers and the quiescence wait for a drill, isolating their failures.

A checker that crashes must not cost the run its report: its result becomes `valid=None`
(unknown) with the error as the summary, which fails the matching expectation visibly
instead of ending the drill with a traceback.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kugeldrill.scenario_schema import Scenario


def build_params(scenario: Scenario, breaker: Mapping[str, Any]) -> Any:
    """kugeldrill.checkers.params.CheckParams from the scenario's expectations and the environment's breaker."""
    from kugeldrill.checkers.params import BreakerParams, CheckParams, DuplicatePolicy, FanoutPolicy

    bp = BreakerParams(threshold=int(breaker.get("threshold", 3)),
                       reset_seconds=float(breaker.get("reset_seconds", 60.0)),
                       half_open_max_calls=breaker.get("half_open_max_calls", 1))
    if breaker.get("mode"):
        bp.mode = breaker["mode"]
    exp = scenario.expect
    if exp.breaker.close_tolerance_seconds is not None:
        bp.close_tolerance_seconds = exp.breaker.close_tolerance_seconds
    dup = DuplicatePolicy(strict=exp.duplicates.policy == "strict")
    fan = FanoutPolicy()
    if exp.fanout.policy == "exactly_once":
        fan.fail_on_duplicates = False  # duplicates are the duplicate checker's verdict
    enabled = tuple(n for n, on in (("breaker", exp.breaker.check), ("duplicates", exp.duplicates.check),
                                    ("fanout", exp.fanout.check)) if on)
    return CheckParams(breaker=bp, duplicates=dup, fanout=fan, enabled=enabled)


def _crashed(name: str, exc: BaseException) -> dict[str, Any]:
    return {"checker": name, "valid": None, "summary": f"checker crashed: {type(exc).__name__}: {exc}",
            "counts": {}, "examples": {}, "details": {"traceback": traceback.format_exc(limit=6)}}


def run_checks(inputs: Any, params: Any) -> list[dict[str, Any]]:
    """Every enabled checker's CheckResult as a dict; one failing checker does not stop the others."""
    singles: dict[str, Callable[[], Any]] = {}
    try:
        from kugeldrill.checkers.breaker import check_breakers

        singles["breaker"] = lambda: check_breakers(inputs, params.breaker)
    except ImportError:
        pass
    try:
        from kugeldrill.checkers.duplicates import check_duplicates

        singles["duplicates"] = lambda: check_duplicates(inputs, params.duplicates)
    except ImportError:
        pass
    try:
        from kugeldrill.checkers.fanout import check_fanout

        singles["fanout"] = lambda: check_fanout(inputs, params.fanout)
    except ImportError:
        pass
    results: list[dict[str, Any]] = []
    for name in params.enabled:
        fn = singles.get(name)
        if fn is None:
            results.append({"checker": name, "valid": None, "summary": f"checker '{name}' is not installed",
                            "counts": {}, "examples": {}, "details": {}})
            continue
        try:
            results.append(fn().to_dict())
        except Exception as exc:  # noqa: BLE001 - reported as unknown, never silently passed
            results.append(_crashed(name, exc))
    return results


def _files_quiet(files: Mapping[str, Path], bound: float, quiet_for: float = 2.0,
                 stop: Callable[[], bool] | None = None) -> tuple[float, bool]:
    """Fallback quiescence: wait until no events file grows for `quiet_for` seconds."""
    start = time.monotonic()
    last_sizes: dict[str, int] = {}
    last_change = start
    while time.monotonic() - start < bound:
        if stop and stop():
            return time.monotonic() - start, False
        sizes = {k: (p.stat().st_size if p.exists() else 0) for k, p in files.items()}
        now = time.monotonic()
        if sizes != last_sizes:
            last_sizes, last_change = sizes, now
        elif now - last_change >= quiet_for:
            return last_change - start, True
        time.sleep(0.25)
    return time.monotonic() - start, False


def wait_for_quiescence(redis_url: str | None, files: Mapping[str, Path], bound: float,
                        stop: Callable[[], bool] | None = None, outbox_probe: Callable[[], Any] | None = None,
                        allow_hosts: tuple[str, ...] = ()) -> tuple[float | None, bool | None, dict[str, Any]]:
    """(seconds to quiescence, converged, details) after load stopped and faults healed."""
    try:
        from kugeldrill.checkers.quiescence import wait_quiescent
    except ImportError:
        wait_quiescent = None  # type: ignore[assignment]
    if wait_quiescent is not None and redis_url:
        try:
            res = wait_quiescent(redis_url, outbox_probe, bound, allow_hosts=allow_hosts)
            secs = getattr(res, "seconds", None) or getattr(res, "convergence_seconds", None)
            ok = getattr(res, "converged", None)
            if ok is None:
                ok = getattr(res, "quiescent", None)
            details = res.to_dict() if hasattr(res, "to_dict") else {"result": repr(res)}
            return (float(secs) if secs is not None else None), ok, details
        except Exception as exc:  # noqa: BLE001 - fall back to the events files
            fallback_note = f"kugeldrill.checkers.quiescence failed ({type(exc).__name__}: {exc}); used events files"
        else:
            fallback_note = ""
    else:
        fallback_note = "kugeldrill.checkers.quiescence not available; used events files growth"
    if not files:
        return None, None, {"note": fallback_note + "; no events files to watch"}
    secs, ok = _files_quiet(files, bound, stop=stop)
    return secs, ok, {"note": fallback_note, "method": "events files quiet for 2 s"}
