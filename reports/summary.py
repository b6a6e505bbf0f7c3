"""RunSummary: everything a report shows about one drill, as plain JSON-able data.

The drill gathers it; the HTML, JUnit and verdict writers only render it. Keeping it
plain data (times in seconds since the load started) is what lets `kugeldrill report`
re-render a run folder later and lets unit tests feed the writers synthetic runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["completed", "interrupted", "error"]
SUMMARY_VERSION = 1


@dataclass
class ExpectationResult:
    """One expectation of the scenario, judged: passed True/False, or None = unknown."""

    name: str  # e.g. "breaker.sequence[cart]", "load.max_error_rate"
    checker: str  # breaker | duplicates | fanout | load | convergence
    passed: bool | None
    expected: str
    observed: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return {True: "passed", False: "failed", None: "unknown"}[self.passed]


@dataclass
class RunSummary:
    """A drill's outcome. `series` rows: t, rps, fails_s, p50, p95, p99, users (t in s since t0)."""

    scenario: str
    description: str = ""
    run_dir: str = ""
    status: Status = "completed"
    error: str | None = None
    started_wall: float = 0.0
    ended_wall: float = 0.0
    t0_wall: float = 0.0  # load start (Locust launched); every `t` below is relative to it
    t0_mono: float = 0.0
    load_seconds: float = 0.0
    target: str = "embedded"
    stack_options: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)  # {name, start, end}
    series: list[dict[str, float]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)  # requests, failures, error_rate, rps, p50, p95, p99
    endpoints: list[dict[str, Any]] = field(default_factory=list)  # Locust per-name rows
    faults: list[dict[str, Any]] = field(default_factory=list)  # {id, link, kind, start, end, error}
    breaker_transitions: list[dict[str, Any]] = field(default_factory=list)  # {service, breaker, t, from, to}
    checks: list[dict[str, Any]] = field(default_factory=list)  # CheckResult.to_dict()
    expectations: list[ExpectationResult] = field(default_factory=list)
    convergence_seconds: float | None = None
    converged: bool | None = None
    events: dict[str, int] = field(default_factory=dict)  # published / applied totals
    event_series: list[dict[str, float]] = field(default_factory=list)  # per second: t, published, republished, applied, duplicates
    notes: list[str] = field(default_factory=list)  # things the reader must know (partial data, ...)

    @property
    def verdict(self) -> str:
        """pass | fail | interrupted | error."""
        if self.status != "completed":
            return self.status
        if not self.expectations:
            return "fail"  # nothing judged is never a pass
        return "pass" if all(e.passed is True for e in self.expectations) else "fail"

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "error": 2, "interrupted": 130}[self.verdict]

    def check(self, name: str) -> dict[str, Any] | None:
        for c in self.checks:
            if c.get("checker") == name:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = SUMMARY_VERSION
        data["verdict"] = self.verdict
        data["exit_code"] = self.exit_code
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["expectations"] = [ExpectationResult(**e) for e in data.get("expectations", [])]
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> "RunSummary":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
