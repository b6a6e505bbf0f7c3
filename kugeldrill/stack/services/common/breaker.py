"""The circuit breaker of the seed spec, with Kugelpos' documented defects as switches.

Seed (dapr_components.ja.md): 3 failures → OPEN; OPEN rejects every call at once for
the reset time (60 s); then HALF_OPEN lets a trial through; success → CLOSED, failure →
OPEN again. The healthy breaker here counts *consecutive* failures (a success in CLOSED
resets the count) and admits `half_open_max_calls` trials (1) in HALF_OPEN.

Real Kugelpos differs (docs/kugelpos-facts.md §6.1); each difference is a switch so a drill
can prove its checker catches it:

* `cumulative_failures` — successes in CLOSED never reset the count;
* `unlimited_half_open` — HALF_OPEN admits every call, not one trial.

(`breaker_per_request`, the third breaker defect, is about *scope*, not the state
machine; `dapr_client.DaprClientHelper.scoped` implements it.)

Every transition is written as a `breaker` structured event and as Kugelpos' exact log
line; every call that meets the breaker as a `breaker_call` event, with the moment it was
admitted. Both are written inside the breaker's critical section, so the events file holds
them in the order the state machine saw them: the call that opens the breaker is the record
right after the opening, and a checker needs no timing slack to tell calls before a
transition from calls after it. Transitions happen only when a call arrives (as in
Kugelpos), so an idle OPEN breaker stays OPEN. Thread-safe: state changes are short
critical sections under one lock, never across an await, so it is safe from many asyncio
tasks and threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.kugel_logging import DAPR_HELPER

log = logging.getLogger(DAPR_HELPER)


class BreakerState(str, Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        """Value of `kugeldrill_breaker_state` (contracts §3): 0 closed, 1 half-open, 2 open."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]

    @property
    def kugel_name(self) -> str:
        """Kugelpos' spelling in log lines (CLOSED / OPEN / HALF_OPEN)."""
        return self.name


@dataclass(frozen=True)
class Admission:
    """Proof that a call was let through; hand it back with the call's outcome."""

    op: str
    state: BreakerState
    generation: int
    trial: bool
    mono: float  # when it was admitted


class BreakerStats:
    """Counters and transition history for one breaker name in one process.

    Shared by every breaker instance of that name, so that under `breaker_per_request`
    (many short-lived instances) /metrics still sums what all of them did.
    """

    def __init__(self, name: str, *, history: int = 1000) -> None:
        self.name = name
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.rejections: Counter[str] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()  # (op, outcome)
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.instances = 0
        self.lock = threading.Lock()


class CircuitBreaker:
    """CLOSED → OPEN → HALF_OPEN → CLOSED/OPEN, with an injectable monotonic clock.

    Use: `adm = breaker.admit(op)`; if it is None the call is rejected (do not call the
    sidecar); otherwise call, then `breaker.record_success(adm)` or
    `breaker.record_failure(adm, reason)`.
    """

    def __init__(
        self,
        name: str = "dapr",
        *,
        threshold: int = 3,
        reset_seconds: float = 60.0,
        half_open_max_calls: int = 1,
        cumulative_failures: bool = False,
        unlimited_half_open: bool = False,
        clock: Callable[[], float] = time.monotonic,
        events: EventLog | None = None,
        stats: BreakerStats | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"breaker threshold must be >= 1, got {threshold}")
        if reset_seconds < 0:
            raise ValueError(f"breaker reset_seconds must be >= 0, got {reset_seconds}")
        if half_open_max_calls < 1:
            raise ValueError(f"breaker half_open_max_calls must be >= 1, got {half_open_max_calls}")
        self.name = name
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.half_open_max_calls = half_open_max_calls
        self.cumulative_failures = cumulative_failures
        self.unlimited_half_open = unlimited_half_open
        self._clock = clock
        self._events = events
        self.stats = stats or BreakerStats(name)
        with self.stats.lock:
            self.stats.instances += 1
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._generation = 0
        self._trials_in_flight = 0

    @classmethod
    def from_config(
        cls,
        config: Any,
        *,
        name: str = "dapr",
        events: EventLog | None = None,
        stats: BreakerStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> "CircuitBreaker":
        """Build from a ServiceConfig: its `breaker` numbers and breaker defect switches."""
        return cls(
            name,
            threshold=config.breaker.threshold,
            reset_seconds=config.breaker.reset_seconds,
            half_open_max_calls=config.breaker.half_open_max_calls,
            cumulative_failures=config.has_defect("breaker_cumulative_failures"),
            unlimited_half_open=config.has_defect("breaker_unlimited_half_open"),
            clock=clock,
            events=events,
            stats=stats,
        )

    # ---- read-only views -------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state as of the last call (OPEN stays OPEN until a call arrives after the reset time)."""
        with self._lock:
            return self._state

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def open_remaining(self) -> float:
        """Seconds until an OPEN breaker will admit a trial (0 when not OPEN)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    # ---- the state machine -------------------------------------------------------------

    def admit(self, op: str) -> Admission | None:
        """Let a call through (an Admission) or reject it at once (None)."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_seconds:
                self._transition(BreakerState.HALF_OPEN, f"reset time {self.reset_seconds:g}s elapsed")
            state = self._state
            now = self._clock()
            if state is BreakerState.CLOSED:
                return Admission(op, state, self._generation, trial=False, mono=now)
            if state is BreakerState.HALF_OPEN:
                if self.unlimited_half_open or self._trials_in_flight < self.half_open_max_calls:
                    self._trials_in_flight += 1
                    return Admission(op, state, self._generation, trial=True, mono=now)
            # Rejected (OPEN, or HALF_OPEN with its trial already in flight).
            with self.stats.lock:
                self.stats.rejections[op] += 1
                self.stats.calls[(op, "rejected")] += 1
            self._emit("breaker_call", state=state.value, op=op, outcome="rejected", admitted_mono=now)
        return None

    def record_success(self, admission: Admission) -> None:
        """The admitted call succeeded."""
        with self._lock:
            if admission.generation == self._generation:
                if self._state is BreakerState.HALF_OPEN:
                    self._trials_in_flight = max(0, self._trials_in_flight - 1)
                    self._failures = 0
                    self._transition(BreakerState.CLOSED, f"trial {admission.op} succeeded")
                elif self._state is BreakerState.CLOSED and not self.cumulative_failures:
                    self._failures = 0
            # A result from an earlier generation (admitted before a transition) changes nothing.
            self._count_call(admission, "ok")

    def record_failure(self, admission: Admission, reason: str = "") -> None:
        """The admitted call failed (HTTP error or transport error after retries)."""
        with self._lock:
            if admission.generation == self._generation:
                if self._state is BreakerState.HALF_OPEN:
                    self._trials_in_flight = max(0, self._trials_in_flight - 1)
                    self._failures += 1
                    self._opened_at = self._clock()
                    self._transition(BreakerState.OPEN, f"trial {admission.op} failed: {reason}".rstrip(": "))
                elif self._state is BreakerState.CLOSED:
                    self._failures += 1
                    if self._failures >= self.threshold:
                        self._opened_at = self._clock()
                        self._transition(BreakerState.OPEN, f"{admission.op} failed: {reason}".rstrip(": "))
            self._count_call(admission, "fail")

    # ---- internals -------------------------------------------------------------------

    def _transition(self, to: BreakerState, reason: str) -> None:
        """Change state; caller holds self._lock."""
        frm = self._state
        self._state = to
        self._generation += 1
        self._trials_in_flight = 0
        failures = self._failures
        if to is BreakerState.OPEN:
            log.warning("Circuit breaker OPEN after %d failures", failures)
        elif to is BreakerState.HALF_OPEN:
            log.info("Circuit breaker moved to HALF_OPEN state")
        else:
            log.info("Circuit breaker CLOSED after successful operation")
        record = self._emit("breaker", breaker=self.name, **{"from": frm.value, "to": to.value}, failures=failures, reason=reason)
        with self.stats.lock:
            self.stats.state = to
            self.stats.failures = failures
            self.stats.transitions[(frm.value, to.value)] += 1
            self.stats.history.append(
                record
                or {"ts": time.time(), "mono": self._clock(), "breaker": self.name, "from": frm.value, "to": to.value,
                    "failures": failures, "reason": reason}
            )

    def _count_call(self, admission: Admission, outcome: str) -> None:
        """Caller holds self._lock: the record lands right after any transition the call caused."""
        with self.stats.lock:
            self.stats.calls[(admission.op, outcome)] += 1
            self.stats.failures = self._failures
        self._emit("breaker_call", state=admission.state.value, op=admission.op, outcome=outcome,
                   admitted_mono=admission.mono)

    def _emit(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        if self._events is None:
            return None
        fields.setdefault("breaker", self.name)
        return self._events.emit(kind, **fields)


class BreakerRegistry:
    """All breaker stats of one service process, rendered for /metrics and diagnostics."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._stats: dict[str, BreakerStats] = {}
        self._lock = threading.Lock()

    def stats_for(self, name: str) -> BreakerStats:
        with self._lock:
            if name not in self._stats:
                self._stats[name] = BreakerStats(name)
            return self._stats[name]

    def all(self) -> list[BreakerStats]:
        with self._lock:
            return list(self._stats.values())

    def snapshot(self) -> dict[str, Any]:
        """JSON for GET /api/v1/diagnostics/breaker: current state and every transition kept."""
        out = []
        for st in self.all():
            with st.lock:
                out.append(
                    {
                        "breaker": st.name,
                        "state": st.state.value,
                        "failures": st.failures,
                        "instances": st.instances,
                        "transitions": list(st.history),
                        "rejections": dict(st.rejections),
                        "calls": [{"op": op, "outcome": oc, "count": n} for (op, oc), n in sorted(st.calls.items())],
                    }
                )
        # Also flat, oldest first, for readers that want every transition of the process.
        flat = sorted((t for b in out for t in b["transitions"]), key=lambda t: t.get("mono", 0.0))
        return {"service": self.service, "breakers": out, "transitions": flat}

    def render_prometheus(self) -> str:
        """Prometheus text exposition of the three breaker metric families (contracts §3)."""
        return render_prometheus(self.service, self.all())


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(service: str, stats: Iterable[BreakerStats]) -> str:
    """State gauge, transition and rejection counters, one sample per label set."""
    stats = list(stats)
    svc = _label(service)
    lines = [
        "# HELP kugeldrill_breaker_state Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        "# TYPE kugeldrill_breaker_state gauge",
    ]
    for st in stats:
        with st.lock:
            lines.append(f'kugeldrill_breaker_state{{service="{svc}",breaker="{_label(st.name)}"}} {st.state.gauge}')
    lines += [
        "# HELP kugeldrill_breaker_transitions_total Circuit breaker state transitions.",
        "# TYPE kugeldrill_breaker_transitions_total counter",
    ]
    for st in stats:
        with st.lock:
            for (frm, to), n in sorted(st.transitions.items()):
                lines.append(
                    f'kugeldrill_breaker_transitions_total{{service="{svc}",breaker="{_label(st.name)}",'
                    f'from="{frm}",to="{to}"}} {n}'
                )
    lines += [
        "# HELP kugeldrill_breaker_rejections_total Calls rejected by the circuit breaker without reaching the sidecar.",
        "# TYPE kugeldrill_breaker_rejections_total counter",
    ]
    for st in stats:
        with st.lock:
            for op, n in sorted(st.rejections.items()):
                lines.append(
                    f'kugeldrill_breaker_rejections_total{{service="{svc}",breaker="{_label(st.name)}",op="{_label(op)}"}} {n}'
                )
    return "\n".join(lines) + "\n"
