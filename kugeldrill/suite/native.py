"""A suite of drills against the real Kugelpos code of a checkout, started and stopped around it.

prepare (cached environments) → up (every service healthy) → the target file → the drills,
one after the other → down. Down runs on every exit path: the end of the suite, a failed
start, an exception, SIGINT or SIGTERM (a signal between drills interrupts the suite; one
during a drill ends that drill as interrupted, with its report; one during down is noted
and down goes on), and, through a watchdog process, SIGKILL of the command itself.
What down could not stop is the suite's setup error (exit 2), never silently left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.deploy.from_native import target_from_native
from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.gzfiles import gzip_in_place
from kugeldrill.reports.console import Console
from kugeldrill.scenario import LoadedScenario, load_scenario
from kugeldrill.stack.native.launcher import STATE_NAME, NativeKugelpos, NativeOptions, prepare
from kugeldrill.suite.known import KnownDefects, unlisted_scenarios
from kugeldrill.suite.report import write_suite
from kugeldrill.suite.result import SuiteResult
from kugeldrill.suite.run import run_suite
from kugeldrill.target import dump_target

TARGET_NAME = "kugelpos-target.yaml"
STATE_SUBDIR = "kugelpos"  # the deployment's state dir inside the suite folder: its logs stay with the runs
# Kugelpos settings the suite runs with. The republish job every minute (Kugelpos: 5) for events at least
# a minute old, so an event whose publish failed during a cut is republished within a drill's wait
# (`convergence.wait_for_republish`), not after it.
SUITE_ENV = {"UNDELIVERED_CHECK_INTERVAL_IN_MINUTES": "1"}


@dataclass
class NativeSuiteOptions:
    src: Path
    out: Path  # the suite folder
    state_dir: Path | None = None  # default <out>/kugelpos
    workers: str = "dev"  # uvicorn workers per service (stack/native/workers.py)
    extra_env: dict[str, str] = field(default_factory=dict)
    health_timeout: float = 240.0
    processes: int | None = None
    breaker: str = "documented"  # judge breakers by Kugelpos' documented policy (deploy/from_native.py)
    progress: Callable[[str], None] | None = None

    @property
    def resolved_state_dir(self) -> Path:
        return (self.state_dir or self.out / STATE_SUBDIR).resolve()


class _Signals:
    """SIGINT/SIGTERM raise KeyboardInterrupt until `teardown()`; after it they are only noted,
    so down cannot be cut short. Installed explicitly: a shell starting us in the background
    hands SIGINT over ignored."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.tearing_down = False
        self.deferred: list[str] = []

    def _handler(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.tearing_down:
            self.deferred.append(name)
            return
        raise KeyboardInterrupt(name)

    def teardown(self) -> None:
        self.tearing_down = True

    @contextmanager
    def installed(self) -> Iterator["_Signals"]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, prev in self.previous.items():
                signal.signal(sig, prev)


def start_watchdog(state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """A process (own session) that stops the deployment if this one dies without doing so."""
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "kugeldrill.stack.native.watchdog", "--parent", str(os.getpid()),
                                 "--state-dir", str(state_dir)], stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                start_new_session=True)


def drill_native(opts: NativeSuiteOptions, loaded: list[LoadedScenario], known: KnownDefects, console: Console,
                 name: str = "kugelpos") -> SuiteResult:
    """Up, the drills, down; the suite's report written to `opts.out` whatever happens."""
    say = opts.progress or console.message
    result = SuiteResult(name=name, target=f"the Kugelpos checkout {opts.src}", known=known, started_wall=time.time())
    if not known.path:
        result.notes.append("no known-defects file: every failure is new (or unknown)")
    result.notes += unlisted_scenarios(known, [item.scenario.name for item in loaded])
    state_dir = opts.resolved_state_dir
    native: NativeKugelpos | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    signals = _Signals()
    with signals.installed():
        try:
            nopts = NativeOptions(src=opts.src, state_dir=state_dir, health_timeout=opts.health_timeout,
                                  workers=opts.workers, extra_env={**SUITE_ENV, **opts.extra_env}, progress=say)
            nopts.validate()
            prepared = prepare(nopts)
            note = known.revision_note(prepared.checkout.commit)
            if note:
                result.notes.append(note)
            say(f"starting the Kugelpos services of {prepared.checkout.root} ...")
            native = NativeKugelpos.up(nopts, prepared)
            watchdog = start_watchdog(state_dir, state_dir / "logs" / "watchdog.log")
            target = state_dir / TARGET_NAME
            target.write_text(f"# Written by 'kugeldrill kugelpos drill' for the native Kugelpos in {state_dir}.\n"
                              + dump_target(target_from_native(native.state, breaker=opts.breaker)))
            native.record_target(target)
            result.target = target_from_native(native.state, breaker=opts.breaker).description
            say(f"Kugelpos healthy in {native.state.get('startup_seconds', 0):.0f} s; target file {target}")
            # Validated once before anything started; again now against the target file written for them.
            pointed = [load_scenario(item.path, target=target) for item in loaded]
            run_suite(result, pointed, opts.out, console=console, processes=opts.processes)
        except KeyboardInterrupt as exc:
            result.interrupted = True
            result.notes.append(f"interrupted ({exc or 'SIGINT'})")
        except DrillError as exc:
            result.setup_error = exc.render()
        finally:
            signals.teardown()
            _down(native, state_dir, result, say)
            if watchdog is not None:
                _stop_watchdog(watchdog)
            if signals.deferred:
                result.notes.append(f"{', '.join(signals.deferred)} arrived while the deployment was stopped; deferred")
            result.ended_wall = time.time()
            write_suite(result, opts.out)
    return result


def _down(native: NativeKugelpos | None, state_dir: Path, result: SuiteResult, say: Callable[[str], None]) -> None:
    """Stop the deployment (or what a half-done start left in the state file); leftovers fail the suite."""
    if native is None:
        if not (state_dir / STATE_NAME).exists():
            return
        native = NativeKugelpos.from_state_file(state_dir)
    say("stopping the Kugelpos services ...")
    try:
        outcome = native.down()
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed
        result.setup_error = f"down failed: {type(exc).__name__}: {exc} (state kept in {state_dir})"
        return
    if outcome["problems"] or outcome["ports_left"]:
        result.setup_error = (f"down left processes {outcome['problems'] or 'none'} and ports "
                              f"{outcome['ports_left'] or 'none'} (state kept in {state_dir}; "
                              f"'kugeldrill kugelpos down --state-dir {state_dir}')")
    else:
        say("stopped: no process and no port left")
        _compact_logs(state_dir, result)


def _compact_logs(state_dir: Path, result: SuiteResult) -> None:
    """Gzip the stopped deployment's logs (its services log at DEBUG: hundreds of MB a suite),
    so the suite folder is kept whole as a nightly job's artifact."""
    for path in [*state_dir.glob("logs/*.log"), *state_dir.glob("run/*/*.log")]:
        if path.is_symlink():  # the working dirs link the checkout's own files: never touched
            continue
        try:
            gzip_in_place(path)
        except OSError as exc:
            result.notes.append(f"not compacted: {path}: {exc}")


def _stop_watchdog(proc: subprocess.Popen[bytes]) -> None:
    """The watchdog exits by itself once the state file is gone; make sure it did."""
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
