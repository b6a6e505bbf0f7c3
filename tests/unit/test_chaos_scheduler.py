"""The scheduler only knows time: jobs at t0 + when, same-instant batches (keys in parallel, one
key's jobs in order), a halt that waits for the batch in flight, and an end callback once."""

from __future__ import annotations

import threading
import time

from kugeldrill.chaos.scheduler import Job, Scheduler


def test_batches_run_keys_in_parallel_and_one_keys_jobs_in_order() -> None:
    log: list[tuple[str, float]] = []
    lock = threading.Lock()

    def job(name: str, sleep: float = 0.0):
        def run() -> None:
            time.sleep(sleep)
            with lock:
                log.append((name, time.monotonic()))
        return run

    ended = threading.Event()
    jobs = [Job(0.1, 1, 0, "a", job("apply a", 0.2)), Job(0.1, 0, 1, "a", job("heal a")),
            Job(0.1, 1, 2, "b", job("apply b", 0.2)), Job(0.3, 1, 3, "a", job("later a"))]
    sched = Scheduler(jobs, on_end=ended.set)
    t0 = time.monotonic()
    sched.start(t0)
    assert sched.wait(5) and ended.is_set() and sched.error is None
    names = [n for n, _ in log]
    assert names.index("heal a") < names.index("apply a") < names.index("later a")  # order first, then time
    at = dict(log)
    assert abs(at["apply a"] - at["apply b"]) < 0.15  # two keys of one batch ran side by side
    assert at["heal a"] - t0 >= 0.1


def test_a_halt_waits_for_the_step_in_flight_and_skips_the_rest() -> None:
    started, ran = threading.Event(), []
    ended = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        ran.append("slow")

    sched = Scheduler([Job(0.0, 1, 0, "a", slow), Job(0.5, 1, 1, "a", lambda: ran.append("late"))], on_end=ended.set)
    sched.start(time.monotonic())
    assert started.wait(2)
    with sched.halted(5) as got:
        assert got and ran == ["slow"]  # the step in flight finished before the halt took hold
    assert sched.wait(2) and ran == ["slow"] and not ended.is_set()  # halted: no end callback


def test_a_job_that_raises_ends_the_schedule_with_its_error() -> None:
    ended = threading.Event()

    def boom() -> None:
        raise RuntimeError("bug")

    sched = Scheduler([Job(0.0, 1, 0, "a", boom), Job(0.1, 1, 1, "a", lambda: None)], on_end=ended.set)
    sched.start(time.monotonic())
    assert sched.wait(2) and sched.error == "RuntimeError: bug" and ended.is_set()
