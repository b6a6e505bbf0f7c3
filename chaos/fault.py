"""The one interface every fault kind implements: apply, heal, observe.

Like a Jepsen nemesis (`invoke!` / `teardown!`), a `Fault` is a small part that knows how
to put one fault on one subject in place and take it away again; the timeline only
composes them. Each kind's class says:

* `apply()` — put the fault in place (raise if it did not take effect);
* `heal()` — undo it; idempotent (it runs on schedule, on stop, from a signal handler,
  and maybe twice), raises if the subject is not back to normal;
* `observe()` — what of this fault is still in place right now ([] once healed): the
  heal path's proof, and the report's list of leftovers when a heal failed;
* `steps()` — its timed actions: `apply` at 0, optional intermediate steps (a flap's
  toggles, a ramp's increases, repeated kills) run by `act(label)`, and `heal` at its end.

The base class keeps the `AppliedFault` record: status, when it took effect and when it
was healed, the first error. A kind records its own events (a process action's pids, a
flap's toggles) into `self.record`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kugeldrill.chaos.record import AppliedFault, FaultStatus, PlannedFault

if TYPE_CHECKING:
    from kugeldrill.chaos.kinds import FaultKind
    from kugeldrill.chaos.lease import Lease
    from kugeldrill.chaos.processes import ProcessControl
    from kugeldrill.chaos.toxiproxy import ToxiproxyClient

APPLY, HEAL = "apply", "heal"
Observer = Callable[[str, str], dict[str, Any] | None]  # (target, "before" | "after") -> measurements


@dataclass(frozen=True)
class Step:
    """A timed action of one fault, `offset` seconds after it starts: apply, heal, or an
    intermediate label the kind's `act()` understands (down, up, latency=200, kill)."""

    offset: float
    label: str


@dataclass
class FaultContext:
    """What faults act through, and the timeline's clock and lock (for faults that repeat on
    their own, like a kill once the restarted process has answered for `uptime` seconds)."""

    toxiproxy: ToxiproxyClient | None = None
    processes: ProcessControl | None = None
    observe: Observer | None = None
    lease: Lease | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    elapsed: Callable[[], float] = lambda: 0.0
    changed: Callable[[], None] = lambda: None  # the record changed outside a scheduled step


class Fault(ABC):
    """One planned fault on one subject, bound to what acts on it."""

    def __init__(self, planned: PlannedFault, kind: FaultKind, ctx: FaultContext) -> None:
        self.kind = kind
        self.ctx = ctx
        self.record = AppliedFault(planned)

    @property
    def planned(self) -> PlannedFault:
        return self.record.planned

    @property
    def resource(self) -> str:
        """What one fault at a time may hold; faults on one resource run their steps in order."""
        return self.planned.subject

    # -- what a kind implements
    @abstractmethod
    def apply(self) -> None: ...

    @abstractmethod
    def heal(self) -> None: ...

    @abstractmethod
    def observe(self) -> list[str]: ...

    def steps(self) -> list[Step]:
        return [Step(0.0, APPLY), Step(self.planned.duration, HEAL)]

    def act(self, label: str) -> None:
        """An intermediate step; records what it did, raises nothing."""

    def background_done(self, timeout: float) -> bool:
        """Wait for work the fault does in the background (readiness probes); True when none is left."""
        return True

    # -- run by the timeline and the heal path
    def perform(self, step: Step) -> None:
        """Run one scheduled step and keep the record; never raises (a failure is recorded)."""
        rec = self.record
        if step.label == HEAL:
            self.heal_now(stopped=False)
            return
        if rec.status in (FaultStatus.FAILED, FaultStatus.HEALED, FaultStatus.SKIPPED):
            return  # a failed apply: skip its intermediate steps; the heal still runs on schedule
        if step.label == APPLY:
            try:
                self.apply()
            except Exception as exc:  # noqa: BLE001 - recorded; the heal still runs
                rec.status = FaultStatus.FAILED
                self.note_error(APPLY, exc)
                return
            rec.status = FaultStatus.ACTIVE
            if rec.applied_mono is None:
                rec.applied_wall, rec.applied_mono = time.time(), time.monotonic()
        elif rec.status == FaultStatus.ACTIVE:
            self.act(step.label)

    def heal_now(self, *, stopped: bool) -> None:
        """Heal if anything may be in place (active, or a failed apply that may have acted);
        a fault not yet due is skipped. Idempotent; never raises."""
        rec = self.record
        if rec.status == FaultStatus.PENDING:
            rec.status = FaultStatus.SKIPPED
            return
        if rec.status in (FaultStatus.HEALED, FaultStatus.SKIPPED) or rec.healed_mono is not None:
            return
        try:
            self.heal()
        except Exception as exc:  # noqa: BLE001 - what is left is reported by observe()
            self.note_error(HEAL, exc)
            return
        rec.healed_wall, rec.healed_mono = time.time(), time.monotonic()
        if rec.status == FaultStatus.ACTIVE:
            rec.status = FaultStatus.HEALED
            rec.stopped_early = stopped

    def note_error(self, label: str, exc: BaseException | str) -> None:
        """Keep the first error (later ones are usually its consequences)."""
        text = exc if isinstance(exc, str) else str(exc) or type(exc).__name__
        if self.record.error is None:
            self.record.error = f"{label}: {text}"


class FaultsHeal:
    """A timeline's faults as one part of the heal path (`chaos.heal.heal`): each heals itself,
    and each that ever acted is observed afterwards."""

    name = "faults"

    def __init__(self, faults: list[Fault], *, stopped: bool = True) -> None:
        self.faults = faults
        self.stopped = stopped
        self.errors: list[str] = []  # a fault's heal error is in its record (and what it left, in leftovers)

    def heal(self) -> list[str]:
        done = []
        for fault in self.faults:
            before = fault.record.healed_mono
            fault.heal_now(stopped=self.stopped)
            if before is None and fault.record.healed_mono is not None:
                done.append(f"healed {fault.record.id} ({fault.kind.name} on {fault.record.subject})")
        return done

    def leftovers(self) -> list[str]:
        out: list[str] = []
        for fault in self.faults:
            if fault.record.status in (FaultStatus.PENDING, FaultStatus.SKIPPED):
                continue
            out += fault.observe()
        return out
