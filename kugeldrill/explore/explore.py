"""`kugeldrill explore`: drawn drills, one after another, until one fails or the budget is spent.

Hand-written scenarios find the failures someone already imagined; drawn ones find others.
Every drawn drill is an ordinary scenario file in the session folder; `explore.json` lists
them with their verdicts, and the first failing one is where `kugeldrill shrink` starts.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.explore.generate import GENERATOR, GENERATOR_VERSION, Space, draw
from kugeldrill.explore.session import Attempt, Budget, run_schedule
from kugeldrill.reports.console import Console


@dataclass
class ExploreResult:
    seed: int
    budget_seconds: float
    space: dict[str, Any]
    drills: list[Attempt] = field(default_factory=list)
    found: Attempt | None = None  # the first drill that did not pass
    stopped: str = ""  # failure | budget | error

    def to_dict(self) -> dict[str, Any]:
        return {"generator": GENERATOR, "version": GENERATOR_VERSION, **asdict(self)}


def explore(seed: int, budget_seconds: float, space: Space, folder: Path, console: Console,
            base: dict[str, Any] | None = None) -> ExploreResult:
    """Draw and run drills `seed:0`, `seed:1`, ... (see the module docstring)."""
    space.check()
    budget = Budget(budget_seconds)
    result = ExploreResult(seed, budget_seconds, {k: v for k, v in asdict(space).items()})
    index = 0
    while True:
        schedule = draw(seed, index, space, base)
        if not budget.fits(schedule):
            result.stopped = "budget"
            break
        console.message(f"explore seed {seed} drill {index}: {schedule.describe()}")
        attempt, _summary = run_schedule(schedule, folder, console)
        budget.learn(schedule, attempt.seconds)
        result.drills.append(attempt)
        console.message(f"explore seed {seed} drill {index}: {attempt.verdict.upper()}"
                        + (f" — {', '.join(f'{c} {k}' for c, k in attempt.signature)}" if attempt.signature else ""))
        if attempt.verdict != "pass":
            result.found = attempt
            result.stopped = "error" if attempt.verdict in ("error", "interrupted") else "failure"
            break
        index += 1
    (folder / "explore.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return result


def session_folder(base: Path | None, seed: int) -> Path:
    """runs/explore-<seed>-<time>/ by default: one folder per session, never reused."""
    root = base if base is not None else Path("runs")
    path = root / f"explore-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 2
    while path.exists():
        path = root / f"explore-{seed}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        n += 1
    path.mkdir(parents=True)
    return path.resolve()
