"""One drill, end to end: environment → provision → links → load + timeline → heal →
quiescence → checkers → expectations → reports.

Cleanup is the point of this module's shape. Each phase acquires its resource through one
`ExitStack` — the stack or target (torn down, its state saved), the faults (the timeline and
the links: healed together with the environment's links and processes, what could not be
healed going to the verdict's `unhealed`), the load (Locust and its workers stopped) — and
whatever happens, a DrillError, a bug, a SIGINT or SIGTERM in any phase, they are released
in reverse order. Then the run folder's bulky files are gzipped (drill.compact) and a report
of what was gathered is written. The first signal interrupts the drill; signals during
cleanup are recorded, not obeyed, so cleanup cannot itself be cut short.
"""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from kugeldrill.checkers import run_all
from kugeldrill.checkers.adapters.business import read_business, save_snapshots
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import BusinessSnapshot
from kugeldrill.checkers.outcomes import snapshot_dates
from kugeldrill.checkers.params import BreakerParams, CheckParams
from kugeldrill.checkers.pending import Pending, pending_republish
from kugeldrill.drill.checks import Quiescence, build_params, wait_for_quiescence
from kugeldrill.drill.compact import compact_run_folder
from kugeldrill.drill.env import DrillEnvironment, open_environment
from kugeldrill.drill.faults import DrillFaults
from kugeldrill.drill.expectations import judge_all
from kugeldrill.drill.gather import fill_from_inputs, fill_load
from kugeldrill.drill.locust import LocustRun, MasterBinding, start_locust, stats_written, worker_notes
from kugeldrill.drill.procfaults import process_fault_summary
from kugeldrill.drill.runfolder import write_scenario
from kugeldrill.drill.watch import LiveEvents, latest_load
from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.history import first_record, merge_shards
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.provision import ProvisionOptions, provision
from kugeldrill.reports import write_all
from kugeldrill.reports.console import Console, LiveStatus
from kugeldrill.reports.summary import Phase, RunSummary
from kugeldrill.scenario import LoadedScenario
from kugeldrill.scenario_checks import ignored_stack_options
from kugeldrill.scenario_schema import Scenario

HANG_MARGIN = 45.0  # Locust running this long past its planned end is stopped
MAX_INPUT_NOTES = 20  # adapters' notes (unread logs, unapplied faults) shown in the summary
BASELINE_QUIESCENCE_SECONDS = 20.0  # provisioning's events landing before the business state is read
REPUBLISH_MARGIN_SECONDS = 30.0  # after the republish run is due, for it to run and its deliveries to land


class DrillInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; a KeyboardInterrupt so the launcher cleans up mid-start too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class DrillOptions:
    processes: int | None = None  # overrides load.processes
    master: MasterBinding | None = None  # Locust workers join from elsewhere (kugeldrill worker)
    console: Console | None = None
    poll_interval: float = 1.0
    origin: dict[str, Any] = field(default_factory=dict)  # who drew the scenario (explore: generator, seed, index)


@dataclass
class _State:
    phase: str = "start"
    phases: list[dict[str, Any]] = field(default_factory=list)
    interrupted_by: int | None = None
    cleaning: bool = False


class _Signals:
    """First SIGINT/SIGTERM raises DrillInterrupted; later ones (during cleanup) are noted only."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.previous: dict[int, Any] = {}

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.state.interrupted_by is None:
            self.state.interrupted_by = signum
            if not self.state.cleaning:
                raise DrillInterrupted(signum)

    def __enter__(self) -> "_Signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.handler)
            except ValueError:  # not the main thread (tests): no signal handling
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, prev in self.previous.items():
            signal.signal(sig, prev)


class Drill:
    """Runs one loaded scenario into one run folder; `run()` returns the RunSummary."""

    def __init__(self, loaded: LoadedScenario, run_dir: Path, options: DrillOptions | None = None) -> None:
        self.loaded = loaded
        self.sc = loaded.scenario
        self.run_dir = run_dir
        self.folder = RunFolder(run_dir)
        self.opts = options or DrillOptions()
        self.console = self.opts.console or Console(live=False)
        self.state = _State()
        self.summary = RunSummary(scenario=self.sc.name, description=self.sc.description.strip(),
                                  run_dir=str(run_dir), target=self.sc.target,
                                  stack_options=self.sc.stack.model_dump(), load_seconds=self.sc.load.total_seconds,
                                  origin=dict(self.opts.origin))
        self.params: CheckParams = build_params(self.sc, BreakerParams())  # the environment's breaker: see run
        self.provisioned: dict[str, Any] = {}
        self.business: dict[str, BusinessSnapshot] = {}
        # What the report needs after the resources are released (set as the phases get there).
        self._inputs_of: Callable[[], CheckInputs] | None = None  # the environment's reader
        self._check_inputs: CheckInputs | None = None
        self._torn_down = True  # nothing to tear down until an environment is open
        self._live: LiveEvents | None = None
        self._faults_status: Callable[[], dict[str, Any]] = dict
        self._after_teardown: list[Callable[[], None]] = []  # what a stand-in's teardown makes moot

    # ------------------------------------------------------------------ phases

    def _phase(self, name: str) -> None:
        now = time.time()
        if self.state.phases:
            self.state.phases[-1]["end_wall"] = now
        self.state.phases.append({"name": name, "start_wall": now, "end_wall": None})
        self.state.phase = name
        self.console.message(f"[{self.sc.name}] {name}")

    def run(self) -> RunSummary:
        s = self.summary
        s.started_wall = time.time()
        s.t0_wall, s.t0_mono = s.started_wall, time.monotonic()
        write_scenario(self.run_dir, self.loaded)
        with _Signals(self.state):
            try:
                with ExitStack() as resources:
                    try:
                        self._run_phases(resources)
                        s.status = "completed"
                    except DrillInterrupted as exc:
                        s.status = "interrupted"
                        s.error = f"interrupted by {signal.Signals(exc.signum).name} during phase '{self.state.phase}'"
                    except KeyboardInterrupt:
                        s.status = "interrupted"
                        s.error = f"interrupted during phase '{self.state.phase}'"
                    except DrillError as exc:
                        s.status = "error"
                        s.error = f"during phase '{self.state.phase}': {exc.render()}"
                    except Exception as exc:  # noqa: BLE001 - a bug still gets cleanup and a report
                        s.status = "error"
                        s.error = f"internal error during phase '{self.state.phase}': {type(exc).__name__}: {exc}"
                        s.notes.append(traceback.format_exc(limit=8))
                    finally:
                        self.state.cleaning = True
                        self._phase("cleanup")
                    # leaving the block releases the load, the faults and the environment, in that order
            finally:
                self._report()
        if self.state.interrupted_by is not None and s.status == "completed":
            s.notes.append(f"{signal.Signals(self.state.interrupted_by).name} arrived during cleanup and was deferred")
        return s

    def _run_phases(self, resources: ExitStack) -> None:
        sc, s = self.sc, self.summary
        self._phase("environment")
        env = resources.enter_context(self._environment())
        self.params = build_params(sc, env.breaker_params(), env.republish_policy())
        s.target = env.description
        for note in env.notes:
            self.console.message(f"[{sc.name}] note: {note}")
            s.notes.append(note)
        for warning in unhonoured_stack_options(sc, env):
            self.console.message(f"[{sc.name}] warning: {warning}")
            s.notes.append(f"warning: {warning}")
        self._live = LiveEvents(env.events_files())

        self._phase("provision")
        self._provision(env)

        self._phase("links")
        faults = resources.enter_context(DrillFaults(sc, env, self.folder.timeline_json, s))
        self._faults_status = faults.status
        if env.kind == "embedded":
            self._after_teardown.append(faults.forget)
        if self.params.outcomes.parts and "outcomes" in self.params.enabled:
            self._phase("business before")
            self._business_before(env)

        self._phase("load")
        locust = resources.enter_context(self._load(env))
        s.t0_wall, s.t0_mono = locust.started_wall, locust.started_mono
        s.t0_wall, s.t0_mono = self._wait_first_operation(locust, locust.startup_seconds)
        faults.start(s.t0_wall, s.t0_mono)
        self._watch_load(locust)

        self._phase("heal")
        report = faults.heal()
        if not report.ok:
            raise DrillError("faults could not be healed: " + "; ".join(report.remaining),
                             hint="run 'kugeldrill heal' and check the Toxiproxy server and the processes")

        self._phase("quiescence")
        q = self._quiesce(env, sc.expect.convergence.max_seconds * 1.5)
        s.convergence_seconds, s.converged, s.convergence_basis = q.seconds, q.converged, q.basis
        if q.note:
            s.notes.append(f"quiescence: {q.note}")
        if q.converged is not True:
            s.notes.append(f"not quiescent after {q.seconds or 0:.1f}s: {q.reason or 'unknown'}")

        self._phase("check")
        self._check(env)

    # ------------------------------------------------------------------ resources

    @contextmanager
    def _environment(self) -> Iterator[DrillEnvironment]:
        """The stand-in or target, its state saved into the run folder; torn down on the way out."""
        env = open_environment(self.sc, self.run_dir, self.loaded.path)
        self._inputs_of = lambda: env.check_inputs(self.run_dir)
        self._torn_down = False
        try:
            env.save_into(self.run_dir)
            yield env
        finally:
            self._safe("save stack state", lambda: env.save_into(self.run_dir))
            self._phase("teardown")
            self._torn_down = self._safe("tear down", env.teardown)
            self._safe("save stack state after teardown", lambda: env.save_into(self.run_dir))
            for moot in self._after_teardown if self._torn_down else []:
                self._safe("release the watchdog", moot)

    @contextmanager
    def _load(self, env: DrillEnvironment) -> Iterator[LocustRun]:
        """Locust headless in a subprocess; stopped (workers too) on the way out."""
        locust = start_locust(self.run_dir, self.sc.load, provision_path=self.folder.provision_json,
                              processes=self.opts.processes or self.sc.load.processes, master=self.opts.master,
                              allow_hosts=tuple(env.allow_hosts), embedded=env.kind == "embedded")
        if locust.waiting_for:
            self.console.message(f"[{self.sc.name}] {locust.waiting_for}")
        try:
            yield locust
        finally:
            self._safe("stop Locust", locust.stop)
            self._safe("kill Locust workers", locust.kill_group_leftovers)

    def _safe(self, what: str, fn: Callable[[], Any]) -> bool:
        """Run one cleanup step; False (and a note) when it failed."""
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - cleanup must go on, whatever failed
            self.summary.notes.append(f"cleanup: {what} failed: {type(exc).__name__}: {exc}")
            return False
        return True

    # ------------------------------------------------------------------ the phases' work

    def _quiesce(self, env: DrillEnvironment, bound: float) -> Quiescence:
        """Wait until nothing is in flight (streams, outboxes, events files), at most `bound` seconds."""
        return wait_for_quiescence(env.redis_url, env.events_files(), bound, outbox_probe=env.outbox_probe(),
                                   allow_hosts=tuple(env.allow_hosts))

    def _provision(self, env: DrillEnvironment) -> None:
        users = self.sc.load.peak_users
        opts = env.provision_options(ProvisionOptions(
            cart_terminals=max(8, users.get("CartUser", 0)), cash_terminals=max(2, users.get("TerminalUser", 0)),
            openclose_terminals=max(2, users.get("OpenCloseUser", 0)), allow_hosts=tuple(env.allow_hosts)))
        self.provisioned = provision(env.service_urls(), self.run_dir, opts)

    def _check(self, env: DrillEnvironment) -> None:
        """History merged, checker inputs read (once more after a republish wait), checkers run."""
        s = self.summary
        self._merge_history()
        inputs = self._check_inputs = env.check_inputs(self.run_dir)
        pending = pending_republish(inputs, self.params.republish)
        if pending and self._worth_waiting(pending):
            self._wait_for_republish(env, pending)
            inputs = self._check_inputs = env.check_inputs(self.run_dir)
            pending = pending_republish(inputs, self.params.republish)
        s.pending_republish = pending.reason() if pending else ""
        if pending:
            # Deliveries still owed: the system has not converged, however quiet the streams are.
            s.notes.append(f"convergence not measured: {s.pending_republish} (quiet after "
                           f"{s.convergence_seconds or 0:.1f}s, but deliveries are pending)")
            s.convergence_seconds, s.converged = None, None
        for name, reason in inputs.missing.items():
            s.notes.append(f"checker input '{name}' missing: {reason}")
        s.notes.extend(f"checker inputs: {n}" for n in inputs.notes[:MAX_INPUT_NOTES])
        if len(inputs.notes) > MAX_INPUT_NOTES:
            s.notes.append(f"checker inputs: {len(inputs.notes) - MAX_INPUT_NOTES} more notes left out")
        if "outcomes" in self.params.enabled:
            self._business_after(env, inputs)
        s.checks = run_all(inputs, self.params)
        if any(f.is_process for f in self.sc.faults):
            s.process_faults = process_fault_summary(inputs, env.redis_url, tuple(env.allow_hosts))

    def _republish_margin(self) -> float:
        """After a republish run is due: time for it to run and its deliveries to land."""
        interval = self.params.republish.interval_seconds or 0.0
        return max(2.0, min(REPUBLISH_MARGIN_SECONDS, interval))

    def _worth_waiting(self, pending: Pending) -> bool:
        """Wait when asked to, or when the run that owes them is due within the convergence bound."""
        if self.sc.expect.convergence.wait_for_republish:
            return True
        due = (pending.next_due_wall or time.time()) + self._republish_margin()
        return due - time.time() <= self.sc.expect.convergence.max_seconds

    def _wait_for_republish(self, env: DrillEnvironment, pending: Pending) -> None:
        """Wait (bounded, on the console) for the republish run that owes `pending`, then for quiet."""
        sc = self.sc
        self._phase("republish wait")
        due = (pending.next_due_wall or time.time()) + self._republish_margin()
        until = min(due, time.time() + sc.expect.convergence.max_republish_wait_seconds)
        self.console.message(f"[{sc.name}] {pending.reason()}; waiting until "
                             f"{time.strftime('%H:%M:%S', time.localtime(until))} for the republish job")
        if until < due:
            self.summary.notes.append(f"the republish wait was cut at {sc.expect.convergence.max_republish_wait_seconds:g} s "
                                      "(expect.convergence.max_republish_wait_seconds)")
        last = 0.0
        while time.time() < until:
            if time.monotonic() - last >= 30:
                last = time.monotonic()
                self.console.message(f"[{sc.name}] republish wait: {until - time.time():.0f} s left")
            time.sleep(min(1.0, max(0.0, until - time.time())))
        q = self._quiesce(env, sc.expect.convergence.max_seconds)
        self.summary.notes.append(f"after the republish wait: quiescent={q.converged} after {q.seconds or 0:.1f}s")

    def _business_before(self, env: DrillEnvironment) -> None:
        """Report, journal and stock before the load, once provisioning's own events have
        landed (the outcome checker judges what the drill changes, not what was there)."""
        q = self._quiesce(env, BASELINE_QUIESCENCE_SECONDS)
        if q.converged is not True:
            self.summary.notes.append(f"before the load: not quiescent after {q.seconds or 0:.1f}s ({q.reason}); "
                                      "the business state read then may still change")
        self.business["before"] = read_business(env.service_urls(), self.provisioned,
                                                parts=self.params.outcomes.parts, allow_hosts=tuple(env.allow_hosts))
        if q.converged is not True:
            self.business["before"].unsettled = (f"not quiescent after {q.seconds or 0:.1f} s: "
                                                 f"{q.reason or 'unknown'}")

    def _business_after(self, env: DrillEnvironment, inputs: CheckInputs) -> None:
        """Report, journal and stock after quiescence; both snapshots saved, both given to the checkers."""
        before = self.business.get("before")
        if before is None:
            inputs.mark_missing("business", "the business state was not read before the load")
            return
        self.business["after"] = read_business(env.service_urls(), self.provisioned,
                                               dates=snapshot_dates(inputs.ops), parts=self.params.outcomes.parts,
                                               allow_hosts=tuple(env.allow_hosts))
        save_snapshots(self.folder.business_json, self.business)
        inputs.business_before, inputs.business_after = before, self.business["after"]
        inputs.mark("business", "report, journal and stock APIs before the load and after the drill")

    def _watch_load(self, locust: LocustRun) -> None:
        """Console once a second until Locust ends; stop it if it overruns its plan."""
        sc, s = self.sc, self.summary
        deadline = s.t0_mono + sc.load.total_seconds + sc.load.stop_timeout + HANG_MARGIN
        while locust.poll() is None:
            self._update_console()
            if time.monotonic() > deadline:
                s.notes.append(f"Locust overran its {sc.load.total_seconds:g}s plan by {HANG_MARGIN:g}s and was stopped")
                break
            locust.wait(self.opts.poll_interval)
        code = locust.stop()
        self._update_console()
        if not stats_written(self.run_dir):
            raise DrillError(f"Locust exited with code {code} and wrote no statistics; last lines of its output:\n"
                             + locust.log_tail())

    def _wait_first_operation(self, locust: LocustRun, timeout: float = 60.0) -> tuple[float, float]:
        """(wall, mono) of the load's first operation: the t0 that fault times count from.

        Locust needs seconds to import and spawn on a busy machine; counting `at` from the
        process launch would put early faults before any traffic exists.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first = first_record(self.folder.history_dir)
            if first is not None:
                return first
            if locust.poll() is not None:
                raise DrillError(f"Locust exited with code {locust.poll()} before the first operation; "
                                 "last lines of its output:\n" + locust.log_tail())
            self._update_console()
            time.sleep(0.1)
        raise DrillError(f"no load operation was recorded {timeout:g}s after Locust started; last lines of its "
                         "output:\n" + locust.log_tail())

    def _update_console(self) -> None:
        s, live = self.summary, self._live
        if live is not None:
            live.poll()
        row = latest_load(self.run_dir, s.t0_wall)
        elapsed = time.monotonic() - s.t0_mono
        self.console.update(LiveStatus(
            scenario=self.sc.name, phase=self.state.phase, elapsed=elapsed,
            remaining=max(0.0, self.sc.load.total_seconds - elapsed),
            active_faults=self._faults_status().get("active", []),
            breakers=dict(live.breakers) if live else {},
            rps=row.rps if row else None, fails_s=row.fails_s if row else None,
            requests=int(row.requests) if row else None, failures=int(row.failures) if row else None,
            published=live.published if live else 0, applied=live.applied if live else 0))

    def _merge_history(self) -> None:
        for note in worker_notes(self.run_dir, self.summary.t0_wall):  # a lost Locust worker, by name
            self.console.message(f"[{self.sc.name}] {note}")
            self.summary.notes.append(note)
        hist = self.folder.history_dir
        if not hist.is_dir() or not any(hist.glob("*.jsonl")):
            return
        try:
            merge_shards(hist, self.folder.history_jsonl)
        except Exception as exc:  # noqa: BLE001 - shards stay; the report says so
            self.summary.notes.append(f"history merge failed: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ after the resources are released

    def _report(self) -> None:
        """What was gathered, judged if the run completed, compacted and written (never raises)."""
        s = self.summary
        if s.status != "completed":
            self._safe("merge history", self._merge_history)
        if s.unhealed:
            s.notes.append("not healed: " + "; ".join(s.unhealed) + " — run 'kugeldrill heal'")
        s.ended_wall = time.time()
        if self.state.phases:
            self.state.phases[-1]["end_wall"] = s.ended_wall
        s.phases = [Phase(p["name"], round(p["start_wall"] - s.t0_wall, 2),
                          round((p["end_wall"] or s.ended_wall) - s.t0_wall, 2)) for p in self.state.phases]
        self._safe("gather", self._gather)
        if s.status == "completed" and self._check_inputs is not None:
            s.expectations = judge_all(self.sc.expect, s, self._check_inputs)
        else:
            s.notes.append("expectations were not judged: the drill did not complete; "
                           "the charts and tables show what was gathered")
        if self._torn_down:  # a process still running may still write its log or events
            self._safe("compact the run folder", self._compact)
        else:
            s.notes.append("the run folder was not compacted: the teardown left processes that may still write")
        self._safe("write reports", lambda: write_all(self.run_dir, s))

    def _compact(self) -> None:
        done = compact_run_folder(self.run_dir)
        for problem in done.problems:
            self.summary.notes.append(f"cleanup: not compacted: {problem}")

    def _gather(self) -> None:
        """The report's pictures from the checkers' inputs (read now if the run never got to
        its check phase) and Locust's CSV."""
        s = self.summary
        fill_load(s, self.run_dir)
        inputs = self._check_inputs
        until = float("inf")
        if inputs is None and self._inputs_of is not None:
            inputs = self._inputs_of()
            # Stopping the stack makes breakers trip (sidecars go first): not part of the drill.
            until = next((p.start for p in s.phases if p.name == "teardown"), until)
        if inputs is not None:
            fill_from_inputs(s, inputs, until)


def unhonoured_stack_options(scenario: Scenario, env: DrillEnvironment) -> list[str]:
    """The scenario's stand-in options a target cannot honour, each said once, at the start
    (`kugeldrill validate` warns about the same ones: kugeldrill.scenario_checks)."""
    target = getattr(env, "target", None)
    if env.kind == "embedded" or target is None:
        return []
    return [message for _option, message in ignored_stack_options(scenario, target)]


def run_drill(loaded: LoadedScenario, run_dir: Path, options: DrillOptions | None = None) -> RunSummary:
    """Run one scenario into `run_dir`; always returns a summary (reports already written)."""
    return Drill(loaded, run_dir, options).run()
