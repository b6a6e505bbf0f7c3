"""Faults on a process: kill, freeze and restart it through a `ProcessControl`, and start or continue it again.

Toxiproxy cannot kill or freeze a process; the seed's check → apply → mark and Kugelpos'
outbox republish exist for exactly that. A `ProcessFault` acts on one process target
(`redis`, `sidecar@X`, `app@X`) through the control the drill wires in (the stand-in's own
processes, or a target file's command templates), and records every action as an event
with the pids before and after. Its kinds (`chaos.process_kinds`) only say which actions
apply the fault and which one heals it.

* Before its first action it leaves a self-contained heal entry in the watchdog's lease
  (`chaos.procheal`), so a drill killed mid-action is healed too; the entry is dropped
  once the heal succeeded. Without an entry it refuses to act.
* The apply's first action decides whether the fault took effect; when it began is the
  fault's applied time. A later action failing (a restart that does not come up) is the
  fault's `error`; the heal tries again on schedule and on stop.
* A start is followed, in the background, by the target's health probe: when it answered
  is recorded in the start event (a slow start must not delay the schedule). With the
  `uptime` parameter the fault acts again once the restarted process has answered for
  that long, as long as the fault lasts.
* An observer (the drill's Redis inventory) measures the target before the first action
  and after each restart or resume.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from kugeldrill.chaos.fault import APPLY, HEAL, Fault, FaultContext, Step
from kugeldrill.chaos.kinds import FaultKind
from kugeldrill.chaos.processes import ProcessControl
from kugeldrill.chaos.event import FaultEvent
from kugeldrill.chaos.record import FaultStatus, PlannedFault
from kugeldrill.ground.errors import DrillError

READY_TIMEOUT = 60.0  # seconds a restarted process target may take to answer its health probe
Action = tuple[str, dict[str, Any]]


class ProcessFault(Fault):
    """A fault on one process target; a kind sets `heal_action` and `apply_actions()`."""

    heal_action = "start"  # what undoes it: start (killed, stopped) or resume (paused)
    repeat_label = ""  # the label of repeated applies within the fault (every / uptime), e.g. "kill"

    def __init__(self, planned: PlannedFault, kind: FaultKind, ctx: FaultContext) -> None:
        super().__init__(planned, kind, ctx)
        self.target = str(self.planned.process)
        self._threads: list[threading.Thread] = []

    @property
    def control(self) -> ProcessControl:
        if self.ctx.processes is None:
            raise DrillError(f"fault {self.record.id} on process {self.target} has no process control to act through")
        return self.ctx.processes

    @property
    def resource(self) -> str:
        return f"process:{self.target}"

    def apply_actions(self) -> list[Action]:
        raise NotImplementedError

    def repeat_offsets(self) -> list[float]:
        """Offsets of repeated applies strictly inside the fault (`every`)."""
        every, duration = self.planned.params.get("every"), self.planned.duration
        out, t = [], every or 0.0
        while every and t < duration - 1e-9:
            out.append(round(t, 6))
            t += every
        return out

    def steps(self) -> list[Step]:
        return [Step(0.0, APPLY), *(Step(t, self.repeat_label) for t in self.repeat_offsets()),
                Step(self.planned.duration, HEAL)]

    # -- the Fault interface
    def apply(self) -> None:
        try:
            entry = self.control.lease_entry(self.target, self.heal_action)
        except Exception as exc:  # noqa: BLE001 - no heal entry: refuse to act unguarded
            raise DrillError(f"cannot prepare the watchdog's heal for {self.target}: {type(exc).__name__}: {exc}") \
                from None
        if self.ctx.lease is not None:
            self.ctx.lease.hold(self.record.id, entry)
        self._observe("before")
        first = len(self.record.events)
        error = self._run(self.apply_actions())
        events = self.record.events[first:]
        if not events or events[0].error is not None:
            raise DrillError(error or f"{self.target}: nothing was done")
        self.record.applied_wall, self.record.applied_mono = events[0].wall, events[0].mono
        if error:
            self.note_error(APPLY, error)

    def act(self, label: str) -> None:
        error = self._run(self.apply_actions())
        if error:
            self.note_error(label, error)

    def heal(self) -> None:
        error = self._run([(self.heal_action, {})])
        if error:
            raise DrillError(error)
        if self.ctx.lease is not None:
            self.ctx.lease.drop(self.record.id)

    def observe(self) -> list[str]:
        return self.control.problems([self.target])

    def background_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return all(not t.is_alive() for t in self._threads)

    # -- actions
    def _run(self, actions: Iterable[Action]) -> str | None:
        """Actions in order, each recorded; the first failure stops the sequence (its text returned)."""
        for name, kwargs in actions:
            event = self._action(name, kwargs)
            if event.error is not None:
                return f"{name} {self.target}: {event.error}"
            if name in ("start", "resume") and event.outcome != "already":
                self._observe("after")
        return None

    def _action(self, name: str, kwargs: dict[str, Any]) -> FaultEvent:
        """One ProcessControl call, recorded: began at (wall, mono), took, pids, outcome, error."""
        event = FaultEvent(name, time.time(), time.monotonic(), target=self.target)
        try:
            result = getattr(self.control, name)(self.target, **kwargs)
            event.pids_before, event.pids_after = list(result.pids_before), list(result.pids_after)
            event.outcome, event.detail, event.facts = result.outcome, result.detail or None, dict(result.facts) or None
        except Exception as exc:  # noqa: BLE001 - a failed action is recorded; the heal still runs
            event.error = f"{type(exc).__name__}: {exc}"
        event.seconds = round(time.monotonic() - event.mono, 4)
        self.record.events.append(event)
        if event.error is None and name == "start" and event.outcome != "already":
            self._await_ready(event)
        return event

    def _observe(self, phase: str) -> None:
        if self.ctx.observe is None:
            return
        wall, mono = time.time(), time.monotonic()
        try:
            data = self.ctx.observe(self.target, phase)
        except Exception as exc:  # noqa: BLE001 - a measurement must never stop a fault or its heal
            data = {"error": f"{type(exc).__name__}: {exc}"}
        if data is not None:
            self.record.observations.append({"phase": phase, "wall": wall, "mono": mono, "data": data})

    def _await_ready(self, event: FaultEvent) -> None:
        """Record in the start event when the restarted target answers its probe (in the background)."""
        control = self.control

        def wait() -> None:
            try:
                problem = control.wait_ready(self.target, READY_TIMEOUT)
            except Exception as exc:  # noqa: BLE001
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                event.ready_wall, event.ready_mono = time.time(), time.monotonic()
                event.ready_seconds = round(event.ready_mono - event.mono, 3)
            else:
                event.ready_error = problem
            self.ctx.changed()
            if problem is None and self.planned.params.get("uptime"):
                self._repeat_after_uptime()

        thread = threading.Thread(target=wait, name=f"kugeldrill-ready-{self.target}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _repeat_after_uptime(self) -> None:
        """`uptime`: act again once the restarted target has answered for `uptime` seconds, as
        long as the fault lasts; under the timeline's step lock, so it never races the heal."""
        uptime = float(self.planned.params["uptime"])
        if self.ctx.stopping.wait(uptime):
            return
        with self.ctx.lock:
            if self.ctx.stopping.is_set() or self.record.status != FaultStatus.ACTIVE \
                    or self.ctx.elapsed() >= self.planned.end - uptime / 2:
                return
            self.act(self.repeat_label)
        self.ctx.changed()


def preflight_processes(control: ProcessControl | None, faults: Iterable[Fault]) -> None:
    """Every process target a fault names is running and not stopped before any fault acts."""
    targets = sorted({f.target for f in faults if isinstance(f, ProcessFault)})
    if not targets or control is None:
        return
    problems = control.problems(targets)
    if problems:
        raise DrillError("process targets are not healthy before any fault: " + "; ".join(problems),
                         hint="heal the stack first ('kugeldrill heal') or restart it")
