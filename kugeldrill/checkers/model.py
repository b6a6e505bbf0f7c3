"""Normalised records that adapters produce and checkers consume.

Adapters turn a source (the stand-in's structured events and diagnostics endpoints, or a
real Kugelpos deployment's log lines, Redis markers and consumer groups) into these
records. Checkers see only these types, which is what lets one checker judge both.

Times: every record carries `mono` (CLOCK_MONOTONIC seconds, comparable across
processes on one machine) and `wall` (epoch seconds). Records from a source without a
monotonic clock (log files of a remote deployment) set `mono` from `wall` via the run's
clock offset, see `checkers.adapters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kugeldrill.ground.history_read import Op, Outcome  # the load's records live on the ground floor

BreakerState = Literal["CLOSED", "OPEN", "HALF_OPEN"]

# Topic -> subscribers that must apply each event exactly once (the seed's fan-out).
TOPIC_TRANLOG = "topic-tranlog"
TOPIC_CASHLOG = "topic-cashlog"
TOPIC_OPENCLOSELOG = "topic-opencloselog"
EXPECTED_SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    TOPIC_TRANLOG: ("report", "journal", "stock"),
    TOPIC_CASHLOG: ("report", "journal"),
    TOPIC_OPENCLOSELOG: ("report", "journal"),
}


@dataclass(slots=True)
class BreakerTransition:
    service: str  # app id: cart, terminal, report, journal, stock
    breaker: str  # breaker name within the service (e.g. "dapr", "republish")
    mono: float
    wall: float
    from_state: BreakerState
    to_state: BreakerState
    failures: int | None = None  # the breaker's own count at the transition, where the source records it
    reason: str = ""
    seq: int | None = None  # position in the service's record stream (events file, log): exact order


@dataclass(slots=True)
class BreakerCall:
    """One call that met the breaker: admitted in some state, or rejected while OPEN."""

    service: str
    breaker: str
    mono: float
    wall: float
    state: BreakerState  # the state in which the call was admitted or rejected
    op: str  # publish | get | save | delete | bulk
    outcome: Literal["ok", "fail", "rejected"]
    seq: int | None = None  # position in the service's record stream: exact order against transitions
    admitted_mono: float | None = None  # when the breaker admitted (or rejected) it, where recorded


@dataclass(slots=True)
class Publication:
    """A publisher's attempt to publish one event (initial or republish)."""

    publisher: str  # cart | terminal
    event_id: str
    topic: str
    key: str  # business key, see checkers.keys
    mono: float
    wall: float
    outcome: Literal["ok", "failed", "rejected_open"]
    attempt: Literal["initial", "republish"] = "initial"


@dataclass(slots=True)
class Application:
    """A subscriber applying an event's business effect (its ground truth)."""

    subscriber: str  # report | journal | stock
    event_id: str | None  # None where the source cannot see event ids
    topic: str
    key: str
    mono: float
    wall: float
    attempt: int | None = None
    dedup: str = ""  # how the idempotency check went: miss | error | disabled | ""


@dataclass(slots=True)
class StreamGroup:
    """A Redis Streams consumer group's position on one topic stream."""

    topic: str
    group: str
    lag: int | None  # entries not yet delivered to the group (None: Redis < 7 cannot tell)
    pending: int  # delivered, not acknowledged
    consumers: int = 0


@dataclass(slots=True)
class OutboxEntry:
    """A publisher's delivery-status document: per-subscriber pending/received/failed."""

    publisher: str
    event_id: str
    topic: str
    key: str
    status: str  # published | delivered | partially_delivered | failed
    services: dict[str, str] = field(default_factory=dict)


Validity = bool | None  # None = unknown (data missing)


@dataclass(slots=True)
class CheckResult:
    """What a checker returns; reports render it, expectations judge it.

    valid: True, False, or None when the data needed were missing ("unknown" is never
    silently a pass). counts: the checker's totals. examples: up to N first examples per
    failure kind, as plain dicts with times.
    """

    checker: str
    valid: Validity
    summary: str
    counts: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "valid": self.valid,
            "summary": self.summary,
            "counts": self.counts,
            "examples": self.examples,
            "details": self.details,
        }


@dataclass(slots=True)
class ProcessCrash:
    """A service process ended abruptly by itself (the stand-in's `crash` event).

    Like a kill of `app@X`: a delivery in flight may have had its business effect without
    its idempotency mark, so its redelivery applies it again — the duplicate the seed's
    order (check → apply → mark) allows."""

    service: str
    mono: float
    wall: float
    reason: str = ""


@dataclass(slots=True)
class StateUnreachable:
    """A service could not reach its state store (stand-in `state_unreachable` event).

    Marks a moment at which the service's idempotency check could not work, so a
    duplicate applied around it is tolerated by the seed's policy.
    """

    service: str
    mono: float
    wall: float
    op: str = ""
    key: str = ""
    error: str = ""


@dataclass(slots=True)
class MarkWrite:
    """A subscriber writing an event's idempotency mark (stand-in `marked` event; Kugelpos'
    "Successfully saved state for <event_id>" / "Failed to save state for <event_id>" lines).

    The duplicate checker's evidence: a redelivery applied again is explained when the first
    application's mark was never written (a write that failed while the store was out of
    reach, or a kill before it) — and not when the mark was there."""

    subscriber: str
    event_id: str
    mono: float  # when the write ended (its outcome known)
    wall: float
    ok: bool
    error: str = ""
    started_mono: float | None = None  # when the write was called (None: the source does not say)


@dataclass(slots=True)
class IdempotencyMarker:
    """A subscriber's idempotency marker as Dapr stores it: Redis hash `<app>||<event_id>`.

    version counts the saves (Dapr HINCRBYs it on every write), so version > 1 means the
    subscriber saved the marker more than once, i.e. processed the event again.
    """

    subscriber: str
    event_id: str
    version: int | None
    ttl_seconds: int | None = None  # -1 no expiry, None unknown


# ---------------------------------------------------------------- business state (what users see)


@dataclass
class JournalEntry:
    """One electronic-journal entry (transaction, cash movement, open/close)."""

    terminal_no: int | None  # None: the answer did not carry it (the entry is placed nowhere: unknown)
    transaction_type: int | None
    transaction_no: int | None
    receipt_no: int | None
    amount: float | None
    quantity: float | None
    business_date: str | None
    generate_date_time: str

    def identity(self) -> tuple[Any, ...]:
        return (self.terminal_no, self.transaction_type, self.transaction_no, self.receipt_no,
                self.generate_date_time, self.amount)


@dataclass
class Figure:
    """An amount/quantity/count block of the sales report (None: the answer did not carry it)."""

    amount: float | None = 0.0
    quantity: float | None = 0.0
    count: float | None = 0.0


#: The code a report's tax or payment line is filed under when it cannot be told apart (its
#: list or its name not carried): its figures are None and make every line of its kind unknown.
UNNAMED = "?"


@dataclass
class SalesReport:
    """A terminal's flash sales report for one business date (Kugelpos' figures)."""

    terminal_no: int
    business_date: str
    gross: Figure = field(default_factory=Figure)
    returns: Figure = field(default_factory=Figure)
    net: Figure = field(default_factory=Figure)
    taxes: dict[str, dict[str, float | None]] = field(default_factory=dict)  # tax code -> tax/target amount, quantity
    payments: dict[str, dict[str, float | None]] = field(default_factory=dict)  # payment code -> amount, count
    cash_in: Figure = field(default_factory=Figure)
    cash_out: Figure = field(default_factory=Figure)


@dataclass
class Unreadable:
    """One read of the business state that failed: which part (and terminal), the request,
    and the answer (HTTP status and body) or the transport error — structured, so that a
    known defect (e.g. a closed terminal's report answering 422) can be matched on it."""

    part: str  # report | journal | stock | terminal
    request: str  # "GET <path>"
    error: str
    status: int | None = None  # HTTP status (None: no answer)
    body: str = ""  # the answer's body, first 500 characters
    terminal_no: int | None = None
    business_date: str | None = None

    def text(self) -> str:
        answer = f"HTTP {self.status}" + (f": {self.body[:160]}" if self.body else "") if self.status else self.error
        return f"{self.request}: {answer}"


@dataclass
class BusinessSnapshot:
    """Report, journal and stock of the drill's tenant and store at one moment.

    A part that could not be read at all is absent (None) with its reason in `errors`; a
    single terminal's report (or business date) that could not be read is in `unreadable`
    (the other terminals are still judged). `terminal_dates`: each terminal's business date
    at the moment (GET /terminals/{id}).
    """

    taken_wall: float
    journal: list[JournalEntry] | None = None
    stock: dict[str, float | None] | None = None  # item -> current quantity (None: the answer did not carry it)
    reports: dict[str, SalesReport] = field(default_factory=dict)  # "<terminal_no>/<business_date>"
    terminal_dates: dict[int, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unsettled: str = ""  # why events may still have been landing when it was read (empty: quiescent)
    unreadable: list[Unreadable] = field(default_factory=list)

    def unreadable_report(self, terminal_no: int, business_date: str | None = None) -> Unreadable | None:
        """Why this terminal's report (or its business date) could not be read, if it could not."""
        for u in self.unreadable:
            if u.terminal_no == terminal_no and u.part in ("report", "terminal") and (
                    business_date is None or u.business_date in (None, business_date)):
                return u
        return None

    def report(self, terminal_no: int, business_date: str) -> SalesReport | None:
        return self.reports.get(f"{terminal_no}/{business_date}")
