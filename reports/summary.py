"""RunSummary: everything a report shows about one drill, as typed records.

The drill builds it from the checkers' typed inputs and results (one reader per run-folder
file: nothing here parses a run file other than verdict.json); the HTML, JUnit, console and
verdict writers only render it. Times are seconds since the load's first operation (t0), so
`kugeldrill report` can re-render a run folder later and unit tests can feed the writers
synthetic runs.

verdict.json is `RunSummary.to_dict()`; `RunSummary.load` reads it back (version 1 files,
written before these records were typed, are read too).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from kugeldrill.chaos.event import FaultEvent
from kugeldrill.chaos.record import AppliedFault, FaultStatus, PlannedFault
from kugeldrill.checkers.model import CheckResult

Status = Literal["completed", "interrupted", "error"]
SUMMARY_VERSION = 3  # 3: faults are timeline.json's records (chaos.record), plus `unhealed`


@dataclass
class ExpectationResult:
    """One expectation of the scenario, judged: passed True/False, or None = unknown."""

    name: str  # e.g. "breaker.sequence[cart]", "load.max_error_rate"
    checker: str  # breaker | duplicates | fanout | outcomes | load | convergence
    passed: bool | None
    expected: str
    observed: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return {True: "passed", False: "failed", None: "unknown"}[self.passed]


@dataclass
class Phase:
    """A drill phase (environment, provision, load, heal, quiescence, check, cleanup, ...)."""

    name: str
    start: float
    end: float


@dataclass
class SeriesPoint:
    """One row of Locust's aggregated stats history (t since t0)."""

    t: float
    rps: float = 0.0
    fails_s: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    users: float = 0.0
    requests: float = 0.0
    failures: float = 0.0


@dataclass
class LoadTotals:
    """Locust's aggregated totals of the whole run."""

    requests: int = 0
    failures: int = 0
    error_rate: float = 0.0
    rps: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    avg: float | None = None


@dataclass
class ProcessFaultReport:
    """What a process fault did to the events in flight and, for Redis, to its contents.

    recovery: counts of kugeldrill.checkers.recovery (in flight, recovered, lost,
    republished, ...). redis: inventories before the fault, right after the restart (with
    how many of the earlier markers, stream entries, groups and pending entries survived),
    at the end, and what was lost."""

    id: str
    process: str
    kind: str
    recovery: dict[str, Any] | None = None
    redis: dict[str, Any] | None = None


@dataclass
class BreakerPoint:
    """A breaker transition on the report's time axis."""

    service: str
    breaker: str
    t: float
    from_state: str
    to_state: str
    failures: int | None = None
    reason: str = ""


@dataclass
class EventBucket:
    """Per-second stand-in event counts: the picture of republish amplification after a fault."""

    t: float
    published: int = 0
    republished: int = 0
    applied: int = 0
    duplicates: int = 0


@dataclass
class EventTotals:
    published: int = 0
    publish_failed: int = 0
    applied: int = 0
    duplicates_skipped: int = 0


@dataclass
class ShrinkStep:
    """One candidate of a shrink: what changed, its runs' verdicts, whether it was kept."""

    change: str
    schedule: str
    verdicts: list[str]
    kept: bool
    run_dirs: list[str] = field(default_factory=list)


@dataclass
class ShrinkRecord:
    """From a failing drill to a minimal one that fails the same way."""

    original: str  # the failing run folder
    failure: list[str]  # [checker, kind] kept throughout
    minimal_scenario: str
    steps: list[ShrinkStep] = field(default_factory=list)
    finished: str = ""  # "fixpoint" (nothing smaller fails the same way) | "budget"


@dataclass
class RunSummary:
    """A drill's outcome."""

    scenario: str
    description: str = ""
    run_dir: str = ""
    status: Status = "completed"
    error: str | None = None
    started_wall: float = 0.0
    ended_wall: float = 0.0
    t0_wall: float = 0.0  # the load's first operation; every `t` below is relative to it
    t0_mono: float = 0.0
    load_seconds: float = 0.0
    target: str = "embedded"
    stack_options: dict[str, Any] = field(default_factory=dict)  # the scenario's `stack` block as run (display)
    phases: list[Phase] = field(default_factory=list)
    series: list[SeriesPoint] = field(default_factory=list)
    totals: LoadTotals | None = None
    endpoints: list[dict[str, str]] = field(default_factory=list)  # Locust's per-name CSV rows, verbatim
    faults: list[AppliedFault] = field(default_factory=list)  # applied, or failed to apply: chaos' own record
    process_faults: list[ProcessFaultReport] = field(default_factory=list)
    breaker_transitions: list[BreakerPoint] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    convergence_seconds: float | None = None
    converged: bool | None = None
    convergence_basis: str = ""  # what quiescence was judged on (streams, outboxes, events files)
    pending_republish: str = ""  # operations still owed by the republish job, and why (empty: none)
    events: EventTotals | None = None
    event_series: list[EventBucket] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the reader must know (partial data, ...)
    unhealed: list[str] = field(default_factory=list)  # what the heal path could not put back (links, processes)
    origin: dict[str, Any] = field(default_factory=dict)  # a drawn drill: generator, version, seed, index
    shrink: ShrinkRecord | None = None  # a shrunk drill: the path from the failing drill to this one

    @property
    def verdict(self) -> str:
        """pass | fail | interrupted | error."""
        if self.status != "completed":
            return self.status
        if not self.expectations or self.unhealed:
            return "fail"  # nothing judged is never a pass; a fault left in place is never a pass
        return "pass" if all(e.passed is True for e in self.expectations) else "fail"

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "error": 2, "interrupted": 130}[self.verdict]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.checker == name), None)

    def failed_expectations(self) -> list[ExpectationResult]:
        """Expectations that failed or could not be judged, in the order they were judged."""
        return [e for e in self.expectations if e.passed is not True]

    def fault_window(self, fault: AppliedFault) -> tuple[float, float | None]:
        """(start, end) of a fault in seconds since t0 (end None: never healed)."""
        return fault.since(self.t0_mono)

    def since_t0(self, mono: float) -> float:
        return round(mono - self.t0_mono, 3)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"] = [{**f.record(), **dict(zip(("start", "end"), self.fault_window(f)))} for f in self.faults]
        data["version"] = SUMMARY_VERSION
        data["verdict"] = self.verdict
        data["exit_code"] = self.exit_code
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["expectations"] = [ExpectationResult(**e) for e in data.get("expectations") or []]
        kw["phases"] = [_record(Phase, p) for p in data.get("phases") or []]
        kw["series"] = [_record(SeriesPoint, r) for r in data.get("series") or []]
        kw["totals"] = _record(LoadTotals, data["totals"]) if data.get("totals") else None
        kw["faults"] = [_fault(f, float(data.get("t0_mono") or 0.0)) for f in data.get("faults") or []]
        kw["process_faults"] = [_record(ProcessFaultReport, p) for p in data.get("process_faults") or []]
        kw["breaker_transitions"] = [_record(BreakerPoint, _renamed(t)) for t in data.get("breaker_transitions") or []]
        kw["checks"] = [_record(CheckResult, c) for c in data.get("checks") or []]
        kw["events"] = _record(EventTotals, data["events"]) if data.get("events") else None
        kw["event_series"] = [_record(EventBucket, b) for b in data.get("event_series") or []]
        if data.get("shrink"):
            rec = _record(ShrinkRecord, data["shrink"])
            rec.steps = [_record(ShrinkStep, st) for st in data["shrink"].get("steps") or []]
            kw["shrink"] = rec
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> "RunSummary":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _renamed(row: dict[str, Any]) -> dict[str, Any]:
    """Version 1 wrote a transition's states as `from`/`to`."""
    row = dict(row)
    if "from" in row:
        row.setdefault("from_state", row.pop("from"))
    if "to" in row:
        row.setdefault("to_state", row.pop("to"))
    return row


def _fault(data: dict[str, Any], t0_mono: float) -> AppliedFault:
    """A fault of verdict.json; version 2 wrote spans (start/end since t0, `actions` with `t`)."""
    if "for" in data:
        return AppliedFault.from_record(data)
    start, end = float(data.get("start") or 0.0), data.get("end")
    applied = not (end is None and data.get("status") == "failed")
    planned = PlannedFault(kind=str(data.get("kind", "")), at=start, duration=(end or start + 1.0) - start,
                           params=dict(data.get("params") or {}), id=str(data.get("id", "")),
                           **({"process": data["process"]} if data.get("process") else {"link": data.get("link") or "?"}))
    events = [FaultEvent(str(a.get("action")), 0.0, t0_mono + float(a.get("t") or 0.0),
                         pids_before=a.get("pids_before"), pids_after=a.get("pids_after"),
                         outcome=a.get("outcome") or None, error=a.get("error"),
                         ready_mono=None if a.get("ready_t") is None else t0_mono + float(a["ready_t"]),
                         ready_error=a.get("ready_error")) for a in data.get("actions") or []]
    status = data.get("status")
    return AppliedFault(planned, status=FaultStatus(status) if status in {s.value for s in FaultStatus}
                        else FaultStatus.HEALED, applied_mono=t0_mono + start if applied else None,
                        healed_mono=None if end is None else t0_mono + float(end), error=data.get("error"),
                        events=events)


def _record(cls: type, data: dict[str, Any]) -> Any:
    """A record from a dict, ignoring keys the record does not have (older or newer files)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
