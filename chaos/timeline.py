"""The fault timeline: planned faults, composed from small parts and run beside the load.

    tl = Timeline(spec, links, client, out=run_dir / "timeline.json", processes=ctl)
    with heal_on_signals(tl.stop):
        tl.start(t0_mono=None)      # preflight, then the schedule on a background thread
        tl.wait()                   # until the last fault healed
    report = tl.stop()              # heals whatever is left; idempotent -> HealReport

It composes: the plan (`chaos.plan`: every entry checked, selectors expanded), one `Fault`
per planned fault on one subject (`chaos.fault`; the kinds in `chaos.link_kinds` and
`chaos.process_kinds`), a `Scheduler` that only knows time, a `Lease` and its watchdog
(heal-on-death), and the one heal path (`chaos.heal.heal`). Every change rewrites
`timeline.json` (contracts §5) atomically, so a crash keeps what happened.

A drill that heals the environment too stops the schedule first (`halt()`), heals the
timeline's parts and its own in one call (`heal_parts()`), then `finish(report)`.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from enum import StrEnum
from pathlib import Path
from typing import Any

from kugeldrill.chaos.fault import HEAL, Fault, FaultContext, FaultsHeal, Observer
from kugeldrill.chaos.heal import Healable, HealReport, LinkSweep, heal
from kugeldrill.chaos.kinds import get_kind
from kugeldrill.chaos.lease import Lease
from kugeldrill.chaos.link_faults import preflight_links
from kugeldrill.chaos.links import LinkMap
from kugeldrill.chaos.plan import load_spec, plan
from kugeldrill.chaos.process_faults import ProcessFault, preflight_processes
from kugeldrill.chaos.processes import ProcessControl
from kugeldrill.chaos.record import MAX_FAULT_SECONDS, AppliedFault, FaultStatus
from kugeldrill.chaos.scheduler import Job, Scheduler
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.jsonfile import write_json_atomic


class TimelineState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    FINISHED = "finished"  # the last fault healed on schedule
    STOPPED = "stopped"  # stopped early (the run ended, a signal)
    FAILED = "failed"  # the schedule itself broke (a bug); everything was still healed


class Timeline:
    """A validated fault schedule bound to a Toxiproxy server and a process control.

    `client` is a ToxiproxyClient or its API URL (None: only process faults). `out` is the
    timeline.json path (None: records in memory only). `watchdog` spawns the heal-on-death
    process; its lease goes next to `out` (or a temp dir). `observe(target, phase)` measures a
    process target before a process fault and after each restart or resume."""

    def __init__(self, spec: Any, links: LinkMap | None, client: ToxiproxyClient | str | None, *,
                 out: str | Path | None = None, allow_hosts: Iterable[str] | None = None, watchdog: bool = True,
                 max_fault_seconds: float = MAX_FAULT_SECONDS, processes: ProcessControl | None = None,
                 observe: Observer | None = None) -> None:
        links = links if links is not None else LinkMap([])
        self.allow_hosts = tuple(links.allow_hosts if allow_hosts is None else allow_hosts)
        planned = plan(spec, links, allow_hosts=self.allow_hosts, max_fault_seconds=max_fault_seconds,
                       processes=processes)
        if client is None and any(not p.is_process for p in planned):
            raise ConfigError("the timeline has link faults but no Toxiproxy API was given")
        self._owns_client = isinstance(client, str)
        self.client = ToxiproxyClient(client, allow_hosts=self.allow_hosts) if isinstance(client, str) else client
        self.processes = processes
        self.out = Path(out) if out else None
        self.use_watchdog = watchdog
        self.state = TimelineState.PLANNED
        self.t0_wall: float | None = None
        self.heal_report: HealReport | None = None
        self._write_lock = threading.Lock()
        self._heal_lock = threading.RLock()
        self._changed = threading.Condition()
        self._lease: Lease | None = None
        self.ctx = FaultContext(toxiproxy=self.client, processes=processes, observe=observe, changed=self._write)
        self._faults: list[Fault] = [get_kind(p.kind, str(p.id)).build(p, self.ctx) for p in planned]
        steps = [(f, s) for f in self._faults for s in f.steps()]
        jobs = [Job(f.planned.at + s.offset, 0 if s.label == HEAL else 1, n, f.resource, partial(f.perform, s))
                for n, (f, s) in enumerate(steps)]
        self.scheduler = Scheduler(jobs, after_batch=self._after_batch, on_end=self._on_end)
        self.ctx.stopping, self.ctx.lock, self.ctx.elapsed = \
            self.scheduler.stopping, self.scheduler.lock, self.scheduler.elapsed

    @classmethod
    def from_file(cls, path: str | Path, links: LinkMap, client: ToxiproxyClient | str, **kwargs: Any) -> Timeline:
        return cls(load_spec(path), links, client, **kwargs)

    # -- what it holds
    @property
    def faults(self) -> list[AppliedFault]:
        """Each fault's record (live: updated as the schedule runs)."""
        return [f.record for f in self._faults]

    @property
    def proxies(self) -> list[str]:
        return sorted({str(f.planned.proxy) for f in self._faults if f.planned.proxy})

    @property
    def process_targets(self) -> list[str]:
        return sorted({f.target for f in self._faults if isinstance(f, ProcessFault)})

    @property
    def end(self) -> float:
        """Seconds after t0 when the last fault heals."""
        return max((f.planned.end for f in self._faults), default=0.0)

    @property
    def t0_mono(self) -> float | None:
        return self.scheduler.t0_mono

    def elapsed(self) -> float:
        return self.scheduler.elapsed()

    # -- running
    def preflight(self) -> None:
        """Before anything is applied: process targets healthy, proxies present, server new enough."""
        preflight_processes(self.processes, self._faults)
        if self.client is not None:
            preflight_links(self.client, self._faults)

    def start(self, *, t0_mono: float | None = None, preflight: bool = True) -> Timeline:
        """Begin the schedule now (or at a given monotonic t0, e.g. the load's first operation)."""
        if self.scheduler.started:
            raise DrillError("timeline already started")
        if preflight:
            self.preflight()
        now_mono, now_wall = time.monotonic(), time.time()
        t0 = now_mono if t0_mono is None else t0_mono
        self.t0_wall = now_wall - (now_mono - t0)
        self.state = TimelineState.RUNNING
        if self.use_watchdog and self._faults:
            self._lease = self.ctx.lease = Lease(self.out.parent if self.out else None,
                                                 self.client.api if self.client else None, self.proxies,
                                                 self.allow_hosts)
        self.scheduler.t0_mono = t0
        self._write()
        atexit.register(self._at_exit)  # an interpreter exiting without stop() still heals
        self.scheduler.start(t0)
        return self

    def _at_exit(self) -> None:
        if self.state == TimelineState.RUNNING:
            self.stop()

    def _after_batch(self) -> None:
        self._write()
        with self._changed:
            self._changed.notify_all()

    def _on_end(self) -> None:
        """The last scheduled step ran: heal what may be left and finish (not after a stop)."""
        with self._heal_lock:
            if self.scheduler.stopping.is_set():
                return  # stopped meanwhile: the stop healed
            self.state = TimelineState.FAILED if self.scheduler.error else TimelineState.FINISHED
            self.finish(heal(self.heal_parts(stopped=False)))
        with self._changed:
            self._changed.notify_all()

    def heal_parts(self, *, stopped: bool = True) -> list[Healable]:
        """This timeline's share of the heal path: its faults, and a sweep of its own proxies."""
        parts: list[Healable] = [FaultsHeal(self._faults, stopped=stopped)]
        if self.client is not None and self.proxies:
            parts.append(LinkSweep(self.client, proxies=self.proxies))
        return parts

    @contextmanager
    def halted(self, timeout: float | None = None) -> Iterator[None]:
        """The schedule stopped (a step in flight may finish first); heal inside, then `finish`."""
        with self._heal_lock, self.scheduler.halted(timeout if timeout is not None else self._step_limit()):
            if self.state in (TimelineState.RUNNING, TimelineState.PLANNED):
                self.state = TimelineState.STOPPED
            yield

    def finish(self, report: HealReport) -> HealReport:
        """Record the heal, release the watchdog when everything is healed, write the file."""
        with self._heal_lock:
            self.heal_report = report
            atexit.unregister(self._at_exit)
            if report.ok and self._lease is not None:
                self._lease.release()
            self._write()
            return report

    def release_watchdog(self) -> None:
        """What the faults acted on is gone (a stand-in torn down): nothing is left for the
        watchdog to heal, and a watchdog aimed at freed ports must not touch their next owner."""
        if self._lease is not None:
            self._lease.release()

    def stop(self, timeout: float | None = None) -> HealReport:
        """Stop the schedule and heal every fault now; safe from signal handlers, repeatable."""
        with self._heal_lock:
            if self.state != TimelineState.RUNNING and self.heal_report is not None and self.heal_report.ok:
                return self.heal_report
            with self.halted(timeout):
                return self.finish(heal(self.heal_parts()))

    def _step_limit(self) -> float:
        """How long a stop lets an in-flight step finish before healing anyway."""
        limit = self.client.timeout * 2 + 1 if self.client is not None else 5.0
        graces = [float(f.planned.params.get("grace", 0)) + 5.0 for f in self._faults if isinstance(f, ProcessFault)]
        return max([limit, 15.0 if graces else 0.0, *graces])

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the schedule finished or was stopped; True if it did."""
        return self.scheduler.wait(timeout)

    def wait_applied(self, fault_id: str | None = None, timeout: float = 10.0) -> bool:
        """Block until a fault (default: the first scheduled) left `pending`; True if it did."""
        targets = [f.record for f in self._faults if fault_id is None or f.record.id == fault_id
                   or f.record.id.split(":", 1)[0] == fault_id]
        if fault_id is None and targets:
            first = min(f.planned.at for f in targets)
            targets = [f for f in targets if f.planned.at == first]
        if not targets:
            raise DrillError(f"timeline has no fault {fault_id!r}")
        with self._changed:
            return self._changed.wait_for(lambda: all(f.status != FaultStatus.PENDING for f in targets)
                                          or self.scheduler.done.is_set(), timeout)

    def wait_ready_recorded(self, timeout: float = 60.0) -> bool:
        """Block until every restarted target's readiness was recorded (tests, reports)."""
        deadline = time.monotonic() + timeout
        return all([f.background_done(max(0.0, deadline - time.monotonic())) for f in self._faults])

    def run(self) -> HealReport:
        """start() + wait(); heals on any exception, including KeyboardInterrupt."""
        self.start()
        try:
            self.wait()
        finally:
            report = self.stop()
        return report

    def close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()

    def __enter__(self) -> Timeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()

    # -- status and records
    def status(self) -> dict[str, Any]:
        """Live view for a console: active faults with time left, counts by status."""
        now = self.elapsed()
        counts: dict[str, int] = {}
        for f in self.faults:
            counts[str(f.status)] = counts.get(str(f.status), 0) + 1
        active = [{"id": f.id, "link": f.subject, "kind": f.kind, "params": f.params,
                   "remaining": max(0.0, f.planned.end - now), "process": f.planned.is_process}
                  for f in self.faults if f.status == FaultStatus.ACTIVE]
        upcoming = [{"id": f.id, "link": f.subject, "kind": f.kind, "in": max(0.0, f.planned.at - now),
                     "process": f.planned.is_process} for f in self.faults if f.status == FaultStatus.PENDING]
        return {"state": str(self.state), "elapsed": now, "end": self.end, "active": active,
                "upcoming": upcoming, "counts": counts}

    def to_json(self) -> dict[str, Any]:
        report = self.heal_report
        return {"t0_wall": self.t0_wall, "t0_mono": self.t0_mono, "state": str(self.state),
                "api": self.client.api if self.client is not None else None, "error": self.scheduler.error,
                "unhealed": list(report.remaining) if report is not None else [],
                "faults": [f.record() for f in self.faults]}

    def _write(self) -> None:
        if self.out is None:
            return
        with self._write_lock:
            write_json_atomic(self.out, self.to_json(), indent=1)


def write_empty_timeline(path: Path, t0_wall: float, t0_mono: float) -> None:
    """timeline.json of a drill without faults: still the run's clock (t0) for checkers and reports."""
    write_json_atomic(path, {"t0_wall": t0_wall, "t0_mono": t0_mono, "state": str(TimelineState.FINISHED),
                             "faults": []})
