"""The scenario file's schema: what a drill is allowed to say, checked before anything runs.

A drill that starts a stack, cuts links and then dies on a typo wastes minutes and may
leave faults behind, so every field is validated up front (pydantic v2, unknown keys
refused) and `kugeldrill.scenario` turns a validation error into a message naming the
file, the line and what was expected.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kugeldrill.chaos.record import PlannedFault
from kugeldrill.ground.durations import parse_duration

# Defect switches of the stand-in (docs/contracts.md §2); kept here so a typo is caught
# when the scenario is read, not when the stack refuses it half-way through a suite.
DEFECTS = (
    "breaker_per_request",
    "breaker_cumulative_failures",
    "breaker_unlimited_half_open",
    "subscriber_array_body",
    "stock_no_idempotency",
    "mark_before_effect",
    "shared_consumer_id",
    "database_index",
)
USER_CLASSES = ("CartUser", "TerminalUser", "OpenCloseUser")
SERVICES = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
BreakerStateName = Literal["CLOSED", "OPEN", "HALF_OPEN"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Stage(_Strict):
    """One step of a staged load: hold `users` for `duration` seconds."""

    duration: float = Field(gt=0)
    users: dict[str, int]
    spawn_rate: float = Field(default=5.0, gt=0)

    _secs = field_validator("duration", mode="before")(parse_duration)


class LoadSpec(_Strict):
    """The Locust side: users per class, ramp, run time (or stages), worker processes."""

    users: dict[str, int] = Field(default_factory=lambda: {"CartUser": 3, "TerminalUser": 1, "OpenCloseUser": 1})
    spawn_rate: float = Field(default=5.0, gt=0)
    duration: float | None = Field(default=None, gt=0)
    stages: list[Stage] | None = None
    processes: int = Field(default=1, ge=1, le=16)
    stop_timeout: float = Field(default=5.0, ge=0, le=60)
    config: dict[str, Any] = Field(default_factory=dict)  # weights, think times, items (locustfile's own schema)

    _secs = field_validator("duration", "stop_timeout", mode="before")(
        lambda v: v if v is None else parse_duration(v))

    @field_validator("users")
    @classmethod
    def _known_classes(cls, users: dict[str, int]) -> dict[str, int]:
        for name, count in users.items():
            if name not in USER_CLASSES:
                raise ValueError(f"unknown user class {name!r}; expected one of {', '.join(USER_CLASSES)}")
            if count < 0:
                raise ValueError(f"user count for {name} must be >= 0, got {count}")
        if sum(users.values()) <= 0:
            raise ValueError("at least one user is needed")
        return users

    @model_validator(mode="after")
    def _duration_or_stages(self) -> "LoadSpec":
        if self.duration is None and not self.stages:
            raise ValueError("give either 'duration' or 'stages'")
        if self.duration is not None and self.stages:
            raise ValueError("give 'duration' or 'stages', not both")
        return self

    @property
    def total_seconds(self) -> float:
        """How long the load runs, from Locust's start."""
        if self.stages:
            return sum(s.duration for s in self.stages)
        return float(self.duration or 0.0)

    @property
    def peak_users(self) -> dict[str, int]:
        """Users per class at the busiest point (what Locust must be able to spawn)."""
        if not self.stages:
            return dict(self.users)
        peak: dict[str, int] = {}
        for stage in self.stages:
            for name, n in stage.users.items():
                peak[name] = max(peak.get(name, 0), n)
        return peak


class BreakerOptions(_Strict):
    threshold: int = Field(default=3, ge=1)
    reset_seconds: float = Field(default=60.0, gt=0)
    half_open_max_calls: int = Field(default=1, ge=1)

    _secs = field_validator("reset_seconds", mode="before")(parse_duration)


class StackSpec(_Strict):
    """Options of the embedded stand-in (ignored, with a warning, for a real target)."""

    breaker: BreakerOptions = Field(default_factory=BreakerOptions)
    republish_interval_seconds: float = Field(default=5.0, gt=0)
    # only events older than this are republished (None: the interval). Kugelpos waits 5 min;
    # a drill that keeps a subscriber down repeatedly needs more than the interval, or every
    # round republishes the whole backlog to every subscriber (Surprise 4, amplification).
    republish_min_age_seconds: float | None = Field(default=None, gt=0)
    # Removed: real daprd is the only sidecar. Kept to say so to a file that still sets it.
    sidecar: None = Field(default=None, exclude=True)
    # 1.18: a failed delivery is acked (Dapr >= 1.17, tools/bin/daprd); 1.16: it stays pending
    # and is redelivered (tools/bin/daprd-1.16, make daprd-1.16).
    ack_model: Literal["1.18", "1.16"] = "1.18"
    defects: list[str] = Field(default_factory=list)
    crash_before_effect_every: int = Field(default=0, ge=0)
    # every Nth business write of a subscriber fails (a processing error the redelivery heals)
    fail_effect_every: int = Field(default=0, ge=0)
    resiliency: bool = True
    # The services' Dapr client helper: attempts per call on transport errors (Kugelpos: 3).
    dapr_max_attempts: int = Field(default=3, ge=1, le=10)
    # Dapr Redis pub/sub: how long an unacknowledged entry stays pending before the sidecar
    # reclaims and redelivers it (component default 180 s), and how often it looks. A Redis
    # fault can lose ACKs; a drill shortens these so redelivery happens within its run.
    processing_timeout_seconds: float | None = Field(default=None, gt=0)
    redeliver_interval_ms: int | None = Field(default=None, ge=0)
    # none: a Redis restart loses markers, streams, pending lists and groups; aof: it keeps them
    redis_persistence: Literal["none", "aof"] = "none"

    _secs = field_validator("republish_interval_seconds", "republish_min_age_seconds", "processing_timeout_seconds",
                            mode="before")(
        lambda v: v if v is None else parse_duration(v))

    @field_validator("defects")
    @classmethod
    def _known_defects(cls, defects: list[str]) -> list[str]:
        for name in defects:
            if name not in DEFECTS:
                raise ValueError(f"unknown defect switch {name!r}; expected one of {', '.join(DEFECTS)}")
        return defects

    @field_validator("sidecar", mode="before")
    @classmethod
    def _sidecar_removed(cls, value: Any) -> None:
        raise ValueError("removed: real daprd is the only Dapr sidecar (built by 'make setup'); delete this line")


class BreakerSequence(_Strict):
    """Observed states of one service's breaker must contain these states in this order."""

    service: str
    breaker: str | None = None  # any breaker of the service when omitted
    states: list[BreakerStateName] = Field(min_length=2)
    exact: bool = False  # True: the observed sequence must equal `states`

    @field_validator("service")
    @classmethod
    def _service(cls, name: str) -> str:
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")
        return name


class BreakerExpect(_Strict):
    check: bool = True  # the breaker checker's verdict must be valid
    sequences: list[BreakerSequence] = Field(default_factory=list)
    never_open: list[str] = Field(default_factory=list)  # services whose breakers must stay CLOSED
    close_tolerance_seconds: float | None = Field(default=None, ge=0)  # None: the checker's default


class DuplicatesExpect(_Strict):
    check: bool = True
    policy: Literal["strict", "tolerant"] = "tolerant"


class FanoutExpect(_Strict):
    check: bool = True
    policy: Literal["exactly_once", "at_least_once"] = "exactly_once"


class OutcomesExpect(_Strict):
    """The business state (report, journal, stock read through the public APIs) must show
    exactly what the load did; each part can be switched off on its own."""

    check: bool = True
    report: bool = True
    journal: bool = True
    stock: bool = True

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(part for part in ("report", "journal", "stock") if getattr(self, part))


class LoadExpect(_Strict):
    """Bounds on Locust's aggregate numbers (None: not judged)."""

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_error_rate_outside_faults: float | None = Field(default=None, ge=0, le=1)
    max_p95_ms: float | None = Field(default=None, gt=0)
    max_p99_ms: float | None = Field(default=None, gt=0)
    min_requests: int | None = Field(default=None, ge=0)


class ConvergenceExpect(_Strict):
    """Quiescence within max_seconds of the heal. wait_for_republish: when events whose publish
    failed are still due for the deployment's republish job, wait for that run (at most
    max_republish_wait_seconds) and judge after it, instead of reporting them as pending."""

    max_seconds: float = Field(default=30.0, gt=0)
    wait_for_republish: bool = False
    max_republish_wait_seconds: float = Field(default=420.0, gt=0)

    _secs = field_validator("max_seconds", "max_republish_wait_seconds", mode="before")(parse_duration)


class Expectations(_Strict):
    breaker: BreakerExpect = Field(default_factory=BreakerExpect)
    duplicates: DuplicatesExpect = Field(default_factory=DuplicatesExpect)
    fanout: FanoutExpect = Field(default_factory=FanoutExpect)
    outcomes: OutcomesExpect = Field(default_factory=OutcomesExpect)
    load: LoadExpect = Field(default_factory=LoadExpect)
    convergence: ConvergenceExpect = Field(default_factory=ConvergenceExpect)


class Scenario(_Strict):
    """A whole drill: what to run against, the load, the faults, and what must hold."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=60)
    description: str = ""
    target: str = "embedded"  # or a path to a target file (targets/*.yaml)
    long: bool = False
    load: LoadSpec
    faults: list[PlannedFault] = Field(default_factory=list)  # chaos' record, validated as the file says
    stack: StackSpec = Field(default_factory=StackSpec)
    expect: Expectations = Field(default_factory=Expectations)
