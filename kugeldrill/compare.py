"""Comparing a run against a baseline run: did throughput, latency, errors, convergence
or breaker open time regress beyond a threshold?

No open-source tool we measure against (Toxiproxy, Locust, Chaos Toolkit, Jepsen,
LitmusChaos, Chaos Mesh; k6 only in its cloud service) compares a chaos run with a
stored earlier one; this is how a nightly job notices that recovery got slower even
though every verdict still passes. Each metric has a direction (higher is better or
worse) and an absolute floor below which a difference is noise (a 2 ms p50 change is not
a regression).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.chart import breaker_lanes, time_extent
from kugeldrill.reports.summary import RunSummary

# name -> (label, higher_is_better, absolute floor)
METRICS: dict[str, tuple[str, bool, float]] = {
    "rps": ("throughput (requests/s)", True, 1.0),
    "p50": ("latency p50 (ms)", False, 5.0),
    "p95": ("latency p95 (ms)", False, 10.0),
    "p99": ("latency p99 (ms)", False, 20.0),
    "error_rate": ("error rate", False, 0.005),
    "convergence_seconds": ("convergence time (s)", False, 1.0),
    "breaker_open_seconds": ("breaker open time (s, all breakers)", False, 1.0),
}


@dataclass
class MetricDelta:
    metric: str
    label: str
    baseline: float | None
    run: float | None
    change: float | None  # relative change, run vs baseline (None: not comparable)
    regression: bool
    note: str = ""


def breaker_open_seconds(summary: RunSummary) -> float:
    """Total time any breaker spent not CLOSED (OPEN or HALF_OPEN), summed over breakers."""
    x_max = time_extent(summary)
    return round(sum(seg["end"] - seg["start"] for lane in breaker_lanes(summary, x_max)
                     for seg in lane["segments"] if seg["state"] != "CLOSED"), 3)


def metrics_of(summary: RunSummary) -> dict[str, float | None]:
    t = summary.totals
    return {"rps": t.rps if t else None, "p50": t.p50 if t else None, "p95": t.p95 if t else None,
            "p99": t.p99 if t else None, "error_rate": t.error_rate if t else None,
            "convergence_seconds": summary.convergence_seconds,
            "breaker_open_seconds": breaker_open_seconds(summary)}


def compare_summaries(base: RunSummary, run: RunSummary, threshold: float = 0.2) -> list[MetricDelta]:
    """One delta per metric; a regression is worse by more than `threshold` and the floor."""
    mb, mr = metrics_of(base), metrics_of(run)
    out = []
    for name, (label, higher_better, floor) in METRICS.items():
        b, r = mb.get(name), mr.get(name)
        if b is None or r is None:
            out.append(MetricDelta(name, label, b, r, None, False, "not measured in both runs"))
            continue
        change = (r - b) / b if b else None
        worse = (b - r) if higher_better else (r - b)
        limit = max(abs(b) * threshold, floor)
        regression = worse > limit
        note = f"worse by {worse:.3g} (allowed {limit:.3g})" if regression else ""
        out.append(MetricDelta(name, label, b, r, change, regression, note))
    return out


def load_run(run_dir: Path) -> RunSummary:
    path = RunFolder(run_dir).verdict_json
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no verdict.json)")
    try:
        return RunSummary.load(path)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read the run summary: {exc}") from None


def render_table(deltas: list[MetricDelta]) -> str:
    lines = [f"{'metric':<38} {'baseline':>12} {'run':>12} {'change':>9}  verdict"]
    for d in deltas:
        fmt = (lambda v: "–" if v is None else f"{v:.4g}")
        change = "–" if d.change is None else f"{d.change:+.1%}"
        verdict = "REGRESSION " + d.note if d.regression else (d.note or "ok")
        lines.append(f"{d.label:<38} {fmt(d.baseline):>12} {fmt(d.run):>12} {change:>9}  {verdict}")
    return "\n".join(lines)


def to_json(base_dir: Path, run_dir: Path, threshold: float, deltas: list[MetricDelta]) -> dict[str, Any]:
    return {"baseline": str(base_dir), "run": str(run_dir), "threshold": threshold,
            "regressions": [d.metric for d in deltas if d.regression], "metrics": [asdict(d) for d in deltas]}
