"""Explore and shrink against planted defects: found within the budget, shrunk small, same failure.

For each case, a stand-in defect switch is planted and `explore` runs with a fixed seed and
a budget of at most 5 minutes; the first failing drill is shrunk. A case passes when

* explore found a failing drill within the budget, failing in one of the case's checkers;
* the minimal drill has at most 2 faults and at most half the original load time;
* the minimal drill still failed with the same (checker, kind) as the original — shrink
  keeps a candidate only if it does, so the last kept step's run is that proof.

The healthy case runs explore on the unmodified stand-in with the same budget over every
link and network fault kind: it must find nothing (no false alarm).

    .venv/bin/python bench/explore_check.py [--only breaker,duplicate,fanout,healthy]
        [--budget 5m] [--shrink-budget 6m]
    → bench/results/explore.json

Runs in-process through the same functions as `kugeldrill explore --shrink`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "explore.json"
MAX_BUDGET_SECONDS = 300.0


@dataclass(frozen=True)
class Case:
    id: str
    category: str  # breaker | duplicate | fanout | healthy
    why: str
    seed: int
    defects: tuple[str, ...] = ()
    links: str | None = None
    processes: str | None = None
    kinds: str | None = None
    base: str | None = None  # a scenario whose stack options and expectations every drawn drill keeps
    checkers: tuple[str, ...] = ()  # the checkers a found failure may come from; () = must find nothing


CASES: tuple[Case, ...] = (
    Case("breaker", "breaker", "a new breaker per request never opens: cutting cart's sidecar link must "
         "show a breaker that never opened", seed=1, defects=("breaker_per_request",), links="sidecar@cart",
         kinds="down,blackhole,reset_peer", checkers=("breaker",)),
    Case("duplicate", "duplicate", "stock without its idempotency check applies a republished tranlog "
         "again when journal's link is cut", seed=1, defects=("stock_no_idempotency",), links="app@journal",
         kinds="down,blackhole,reset_peer", checkers=("duplicates",)),
    Case("fanout", "fanout", "one consumerID shared by every subscriber: each event reaches only one of "
         "them (missing in report, journal or stock); the base keeps Kugelpos' 5-minute republish, which a "
         "2 s republish would hide by fanning everything out again", seed=1, defects=("shared_consumer_id",),
         links="sidecar@*,redis@*", kinds="down,blackhole,reset_peer", base="scenarios/defects/shared-consumer-id.yaml",
         checkers=("fanout", "outcomes")),
    Case("healthy", "healthy", "the unmodified stand-in over every link and network fault kind: "
         "nothing may fail", seed=1),
)


@dataclass
class CaseResult:
    id: str
    category: str
    why: str
    command: str
    found: bool = False
    drills_run: int = 0
    explore_seconds: float = 0.0
    failure: list[str] = field(default_factory=list)  # [checker, kind] of the first failing drill
    original: dict = field(default_factory=dict)  # faults, load_seconds, users, run_dir
    minimal: dict = field(default_factory=dict)
    shrink_steps: int = 0
    shrink_finished: str = ""
    shrink_seconds: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)
    ok: bool = False
    error: str = ""


def command_line(case: Case, budget: float, shrink_budget: float) -> str:
    parts = ["kugeldrill explore", f"--seed {case.seed}", f"--budget {budget:g}s"]
    parts += [f"--defect {d}" for d in case.defects]
    for opt, value in (("--links", case.links), ("--process-targets", case.processes), ("--kinds", case.kinds),
                       ("--base", case.base)):
        if value:
            parts.append(f"{opt} '{value}'")
    if case.checkers:
        parts += ["--shrink", f"--shrink-budget {shrink_budget:g}s"]
    return " ".join(parts)


def shape(schedule) -> dict:
    return {"faults": [f.describe() for f in schedule.faults], "load_seconds": schedule.load_seconds,
            "users": dict(schedule.users)}


def run_case(case: Case, budget: float, shrink_budget: float, out: Path) -> CaseResult:
    from kugeldrill.explore.base import drill_base
    from kugeldrill.explore.explore import explore, session_folder
    from kugeldrill.explore.shrink import schedule_of, shrink
    from kugeldrill.explore.signature import primary, signature
    from kugeldrill.explore.space import build_space
    from kugeldrill.reports.console import Console

    res = CaseResult(case.id, case.category, case.why, command_line(case, budget, shrink_budget))
    space = build_space(None, case.links, case.kinds, 2, case.processes)
    folder = session_folder(out, case.seed)
    console = Console(live=False)
    with console:
        t0 = time.monotonic()
        found = explore(case.seed, budget, space, folder, console, drill_base(ROOT / case.base if case.base else None, None, list(case.defects)))
        res.explore_seconds = round(time.monotonic() - t0, 1)
        res.drills_run = len(found.drills)
        if found.stopped == "error":
            res.error = f"a drill could not run: {found.found.run_dir if found.found else '?'}"
            return res
        res.found = found.found is not None
        if not case.checkers:
            res.checks = {"nothing_found": not res.found}
            res.ok = all(res.checks.values())
            return res
        if found.found is None:
            res.checks = {"found_within_budget": False}
            return res
        first = primary(found.found.signature)
        res.failure = [str(x) for x in first] if first else []
        original, _ = schedule_of(Path(found.found.run_dir))
        res.original = {**shape(original), "run_dir": found.found.run_dir}
        t1 = time.monotonic()
        record = shrink(Path(found.found.run_dir), shrink_budget, console)
        res.shrink_seconds = round(time.monotonic() - t1, 1)
    kept = [s for s in record.steps if s.kept]
    res.shrink_steps = len(record.steps)
    res.shrink_finished = record.finished
    minimal_run = Path(kept[-1].run_dirs[-1]) if kept else Path(found.found.run_dir)
    minimal, minimal_summary = schedule_of(minimal_run)
    minimal_failures = [list(map(str, f)) for f in signature(minimal_summary)]
    res.minimal = {**shape(minimal), "run_dir": str(minimal_run), "scenario": record.minimal_scenario,
                   "failures": minimal_failures}
    res.checks = {
        "found_within_budget": res.explore_seconds <= budget + 60,  # a drill started in time may end after it
        "failure_in_expected_checker": bool(res.failure) and res.failure[0] in case.checkers,
        "shrunk_to_at_most_2_faults": len(minimal.faults) <= 2,
        "shrunk_to_at_most_half_the_load": minimal.load_seconds <= original.load_seconds / 2,
        "minimal_fails_the_same_way": res.failure in minimal_failures,
    }
    res.ok = all(res.checks.values())
    return res


def main(argv: list[str] | None = None) -> int:
    from kugeldrill.ground.durations import duration_arg as duration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case ids: " + ",".join(c.id for c in CASES))
    parser.add_argument("--budget", type=duration, default=MAX_BUDGET_SECONDS)
    parser.add_argument("--shrink-budget", type=duration, default=360.0)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "explore-check")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if args.budget > MAX_BUDGET_SECONDS:
        parser.error(f"--budget is at most {MAX_BUDGET_SECONDS:g} s (the issue's bound)")
    wanted = args.only.split(",") if args.only else [c.id for c in CASES]
    unknown = set(wanted) - {c.id for c in CASES}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}")
    results = []
    started = time.monotonic()
    for case in CASES:
        if case.id not in wanted:
            continue
        print(f"== explore-check {case.id}: {command_line(case, args.budget, args.shrink_budget)}", flush=True)
        try:
            r = run_case(case, args.budget, args.shrink_budget, args.runs)
        except Exception as exc:  # noqa: BLE001 - one case's error is recorded, the others still run
            r = CaseResult(case.id, case.category, case.why, command_line(case, args.budget, args.shrink_budget),
                           error=f"{type(exc).__name__}: {exc}")
        results.append(r)
        print(f"== explore-check {case.id}: {'OK' if r.ok else 'NOT OK'} {r.checks} {r.error}", flush=True)
    doc = {
        "benchmark": "explore-check",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "budget_seconds": args.budget,
        "shrink_budget_seconds": args.shrink_budget,
        "seconds": round(time.monotonic() - started, 1),
        "all_ok": all(r.ok for r in results),
        "cases": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"explore-check: {sum(r.ok for r in results)}/{len(results)} ok → {args.out}")
    return 0 if doc["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
