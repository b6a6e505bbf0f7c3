"""Running drawn schedules as ordinary drills, within a time budget.

Every schedule is written as a scenario file first and loaded back through the scenario
reader, so what ran is exactly what `kugeldrill run FILE` re-runs; the run folder's
verdict.json records where the drill came from (generator, version, seed, index).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from kugeldrill.drill import DrillOptions, run_drill
from kugeldrill.drill.runfolder import run_dir_for
from kugeldrill.explore.schedule import Schedule
from kugeldrill.explore.signature import Failure, signature
from kugeldrill.reports.console import Console
from kugeldrill.reports.summary import RunSummary
from kugeldrill.scenario import parse_scenario_text

DRILL_OVERHEAD_SECONDS = 30.0  # a drill's wall time beyond its load: stack, provisioning, checks (first guess)


@dataclass
class Attempt:
    """One drill run of a schedule."""

    scenario: str  # the scenario file
    run_dir: str
    verdict: str
    signature: list[Failure]
    seconds: float


@dataclass
class Budget:
    """Wall-clock budget; a drill starts only if it is expected to end within it."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    overhead: float = DRILL_OVERHEAD_SECONDS

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def fits(self, schedule: Schedule) -> bool:
        return self.left() >= schedule.load_seconds + self.overhead

    def learn(self, schedule: Schedule, seconds: float) -> None:
        """The machine's real overhead, from the drills run so far (the largest seen)."""
        self.overhead = max(self.overhead if self.overhead != DRILL_OVERHEAD_SECONDS else 0.0,
                            seconds - schedule.load_seconds)


def run_schedule(schedule: Schedule, folder: Path, console: Console, label: str = "") -> tuple[Attempt, RunSummary]:
    """Write `schedule` as `<folder>/<name>.yaml`, run it into its own run folder, return what happened."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{schedule.name}{label}.yaml"
    path.write_text(schedule.to_yaml(), encoding="utf-8")
    loaded = parse_scenario_text(path.read_text(encoding="utf-8"), str(path))
    run_dir = run_dir_for(schedule.name + label, runs_dir=folder)
    t0 = time.monotonic()
    summary = run_drill(loaded, run_dir, DrillOptions(console=console, origin=dict(schedule.origin)))
    seconds = time.monotonic() - t0
    return Attempt(str(path), str(run_dir), summary.verdict, signature(summary), round(seconds, 1)), summary
