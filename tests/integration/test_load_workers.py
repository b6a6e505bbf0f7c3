"""Drills whose load runs on Locust workers that behave like other hosts.

Each worker is `kugeldrill worker --master 127.0.0.1:PORT` in a process of its own, with
its own working directory and temporary directory, no KUGELDRILL_* settings and no file of
the run: everything it knows (provision data, load settings, terminals) comes from the
drill's Locust master over TCP, and its history goes back the same way.

* three workers: the drill passes, and the merged history holds exactly the operations
  the workers say they ran (their own count, printed when they quit), each under its
  worker's id;
* two workers, one SIGKILLed mid-drill: the verdict is not a false failure, it names the
  lost worker, and the lost worker's operations without an outcome are `info` naming it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kugeldrill.ground.history_read import load_ops
from kugeldrill.ground.ports import free_port
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.collector import read_ledger

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = """\
name: {name}
description: baseline load on Locust workers that joined the drill's master
load:
  users: {{CartUser: 4, TerminalUser: 1, OpenCloseUser: 1}}
  spawn_rate: 6
  duration: {seconds}s
stack:
  breaker: {{threshold: 3, reset_seconds: 5}}
  republish_interval_seconds: 3
expect:
  breaker:
    never_open: [cart, terminal, report, journal, stock]
  duplicates: {{policy: strict}}
  fanout: {{policy: exactly_once}}
  load:
    max_error_rate: 0.01
    min_requests: 50
  convergence: {{max_seconds: 20}}
"""
WORKER_LINE = re.compile(r"kugeldrill worker (w\d+): (\d+) operations in (\d+) history batches, (.*)")


def _host_env(home: Path) -> dict[str, str]:
    """Like another machine: no kugeldrill settings, its own temporary directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUGELDRILL_", "LOCUST_"))}
    env.update(TMPDIR=str(home / "tmp"), PYTHONUNBUFFERED="1")
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


class Worker:
    """`kugeldrill worker` in its own directory, its output in a file there."""

    def __init__(self, home: Path, port: int) -> None:
        home.mkdir(parents=True)
        self.home = home
        self.log = home / "worker.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "kugeldrill", "worker", "--master", f"127.0.0.1:{port}"],
                                         cwd=home, env=_host_env(home), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def summary(self) -> tuple[str, int, str]:
        found = WORKER_LINE.search(self.output())
        assert found, self.output()[-3000:]
        return found.group(1), int(found.group(2)), found.group(4)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _drill(base: Path, name: str, seconds: int, workers: int, port: int) -> subprocess.Popen:
    scenario = base / f"{name}.yaml"
    scenario.write_text(SCENARIO.format(name=name, seconds=seconds))
    return subprocess.Popen([sys.executable, "-m", "kugeldrill", "run", str(scenario), "--out", str(base / "run"),
                             "--plain", "--master", "--master-port", str(port), "--expect-workers", str(workers)],
                            cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finish(drill: subprocess.Popen, workers: list[Worker], timeout: float = 300) -> str:
    try:
        stdout, _ = drill.communicate(timeout=timeout)
    finally:
        if drill.poll() is None:
            os.killpg(drill.pid, signal.SIGINT)
            drill.communicate(timeout=90)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
    return stdout


def _first_operations(run: Path, drill: subprocess.Popen, timeout: float = 240) -> None:
    """Until the master wrote history from every worker (the load is under way)."""
    deadline = time.monotonic() + timeout
    shards = RunFolder(run).history_dir
    while time.monotonic() < deadline and drill.poll() is None:
        if shards.is_dir() and sum(1 for p in shards.glob("w*.jsonl") if p.stat().st_size > 0) >= 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"no history from the workers (drill exit {drill.poll()})")


def test_three_workers_as_hosts_pass_and_their_history_is_whole(tmp_path: Path) -> None:
    port = free_port()
    drill = _drill(tmp_path, "workers-3", seconds=15, workers=3, port=port)
    workers = [Worker(tmp_path / f"host{i}", port) for i in range(3)]
    stdout = _finish(drill, workers)
    run = RunFolder(tmp_path / "run")
    verdict = json.loads(run.verdict_json.read_text())
    assert drill.returncode == 0 and verdict["verdict"] == "pass", stdout[-4000:]
    said = {}
    for w in workers:
        worker, count, acked = w.summary()
        assert acked == "all acknowledged by the master", w.output()[-2000:]
        said[worker] = count
        assert not [p for p in w.home.rglob("*") if p.is_file() and p.name != "worker.log"]  # nothing on its disk
    ops = load_ops(run.history_jsonl)
    per_worker = Counter(o.worker for o in ops)
    assert len(said) == 3 and dict(per_worker) == said, (per_worker, said)
    assert all(o.outcome is not None for o in ops) and len({o.op_id for o in ops}) == len(ops)
    ledger = read_ledger(run.load_workers_json)
    assert sorted((r.worker, r.state, r.operations) for r in ledger) == sorted((w, "ended", n) for w, n in said.items())
    assert not any("lost" in n for n in verdict["notes"]), verdict["notes"]


def test_a_worker_killed_mid_drill_is_named_and_its_operations_are_unknown(tmp_path: Path) -> None:
    port = free_port()
    drill = _drill(tmp_path, "workers-kill", seconds=12, workers=2, port=port)
    workers = [Worker(tmp_path / f"host{i}", port) for i in range(2)]
    try:
        _first_operations(tmp_path / "run", drill)
        time.sleep(4)  # well into the load: the victim has operations written and some in flight
        victim = workers[1]
        victim.kill()
    finally:
        stdout = _finish(drill, workers)
    run = RunFolder(tmp_path / "run")
    verdict = json.loads(run.verdict_json.read_text())
    failed = [e for e in verdict["expectations"] if e["passed"] is False]
    assert drill.returncode in (0, 1) and not failed, stdout[-4000:]  # no false failure
    ledger = {r.worker: r for r in read_ledger(run.load_workers_json)}
    survivor, count, _ = workers[0].summary()
    lost = [r for r in ledger.values() if r.state == "lost"]
    assert len(lost) == 1 and lost[0].worker != survivor and ledger[survivor].state == "ended", ledger
    (note,) = [n for n in verdict["notes"] if "was lost" in n]
    assert lost[0].worker in note and lost[0].client_id in note and "missed its heartbeats" in note, note
    ops = load_ops(run.history_jsonl)
    theirs = [o for o in ops if o.worker == lost[0].worker]
    assert theirs, "the lost worker's operations before it died are in the history"
    unknown = [o for o in theirs if o.error and lost[0].worker in o.error and "was lost" in o.error]
    assert all(o.outcome == "info" for o in unknown) and len(unknown) == lost[0].lost_open
    assert all(o.outcome is not None for o in ops)
    assert sum(1 for o in ops if o.worker == survivor) == count
    assert f"{lost[0].worker} (host" in stdout  # said on the console too
