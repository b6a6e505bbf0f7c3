"""A scheduler that only knows time: run jobs at `t0 + when` on the monotonic clock.

Jobs due at the same instant form one batch. Within a batch, jobs with different keys run
in parallel (a selector over many links applies at once, not one API round trip after
another) and jobs of one key run in order, `order` first (a heal before the next apply on
the same link). A batch runs under `lock`, so whoever stops the schedule can wait for the
step in flight to finish before acting itself. Nothing here knows what a job does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

MAX_PARALLEL = 8


@dataclass(order=True)
class Job:
    when: float  # seconds after t0
    order: int  # smaller first among jobs of one key due together
    seq: int
    key: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Scheduler:
    """Runs `jobs` on a background thread from `start(t0_mono)`; `after_batch` runs after each
    batch, `on_end(stopped=False)` once when the last batch ran (not after `halted`)."""

    def __init__(self, jobs: list[Job], *, after_batch: Callable[[], None] = lambda: None,
                 on_end: Callable[[], None] = lambda: None) -> None:
        self.jobs = sorted(jobs)
        self.after_batch = after_batch
        self.on_end = on_end
        self.t0_mono: float | None = None
        self.error: str | None = None  # a job that raised (a bug): the schedule ended there
        self.stopping = threading.Event()
        self.done = threading.Event()
        self.lock = threading.RLock()  # re-entrant: a signal handler may stop during a stop
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def elapsed(self) -> float:
        return 0.0 if self.t0_mono is None else time.monotonic() - self.t0_mono

    def start(self, t0_mono: float) -> None:
        self.t0_mono = t0_mono
        self._thread = threading.Thread(target=self._run, name="kugeldrill-timeline", daemon=True)
        self._thread.start()

    def batches(self) -> list[list[Job]]:
        out: list[list[Job]] = []
        for job in self.jobs:
            if out and out[-1][0].when == job.when:
                out[-1].append(job)
            else:
                out.append([job])
        return out

    def _run(self) -> None:
        assert self.t0_mono is not None
        try:
            for batch in self.batches():
                delay = self.t0_mono + batch[0].when - time.monotonic()
                if delay > 0 and self.stopping.wait(delay):
                    return
                with self.lock:
                    if self.stopping.is_set():
                        return
                    run_batch(batch)
                self.after_batch()
        except Exception as exc:  # noqa: BLE001 - a bug must still end the schedule (and heal)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                if not self.stopping.is_set():
                    self.on_end()
            finally:
                self.done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the schedule ended or was halted; True if it did."""
        return True if self._thread is None else self.done.wait(timeout)

    @contextmanager
    def halted(self, timeout: float) -> Iterator[bool]:
        """Stop the schedule; hold the lock (waiting up to `timeout` for a step in flight) inside the
        block. Yields whether the lock was got (False: act anyway, a step is stuck)."""
        self.stopping.set()
        got = self.lock.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                self.lock.release()


def run_batch(batch: list[Job]) -> None:
    """Keys in parallel, each key's jobs in order."""
    by_key: dict[str, list[Job]] = {}
    for job in batch:
        by_key.setdefault(job.key, []).append(job)
    groups = list(by_key.values())

    def run(group: list[Job]) -> None:
        for job in group:
            job.run()

    if len(groups) == 1:
        run(groups[0])
        return
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(groups)), thread_name_prefix="kugeldrill-step") as pool:
        for future in [pool.submit(run, g) for g in groups]:
            future.result()
