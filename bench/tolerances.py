"""The measurements behind the checkers' tolerances (kugeldrill/checkers/README.md, "Tolerances").

A tolerance needs a measurement that shows the healthy system needs it, and a planted defect
just outside it that is still caught (bench/mutants.py). This script takes the measurements,
each a few real drills of the healthy stand-in, one at a time:

* `short-cuts` — a Redis cut and a blackhole shorter than the client timeout (5 s) only *may*
  make calls fail: the failed or rejected calls each such window saw (zero in some runs means
  "must fail" would turn a healthy drill unknown);
* `crash-duplicates` — the duplicates a subscriber's own crash leaves (the crash knob) and
  the evidence each was tolerated by (killed_before_mark: the effect committed before the
  crash, no mark written), and that none is left without evidence;
* `subscriber-crash` — the library scenario (report, journal and stock SIGKILLed for 20 s):
  its convergence time against the 45 s bound, and its tolerated duplicates by evidence;
* `kill-span` — the same scenario with the mark-before-effect defect, kills for 15 s and
  for 20 s: how often fan-out catches the lost events with each;
* `breaker-timing` — the healthy breaker's OPEN periods against its reset time and its close
  after the heal (`mut-sidecar-cut`): reset_slack_seconds, close_tolerance_seconds;
* `amounts` — the largest difference between an expected and an observed report amount
  (`mut-sales`): amount_tolerance.

    .venv/bin/python bench/tolerances.py [--runs 3] [--only short-cuts,subscriber-crash]
    → bench/results/tolerances.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "tolerances.json"
DRILL_TIMEOUT = 420.0

SHORT_CUTS: dict[str, Any] = {
    "name": "tolerance-short-cuts",
    "description": "A Redis cut and a blackhole shorter than the client timeout, apart, under load.",
    "load": {"users": {"CartUser": 4, "TerminalUser": 1, "OpenCloseUser": 1}, "spawn_rate": 6, "duration": "28s"},
    "faults": [{"at": 4, "for": 3, "link": "redis@cart", "kind": "down"},
               {"at": 11, "for": 3, "link": "redis@report", "kind": "down"},
               {"at": 18, "for": 3.3, "link": "sidecar@report", "kind": "blackhole"}],
    "stack": {"breaker": {"threshold": 3, "reset_seconds": 3}, "republish_interval_seconds": 2,
              "processing_timeout_seconds": 4, "redeliver_interval_ms": 1000},
    "expect": {"duplicates": {"policy": "tolerant"}, "fanout": {"policy": "exactly_once"},
               "convergence": {"max_seconds": 30}},
}


def run_scenario(doc: dict[str, Any], work: Path, label: str) -> tuple[dict[str, Any] | None, float, str]:
    """Run one scenario document as a drill; (verdict.json, seconds, error)."""
    path = work / f"{label}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    out = work / label
    env = dict(os.environ, PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "kugeldrill", "run", str(path), "--out", str(out), "--plain"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=DRILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0, "timeout"
    verdict = out / "verdict.json"
    if not verdict.exists():
        return None, time.monotonic() - t0, f"exit {proc.returncode}: {proc.stderr[-400:]}"
    return json.loads(verdict.read_text()), time.monotonic() - t0, ""


def _check(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in verdict.get("checks", []) if c.get("checker") == name), {})


def _summary(verdict: dict[str, Any], seconds: float) -> dict[str, Any]:
    dup = _check(verdict, "duplicates")
    return {"verdict": verdict.get("verdict"), "seconds": round(seconds, 1),
            "convergence_seconds": verdict.get("convergence_seconds"),
            "checks": {c["checker"]: c.get("valid") for c in verdict.get("checks", [])},
            "duplicates": {k: (dup.get("counts") or {}).get(k) for k in
                           ("duplicated_events", "tolerated", "tolerated_by", "not_tolerated", "undetermined")},
            "failed": [e["name"] for e in verdict.get("expectations", []) if e.get("passed") is not True]}


def _repeat(doc: dict[str, Any], runs: int, work: Path, label: str,
            extract: Callable[[dict[str, Any]], dict[str, Any]] = lambda v: {}) -> list[dict[str, Any]]:
    """Run `doc` `runs` times: each run's summary plus what `extract` reads from its verdict."""
    out = []
    for i in range(runs):
        verdict, secs, err = run_scenario(doc, work, f"{label}-{i}")
        out.append({"error": err} if verdict is None else {**_summary(verdict, secs), **extract(verdict)})
    return out


def _drill(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "bench" / "drills" / f"{name}.yaml").read_text(encoding="utf-8"))


def _library(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8"))


def short_cuts(runs: int, work: Path) -> dict[str, Any]:
    def windows(verdict: dict[str, Any]) -> dict[str, Any]:
        found = (_check(verdict, "breaker").get("details") or {}).get("fault_windows") or []
        return {"windows": [{"service": w["service"], "faults": w["fault_ids"],
                             "seconds": None if w["end_mono"] is None else round(w["end_mono"] - w["start_mono"], 2),
                             "failed_or_rejected_calls": w["failed_or_rejected_calls"]} for w in found]}

    return {"what": "failed or rejected calls in windows shorter than the client timeout (5 s)",
            "runs": _repeat(SHORT_CUTS, runs, work, "short-cuts", windows)}


def crash_duplicates(runs: int, work: Path) -> dict[str, Any]:
    return {"what": "duplicates the crash knob leaves and the evidence that tolerates each (mut-crash)",
            "runs": _repeat(_drill("mut-crash"), runs, work, "crash")}


def subscriber_crash(runs: int, work: Path) -> dict[str, Any]:
    doc = _library("subscriber-crash")
    bound = doc["expect"]["convergence"]["max_seconds"]
    return {"what": f"subscriber-crash: convergence (bound {bound} s) and tolerated duplicates",
            "runs": _repeat(doc, runs, work, "subscriber-crash")}


def kill_span(runs: int, work: Path) -> dict[str, Any]:
    def missing(verdict: dict[str, Any]) -> dict[str, Any]:
        return {"fanout_missing": ((_check(verdict, "fanout").get("counts") or {}).get("totals") or {}).get("missing")}

    out: dict[str, list[dict[str, Any]]] = {}
    for span in (15, 20):
        doc = copy.deepcopy(_library("subscriber-crash"))
        doc["name"] = f"tolerance-kill-span-{span}"
        doc["faults"][0]["for"] = span
        doc["stack"]["defects"] = ["mark_before_effect"]
        out[f"{span}s"] = _repeat(doc, runs, work, f"kill-span-{span}", missing)
    return {"what": "mark_before_effect under subscriber kills of 15 s and 20 s: caught by fan-out how often",
            "runs": out}


def breaker_timing(runs: int, work: Path) -> dict[str, Any]:
    """How long the healthy breaker stays OPEN against its reset time, and how long after the
    heal it closes (reset_slack_seconds, close_tolerance_seconds)."""
    doc = _drill("mut-sidecar-cut")

    def timing(verdict: dict[str, Any]) -> dict[str, Any]:
        cart = ((_check(verdict, "breaker").get("details") or {}).get("breakers") or {}).get("cart/dapr") or {}
        return {"open_seconds": cart.get("open_seconds"), "close_after_heal_seconds": cart.get("close_after_heal_seconds"),
                "reset_seconds": doc["stack"]["breaker"]["reset_seconds"]}

    return {"what": "mut-sidecar-cut: OPEN durations against the reset time, close after the heal",
            "runs": _repeat(doc, runs, work, "breaker-timing", timing)}


def amounts(runs: int, work: Path) -> dict[str, Any]:
    """The largest difference between an expected and an observed report amount in a healthy
    drill (amount_tolerance)."""
    def largest(verdict: dict[str, Any]) -> dict[str, Any]:
        worst = 0.0
        for row in ((_check(verdict, "outcomes").get("details") or {}).get("tables") or {}).get("report", []):
            try:
                expected, observed = float(row["expected"]), float(row["observed"])
            except (TypeError, ValueError):
                continue  # a band or an unknown figure
            if row["key"].endswith(".amount") or ".tax_amount" in row["key"] or ".target_amount" in row["key"]:
                worst = max(worst, abs(expected - observed))
        return {"largest_amount_difference": worst}

    return {"what": "mut-sales: largest |expected - observed| of a report amount",
            "runs": _repeat(_drill("mut-sales"), runs, work, "amounts", largest)}


CASES = {"breaker-timing": breaker_timing, "amounts": amounts, "short-cuts": short_cuts,
         "crash-duplicates": crash_duplicates, "subscriber-crash": subscriber_crash, "kill-span": kill_span}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated cases: " + ", ".join(CASES))
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(CASES)
    doc: dict[str, Any] = {"what": "measurements behind the checkers' tolerances (bench/tolerances.py)",
                           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_average_start": os.getloadavg()},
                           "runs_per_case": args.runs, "cases": {}}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kd-tolerances-") as tmp:
        for name in names:
            doc["cases"][name] = CASES[name](args.runs, Path(tmp))
            print(json.dumps({name: doc["cases"][name]}, indent=1), flush=True)
    doc["wall_seconds"] = round(time.monotonic() - t0, 1)
    doc["machine"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
