"""A suite's outcome: every drill's summary and classification, the known defects' statuses,
the exit code and the one line a nightly job's reader looks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from kugeldrill.reports.summary import RunSummary
from kugeldrill.suite.classify import DrillClassification, KnownStatus
from kugeldrill.suite.known import KnownDefects


@dataclass
class DrillOutcome:
    summary: RunSummary
    classes: DrillClassification


@dataclass
class SuiteResult:
    name: str  # the suite (kugelpos) or "drills" for a list of scenarios
    target: str  # what was drilled (the target's description)
    known: KnownDefects
    started_wall: float = 0.0
    ended_wall: float = 0.0
    drills: list[DrillOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    setup_error: str | None = None  # the deployment could not be started or stopped cleanly

    @property
    def statuses(self) -> list[KnownStatus]:
        return [s for d in self.drills for s in d.classes.known]

    def count(self, cls: str) -> int:
        return sum(d.classes.count(cls) for d in self.drills)  # type: ignore[arg-type]

    def status_count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s.status == status)

    @property
    def errors(self) -> list[str]:
        return [d.summary.scenario for d in self.drills if d.summary.verdict == "error"]

    @property
    def exit_code(self) -> int:
        """130 interrupted; 2 a drill (or the deployment) could not run; 1 something new failed, a
        drill could not judge, or (strict) a known defect did not reproduce; else 0."""
        if self.interrupted or any(d.summary.verdict == "interrupted" for d in self.drills):
            return 130
        if self.setup_error or self.errors:
            return 2
        if self.count("new") or self.count("unknown"):
            return 1
        if self.known.strict and self.status_count("not_reproduced"):
            return 1
        return 0 if self.drills else 2

    @property
    def green(self) -> bool:
        return self.exit_code == 0

    def line(self) -> str:
        """One line: green exactly when nothing new failed, and what that rests on."""
        n = len(self.drills)
        known = (f"{self.status_count('reproduced')} known defect(s) reproduced, "
                 f"{self.status_count('not_reproduced')} not reproduced")
        if self.green:
            return f"GREEN: nothing new failed in {n} drill(s) of {self.name} ({known})"
        parts = []
        if self.interrupted or self.exit_code == 130:
            parts.append("interrupted")
        if self.setup_error:
            parts.append(f"the deployment failed: {self.setup_error}")
        if self.errors:
            parts.append(f"{len(self.errors)} drill(s) could not run ({', '.join(self.errors)})")
        if self.count("new"):
            parts.append(f"{self.count('new')} new failure(s): " + ", ".join(self._labels("new")))
        if self.count("unknown"):
            parts.append(f"{self.count('unknown')} unknown: " + ", ".join(self._labels("unknown")))
        if self.known.strict and self.status_count("not_reproduced"):
            parts.append(f"{self.status_count('not_reproduced')} known defect(s) not reproduced (strict)")
        if not self.drills and not parts:
            parts.append("no drill ran")
        return f"RED: {'; '.join(parts)} ({n} drill(s), {known})"

    def _labels(self, cls: str, limit: int = 4) -> list[str]:
        labels = [f"{d.summary.scenario}: {c.failure.label}" for d in self.drills for c in d.classes.failures
                  if c.cls == cls]
        return labels[:limit] + ([f"… {len(labels) - limit} more"] if len(labels) > limit else [])
