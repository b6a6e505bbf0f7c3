"""A fault's two records, the same from the scenario file to the report.

`PlannedFault` is a fault as planned: what (kind, params), on what (a link or a process,
or a selector over several), when (`at`) and for how long (`for`). The scenario file's
`faults:` entries are read into it (pydantic validates the file against its fields),
`kugeldrill explore` draws it, the timeline expands a selector into one per subject.

`AppliedFault` is a planned fault on one subject as the timeline carried it out: its
status, when it took effect and when it was healed, every action with the pids it saw,
what an observer measured. It is one entry of `timeline.json` (`record()` /
`from_record()`, contracts §5), what the checkers judge against (applied ones: their
failing windows, kills, lost state) and what the report draws and lists. Facts derived
from it (its subject, the app it hits, its kill instants, the end of its window) are
properties here, derived once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from kugeldrill.chaos.event import FaultEvent
from kugeldrill.ground.durations import parse_duration

MAX_FAULT_SECONDS = 24 * 3600.0
PROXY_PREFIX = "kugeldrill."


class FaultStatus(StrEnum):
    """Where a fault stands: `pending` (not yet due), `active` (in place), `healed`, `failed`
    (it did not take effect; `error` says why), `skipped` (the run stopped before it)."""

    PENDING = "pending"
    ACTIVE = "active"
    HEALED = "healed"
    FAILED = "failed"
    SKIPPED = "skipped"


STATUSES = frozenset(s.value for s in FaultStatus)


def _link_selector(value: str | None) -> str | None:
    for part in (value or "").split(",") if value is not None else []:
        if "@" not in part.strip():
            raise ValueError(f"link selector {part.strip()!r} must look like '<kind>@<app>' "
                             "(e.g. redis@cart, *@journal)")
    return value


def _process_selector(value: str | None) -> str | None:
    for part in (value or "").split(",") if value is not None else []:
        part = part.strip()
        if part not in ("redis", "*") and "@" not in part:
            raise ValueError(f"process selector {part!r} must be 'redis', 'sidecar@<app>' or 'app@<app>' "
                             "(e.g. app@journal, sidecar@*)")
    return value


Seconds = BeforeValidator(parse_duration)


@dataclass(frozen=True)
class PlannedFault:
    """One fault as planned. A link kind names `link`, a process kind `process` (exactly one);
    either may be a selector (`redis@*`, `app@report,app@journal`) until the timeline expands
    it into one planned fault per subject, with id `<id>:<subject>`."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    kind: Annotated[str, Field(min_length=1)]
    at: Annotated[float, Field(ge=0), Seconds]  # (the parser wraps the bounds: they judge seconds)
    duration: Annotated[float, Field(alias="for", gt=0, le=MAX_FAULT_SECONDS), Seconds]
    link: Annotated[str | None, AfterValidator(_link_selector), Field(min_length=3)] = None
    process: Annotated[str | None, AfterValidator(_process_selector), Field(min_length=1)] = None
    params: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if (self.link is None) == (self.process is None):
            raise ValueError("give either 'link' (a link fault) or 'process' (kill, pause, restart), not "
                             + ("both" if self.link is not None else "neither"))

    @property
    def subject(self) -> str:
        """The link or process target it acts on (or the selector naming several)."""
        return self.process if self.process is not None else str(self.link)

    @property
    def is_process(self) -> bool:
        return self.process is not None

    @property
    def end(self) -> float:
        return self.at + self.duration

    @property
    def app(self) -> str:
        """The app the subject belongs to ('' for redis)."""
        return self.subject.split("@", 1)[1] if "@" in self.subject else ""

    @property
    def part(self) -> str:
        """What of the app: redis | sidecar | app (the link's or the process target's kind)."""
        return self.subject.split("@", 1)[0]

    @property
    def proxy(self) -> str | None:
        """The Toxiproxy proxy of a link fault on one link (None for a process fault)."""
        return None if self.link is None else PROXY_PREFIX + self.link

    def on(self, subject: str, fault_id: str) -> PlannedFault:
        """This fault on one subject of its selector."""
        if self.is_process:
            return replace(self, id=fault_id, process=subject)
        return replace(self, id=fault_id, link=subject)

    def describe(self) -> str:
        """`latency latency=800 sidecar@cart 4–10s`: a line for consoles and shrink paths."""
        extra = "" if not self.params else " " + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind}{extra} {self.subject} {self.at:g}–{self.end:g}s"

    def to_entry(self) -> dict[str, Any]:
        """The scenario file's entry (`at`, `for`, `link` or `process`, `kind`, `params`, `id`)."""
        entry: dict[str, Any] = {"at": round(self.at, 3), "for": round(self.duration, 3),
                                 ("process" if self.is_process else "link"): self.subject, "kind": self.kind}
        if self.params:
            entry["params"] = dict(self.params)
        if self.id is not None:
            entry["id"] = self.id
        return entry


@dataclass
class AppliedFault:
    """A planned fault on one subject, and what happened to it (see the module docstring)."""

    planned: PlannedFault
    status: FaultStatus = FaultStatus.PENDING
    applied_wall: float | None = None
    applied_mono: float | None = None
    healed_wall: float | None = None
    healed_mono: float | None = None
    error: str | None = None  # the first thing that went wrong (apply, a step, the heal)
    stopped_early: bool = False  # healed before its time: the run stopped
    events: list[FaultEvent] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)  # {phase, wall, mono, data}

    # -- the plan, as every reader names it
    @property
    def id(self) -> str:
        return str(self.planned.id)

    fault_id = id

    @property
    def kind(self) -> str:
        return self.planned.kind

    @property
    def params(self) -> dict[str, Any]:
        return self.planned.params

    @property
    def link(self) -> str | None:
        return self.planned.link

    @property
    def process(self) -> str | None:
        return self.planned.process

    @property
    def subject(self) -> str:
        return self.planned.subject

    @property
    def app(self) -> str:
        return self.planned.app

    @property
    def link_kind(self) -> str:
        """redis | sidecar | app for a link fault; '' for a process fault (see process_kind)."""
        return "" if self.planned.is_process else self.planned.part

    @property
    def process_kind(self) -> str:
        """redis | sidecar | app for a process fault; '' for a link fault."""
        return self.planned.part if self.planned.is_process else ""

    # -- its window, for the checkers (only applied faults have one)
    @property
    def applied(self) -> bool:
        return self.applied_mono is not None

    @property
    def start_mono(self) -> float:
        """When it took effect (NaN for one that never did: checkers only get applied faults)."""
        return float("nan") if self.applied_mono is None else self.applied_mono

    @property
    def start_wall(self) -> float:
        return float(self.applied_wall or 0.0)

    @property
    def end_mono(self) -> float | None:
        """Healed; for a restarted process not before it answered again (not serving until then)."""
        if self.healed_mono is None:
            return None
        ready = [e.ready_mono for e in self.events if e.action == "start" and e.ready_mono is not None]
        return max([self.healed_mono, *ready])

    @property
    def end_wall(self) -> float | None:
        end = self.end_mono
        if end is None or self.healed_mono is None:
            return None
        return (self.healed_wall or 0.0) + (end - self.healed_mono)

    @property
    def kills(self) -> list[float]:
        """When its process was SIGKILLed and gone: each kill, and each stop that needed SIGKILL
        (when the action returned — the process worked on until then)."""
        return [e.mono + (e.seconds or 0.0) for e in self.events if e.error is None and
                (e.action == "kill" or (e.action == "stop" and e.outcome == "escalated"))]

    @property
    def state_lost(self) -> bool | None:
        """For a Redis kill/restart: did idempotency markers vanish (markers before vs how many of
        exactly those survived)? None: not measured, or not a Redis restart."""
        if self.process != "redis" or self.kind not in ("kill", "restart"):
            return None
        before: int | None = None
        lost: bool | None = None
        for obs in self.observations:
            data = obs.get("data") or {}
            if obs.get("phase") == "before" and data.get("markers_total") is not None:
                before = int(data["markers_total"])
            elif obs.get("phase") == "after" and before is not None:
                survived = (data.get("survived") or {}).get("markers_survived")
                if survived is not None:
                    lost = bool(lost) or int(survived) < before
        return lost

    @property
    def pids(self) -> dict[str, list[int] | None]:
        acts = [e for e in self.events if e.pids_before is not None]
        return {"before": acts[0].pids_before if acts else None, "after": acts[-1].pids_after if acts else None}

    def since(self, t0_mono: float) -> tuple[float, float | None]:
        """(start, end) in seconds after t0 for a report: where it was due when it never took
        effect; end None when it was never healed."""
        start = self.applied_mono - t0_mono if self.applied_mono is not None else self.planned.at
        end = self.end_mono
        return round(start, 3), None if end is None else round(end - t0_mono, 3)

    # -- timeline.json
    def record(self) -> dict[str, Any]:
        """This fault's timeline.json entry (contracts §5)."""
        p = self.planned
        out: dict[str, Any] = {
            "id": p.id, "link": p.link, "proxy": p.proxy, "kind": p.kind, "params": dict(p.params),
            "at": p.at, "for": p.duration, "applied_wall": self.applied_wall, "applied_mono": self.applied_mono,
            "healed_wall": self.healed_wall, "healed_mono": self.healed_mono, "error": self.error,
            "status": str(self.status), "stopped_early": self.stopped_early,
            "events": [e.record() for e in self.events]}
        if p.is_process:
            out.update(process=p.process, pids=self.pids, observations=[dict(o) for o in self.observations])
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> AppliedFault:
        """Read an entry back (files of older versions too: a missing status is derived)."""
        planned = PlannedFault(kind=str(data.get("kind", "")), at=float(data.get("at") or 0.0),
                               duration=float(data.get("for") or 0.0), link=data.get("link") or None,
                               process=data.get("process") or None, params=dict(data.get("params") or {}),
                               id=str(data.get("id", "")))
        status = data.get("status") or ("healed" if data.get("healed_mono") is not None else
                                        "active" if data.get("applied_mono") is not None else "failed")
        return cls(planned, status=FaultStatus(status) if status in STATUSES else FaultStatus.FAILED, applied_wall=_num(data.get("applied_wall")),
                   applied_mono=_num(data.get("applied_mono")), healed_wall=_num(data.get("healed_wall")),
                   healed_mono=_num(data.get("healed_mono")), error=data.get("error"),
                   stopped_early=bool(data.get("stopped_early")),
                   events=[FaultEvent.from_record(e) for e in data.get("events") or [] if isinstance(e, dict)],
                   observations=[dict(o) for o in data.get("observations") or [] if isinstance(o, dict)])


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
