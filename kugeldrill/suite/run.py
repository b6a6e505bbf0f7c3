"""Run a list of drills one after the other into one suite folder, classing each drill's
failures against the known defects as it ends; the suite stops at an interrupt.

The suite folder holds one run folder per drill (`<out>/<scenario>/`) beside the suite's
own `suite.json`, `suite-junit.xml` and `index.html`, rewritten after every drill, so a suite cut
short still leaves a report of what ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kugeldrill.drill import DrillOptions, run_drill
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.console import Console, failure_lines
from kugeldrill.scenario import LoadedScenario
from kugeldrill.drill.runfolder import make_folder
from kugeldrill.suite.classify import classify_drill
from kugeldrill.suite.known import KnownDefects
from kugeldrill.suite.report import SUITE_JSON, write_suite
from kugeldrill.suite.result import DrillOutcome, SuiteResult

DEFAULT_BASE = Path("runs")


def suite_dir(name: str, out: Path | None, now: float | None = None) -> Path:
    """`out`, or `runs/<YYYYmmdd-HHMMSS>-<name>/`; never one that holds a suite already."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    path = out if out is not None else DEFAULT_BASE / f"{stamp}-{name}"
    if (path / SUITE_JSON).exists():
        raise ConfigError(f"--runs-dir {path} already holds a suite (suite.json); choose an empty folder")
    return make_folder(path, "suite folder")


def _drill_dir(base: Path, scenario: str) -> Path:
    path, n = base / scenario, 2
    while path.exists():
        path, n = base / f"{scenario}-{n}", n + 1
    path.mkdir(parents=True)
    return path


def run_suite(result: SuiteResult, loaded: list[LoadedScenario], out: Path, *, console: Console,
              processes: int | None = None, before_each: Callable[[str], None] | None = None) -> SuiteResult:
    """Run `loaded` into `out`, filling `result` (whose name, target and known defects are set)."""
    result.started_wall = result.started_wall or time.time()
    known: KnownDefects = result.known
    for item in loaded:
        name = item.scenario.name
        if before_each is not None:
            before_each(name)
        run_dir = _drill_dir(out, name)
        summary = run_drill(item, run_dir, DrillOptions(processes=processes, console=console))
        classes = classify_drill(summary, known)
        result.drills.append(DrillOutcome(summary, classes))
        result.ended_wall = time.time()
        console.message(f"[{name}] {summary.verdict.upper()} → {classes.outcome.upper()} "
                        f"({classes.count('known')} known, {classes.count('new')} new, "
                        f"{classes.count('unknown')} unknown) → {RunFolder(run_dir).report_html}")
        for line in failure_lines(summary):
            console.message(f"[{name}] {line.strip()}")
        write_suite(result, out)
        if summary.verdict == "interrupted":
            result.interrupted = True
            break
    result.ended_wall = time.time()
    write_suite(result, out)
    return result
