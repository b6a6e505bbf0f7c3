"""`kugeldrill shrink RUN_DIR`: from a failing drill to a minimal one that fails the same way.

Like a property-based tester's shrinker, but over faults and time: candidates are the
failing schedule made smaller in one respect — a fault fewer, a shorter load (faults moved
earlier to fit), a shorter fault window (keeping its start, or its end: a later start), a
user fewer, a simpler fault kind — tried biggest reduction first. A
candidate is kept when it still fails with the same (checker, kind) as the original; then
shrinking starts over from it. A candidate is run up to `repeats` times before it is given
up (timing matters in chaos drills: a pass may be luck, and luck must not be taken for a
fix). It ends at a fixpoint (no candidate fails the same way) or when the budget is spent.

Everything is written under `<RUN_DIR>/shrink/`: each candidate's scenario file and run
folder, `shrink.json` (the path: each step, its verdicts, kept or not), `minimal.yaml`;
the minimal drill's report shows the path, and the original's report links to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import yaml

from kugeldrill.compare import load_run
from kugeldrill.explore.generate import NETWORK_KINDS, PROCESS_KINDS
from kugeldrill.chaos.record import PlannedFault
from kugeldrill.explore.schedule import KIND_ORDER, Schedule
from kugeldrill.explore.session import Budget, run_schedule
from kugeldrill.explore.signature import Failure, primary, signature
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports import write_all
from kugeldrill.reports.console import Console
from kugeldrill.reports.summary import RunSummary, ShrinkRecord, ShrinkStep
from kugeldrill.scenario import load_scenario

MIN_LOAD_SECONDS = 8.0
MIN_FAULT_SECONDS = 1.0
FIRST_AT = 2.0
SETTLE_SECONDS = 6.0  # load after the last heal: breakers close, redeliveries land
MIN_USERS = {"CartUser": 1, "TerminalUser": 0, "OpenCloseUser": 0}


def schedule_of(run_dir: Path) -> tuple[Schedule, RunSummary]:
    """The failing drill's schedule (from its scenario.yaml as run) and its summary (verdict.json)."""
    folder = RunFolder(run_dir)
    summary = load_run(run_dir)
    loaded = load_scenario(folder.scenario_yaml)
    sc = loaded.scenario
    if sc.load.stages:
        raise ConfigError(f"{folder.scenario_yaml}: shrink needs a load with a duration, not stages")
    doc = yaml.safe_load(loaded.text) or {}
    base = {k: v for k, v in doc.items() if k not in ("name", "faults")}
    return Schedule(name=f"{sc.name}-shrunk", load_seconds=sc.load.total_seconds, users=dict(sc.load.users),
                    faults=tuple(sc.faults), base=base, origin=dict(summary.origin)), summary


def _fit(faults: tuple[PlannedFault, ...], load: float) -> tuple[PlannedFault, ...] | None:
    """Faults moved earlier (then cut) so each heals SETTLE_SECONDS before the load ends; None if impossible."""
    out = []
    latest_end = load - SETTLE_SECONDS
    for f in faults:
        length = min(f.duration, latest_end - FIRST_AT)
        if length < MIN_FAULT_SECONDS:
            return None
        at = min(f.at, latest_end - length)
        out.append(replace(f, at=round(max(FIRST_AT, at), 2), duration=round(length, 2)))
    return tuple(out)


def shortest_load(faults: tuple[PlannedFault, ...]) -> float:
    """The shortest load that still holds every fault at its length: each from FIRST_AT, then
    SETTLE_SECONDS of load after the longest heals."""
    return float(math.ceil(FIRST_AT + max((f.duration for f in faults), default=0.0) + SETTLE_SECONDS))


def candidates(s: Schedule) -> Iterator[tuple[str, Schedule]]:
    """Smaller schedules, one change each, the biggest reductions first."""
    for i, f in enumerate(s.faults):
        yield f"drop fault {f.describe()}", s.with_(faults=s.faults[:i] + s.faults[i + 1:])
    tried: set[float] = set()
    for load in sorted((shortest_load(s.faults), *(math.floor(s.load_seconds * factor) for factor in (0.5, 0.75)))):
        load = float(max(MIN_LOAD_SECONDS, load))
        fitted = _fit(s.faults, load)
        if load < s.load_seconds and load not in tried and fitted is not None:
            tried.add(load)
            yield f"load {s.load_seconds:g}s → {load:g}s", s.with_(load_seconds=load, faults=fitted)
    for i, f in enumerate(s.faults):
        def swap(new: PlannedFault, i: int = i) -> Schedule:
            return s.with_(faults=tuple(sorted(s.faults[:i] + (new,) + s.faults[i + 1:], key=lambda x: x.at)))

        half = round(max(MIN_FAULT_SECONDS, f.duration / 2), 2)
        if half < f.duration:
            yield f"fault {f.describe()} lasts {half:g}s", swap(replace(f, duration=half))
            yield f"fault {f.describe()} lasts {half:g}s, ending as before", swap(replace(f, at=round(f.end - half, 2),
                                                                                           duration=half))
        simpler = [k for k in KIND_ORDER[:KIND_ORDER.index(f.kind)] if k in (PROCESS_KINDS if f.is_process else NETWORK_KINDS)] \
            if f.kind in KIND_ORDER else []
        for kind in simpler:
            params = dict((PROCESS_KINDS if f.is_process else NETWORK_KINDS)[kind][0])
            yield f"fault {f.describe()} becomes {kind}", swap(replace(f, kind=kind, params=params))
    for cls, n in s.users.items():
        floor = MIN_USERS.get(cls, 0)
        for fewer in sorted({max(floor, n // 2), n - 1}):
            if floor <= fewer < n:
                yield f"{cls} {n} → {fewer}", s.with_(users={**s.users, cls: fewer})


def shrink(run_dir: Path, budget_seconds: float, console: Console, repeats: int = 2) -> ShrinkRecord:
    """Shrink the failing drill in `run_dir` (see the module docstring)."""
    run_dir = run_dir.resolve()
    current, summary = schedule_of(run_dir)
    sig = signature(summary)
    target = primary(sig)
    if summary.verdict == "pass" or target is None:
        raise ConfigError(f"{run_dir} passed: there is nothing to shrink", hint="shrink a drill that failed")
    folder = run_dir / "shrink"
    folder.mkdir(exist_ok=True)
    record = ShrinkRecord(original=str(run_dir), failure=list(target), minimal_scenario="")
    budget = Budget(budget_seconds)
    console.message(f"shrink {run_dir.name}: keeping {target[0]} {target[1]}; start: {current.describe()}")
    n = 0
    last_failing_run = str(run_dir)
    improved = True
    while improved:
        improved = False
        for change, cand in candidates(current):
            if cand.size() >= current.size():
                continue
            if not budget.fits(cand):
                record.finished = "budget"
                break
            n += 1
            cand = cand.with_(name=f"{current.name.split('-step')[0]}-step{n}")
            step = ShrinkStep(change=change, schedule=cand.describe(), verdicts=[], kept=False)
            for r in range(repeats):
                attempt, _ = run_schedule(cand, folder, console, label="" if r == 0 else f"-again{r}")
                budget.learn(cand, attempt.seconds)
                step.verdicts.append(attempt.verdict + ("" if attempt.verdict == "pass" else
                                                        " (" + ", ".join(f"{c} {k}" for c, k in attempt.signature) + ")"))
                step.run_dirs.append(attempt.run_dir)
                if _same_way(attempt.signature, target):
                    step.kept = True
                    last_failing_run = attempt.run_dir
                    break
                if attempt.verdict != "pass":
                    break  # failing differently is not a timing fluke: no second run
            record.steps.append(step)
            console.message(f"shrink step {n}: {change}: {'KEPT' if step.kept else 'rejected'} ({'; '.join(step.verdicts)})")
            if step.kept:
                current = cand
                improved = True
                break
        else:
            record.finished = record.finished or "fixpoint"
        if record.finished == "budget":
            break
    minimal = folder / "minimal.yaml"
    minimal.write_text(current.with_(name=current.name.split("-step")[0] + "-minimal").to_yaml(), encoding="utf-8")
    record.minimal_scenario = str(minimal)
    (folder / "shrink.json").write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    _annotate(Path(last_failing_run), record)
    if Path(last_failing_run) != run_dir:
        _annotate(run_dir, record)
    console.message(f"shrink {run_dir.name}: {record.finished}; minimal: {current.describe()} → {minimal}")
    return record


def _same_way(sig: list[Failure], target: Failure) -> bool:
    return tuple(target) in {tuple(x) for x in sig}


def _annotate(run_dir: Path, record: ShrinkRecord) -> None:
    """Put the shrink path into a run's verdict.json and report."""
    summary = load_run(run_dir)
    summary.shrink = record
    write_all(run_dir, summary)
