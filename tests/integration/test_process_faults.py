"""Process faults on the real stand-in: kill, pause and restart applied and healed on its real
processes (pids, /proc/<pid>/stat states, restarts recorded in stack.json), and healed on
every exit path of the process that applied them — SIGINT, SIGTERM, SIGKILL (watchdog) and
`kugeldrill heal` — leaving every process of the stack running and none stopped.

One stand-in started with `kugeldrill stack up` (detached, like a user's) serves the module;
its processes are children of nobody here, so only pids and stack.json connect them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from kugeldrill.chaos.timeline import Timeline
from kugeldrill.ground.pids import pid_running, proc_state
from kugeldrill.stack.launch.control import RecordedProcesses
from kugeldrill.stack.launch.procs import port_listening
from kugeldrill.stack.launch.process import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RUNNING = {"R", "S", "D"}


def kd(*args: str, timeout: float = 150.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("procstack") / "st"
    up = kd("stack", "up", "--state-dir", str(state_dir), "--redis-persistence", "aof")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield state_dir
    finally:
        state = json.loads((state_dir / "stack.json").read_text()) if (state_dir / "stack.json").exists() else None
        down = kd("stack", "down", "--state-dir", str(state_dir))
        assert down.returncode == 0, down.stdout + down.stderr
        if state is not None:  # restarted processes included: nothing left, no port listening
            pids = [e["pid"] for e in [state["redis"], *state["services"].values(), *state["sidecars"].values()]]
            assert not [p for p in pids if pid_running(p)]
            ports = [e["port"] for e in [state["redis"], *state["services"].values(), *state["sidecars"].values()]]
            assert not [p for p in ports if port_listening("127.0.0.1", p)]


def all_targets_healthy(state_dir: Path) -> list[str]:
    ctl = RecordedProcesses.from_state_file(state_dir)
    return ctl.problems(ctl.targets())


def pid_of(state_dir: Path, target: str) -> int:
    return RecordedProcesses.from_state_file(state_dir).pids(target)[0]


def test_each_kind_is_applied_and_healed_on_real_processes(stack_dir: Path, tmp_path: Path) -> None:
    ctl = RecordedProcesses.from_state_file(stack_dir)
    before = {t: ctl.pids(t)[0] for t in ("app@journal", "redis", "sidecar@stock", "app@report")}
    spec = [
        {"id": "crash", "at": 0, "for": 2.0, "process": "app@journal", "kind": "kill"},
        {"id": "freeze", "at": 0, "for": 2.0, "process": "redis", "kind": "pause"},
        {"id": "bounce", "at": 0, "for": 2.0, "process": "sidecar@stock", "kind": "restart", "grace": 5},
        {"id": "again", "at": 0, "for": 6.0, "process": "app@report", "kind": "kill", "uptime": 0.3},
    ]
    tl = Timeline(spec, None, None, processes=ctl, out=tmp_path / "timeline.json", watchdog=False)
    tl.start()
    assert tl.wait_applied(timeout=20)
    # During the faults: the killed journal is gone (or a zombie nobody reaped yet), Redis is stopped (T).
    assert proc_state(before["app@journal"]) in (None, "Z", "X")
    assert proc_state(before["redis"]) == "T"
    tl.wait(timeout=60)
    report = tl.stop()
    assert report.ok, report.remaining
    assert tl.wait_ready_recorded(60)
    doc = json.loads((tmp_path / "timeline.json").read_text())
    faults = {f["id"]: f for f in doc["faults"]}
    assert all(f["status"] == "healed" and f["error"] is None for f in faults.values()), faults
    after = {t: ctl.pids(t)[0] for t in before}
    # Killed and restarted: a new pid, running; paused and continued: the same pid, not stopped.
    assert after["app@journal"] != before["app@journal"] and proc_state(after["app@journal"]) in RUNNING
    assert after["redis"] == before["redis"] and proc_state(after["redis"]) in RUNNING
    assert after["sidecar@stock"] != before["sidecar@stock"]
    assert faults["crash"]["pids"] == {"before": [before["app@journal"]], "after": [after["app@journal"]]}
    assert [e["action"] for e in faults["freeze"]["events"]] == ["pause", "resume"]
    assert faults["bounce"]["events"][0]["outcome"] == "done"  # SIGTERM was enough
    # Every start was followed by the process answering its probe.
    starts = [e for f in faults.values() for e in f["events"] if e["action"] == "start" and e["outcome"] == "done"]
    assert starts and all(e.get("ready_mono") for e in starts[:-1]), starts
    # The report service was killed again after each restart answered: restarts observed.
    kills = [e for e in faults["again"]["events"] if e["action"] == "kill"]
    assert len(kills) >= 2
    state = json.loads((stack_dir / "stack.json").read_text())
    assert state["services"]["journal"]["pid"] == after["app@journal"]
    assert state["services"]["report"]["restarts"][-1]["new_pid"] == after["app@report"]
    assert len(state["services"]["report"]["restarts"]) >= len(kills)
    assert {r["cause"] for r in state["services"]["report"]["restarts"]} == {"process fault"}
    assert all_targets_healthy(stack_dir) == []
    status = kd("stack", "status", "--state-dir", str(stack_dir))
    assert status.returncode == 0, status.stdout


def test_process_cli_acts_and_reports(stack_dir: Path) -> None:
    old = pid_of(stack_dir, "app@stock")
    paused = kd("stack", "process", "pause", "app@stock", "--state-dir", str(stack_dir))
    assert paused.returncode == 0 and f"pause app@stock: done; pids [{old}] -> [{old}]" in paused.stdout
    assert proc_state(old) == "T"
    running = kd("stack", "process", "running", "app@stock", "--state-dir", str(stack_dir))
    assert running.returncode == 1 and "is stopped" in running.stdout
    status = kd("stack", "status", "--state-dir", str(stack_dir))
    assert status.returncode == 1 and "STOPPED (SIGSTOP)" in status.stdout
    assert kd("stack", "process", "resume", "app@stock", "--state-dir", str(stack_dir)).returncode == 0
    assert proc_state(old) in RUNNING
    killed = kd("stack", "process", "kill", "app@stock", "--state-dir", str(stack_dir), "--json")
    assert json.loads(killed.stdout)["pids_before"] == [old] and not pid_running(old)
    started = kd("stack", "process", "start", "app@stock", "--state-dir", str(stack_dir))
    assert started.returncode == 0
    assert kd("stack", "process", "ready", "app@stock", "--state-dir", str(stack_dir)).returncode == 0
    assert pid_of(stack_dir, "app@stock") != old
    bad = kd("stack", "process", "kill", "app@nowhere", "--state-dir", str(stack_dir))
    assert bad.returncode == 2 and "has no process 'app@nowhere'" in bad.stderr and "Traceback" not in bad.stderr


DRIVER = """
import json, sys, time
from kugeldrill.chaos.heal import heal_on_signals
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.ground.errors import run_handler
from kugeldrill.stack.launch.control import RecordedProcesses

def main(args):
    state_dir, out, watchdog = args
    ctl = RecordedProcesses.from_state_file(state_dir)
    spec = [{"id": "freeze", "at": 0, "for": 120, "process": "redis", "kind": "pause"},
            {"id": "crash", "at": 0, "for": 120, "process": "app@journal", "kind": "kill"}]
    tl = Timeline(spec, None, None, processes=ctl, out=out, watchdog=watchdog == "1")
    with heal_on_signals(tl.stop):
        tl.start()
        tl.wait_applied(timeout=20)
        print("applied", flush=True)
        try:
            tl.wait()
        finally:
            tl.stop()

sys.exit(run_handler("driver", main, sys.argv[1:]))
"""


def start_driver(stack_dir: Path, tmp_path: Path, *, watchdog: bool = True) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), str(stack_dir), str(tmp_path / "run" / "timeline.json"),
                             "1" if watchdog else "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_faults_active(stack_dir: Path, proc: subprocess.Popen, journal_pid: int, redis_pid: int) -> None:
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.strip() == "applied", line + (proc.stdout.read() if proc.stdout else "")
    assert proc_state(redis_pid) == "T" and not pid_running(journal_pid)


def assert_stack_whole(stack_dir: Path, journal_pid: int, redis_pid: int, timeout: float = 30.0) -> None:
    assert wait_for(lambda: all_targets_healthy(stack_dir) == [], timeout), all_targets_healthy(stack_dir)
    assert proc_state(redis_pid) in RUNNING  # the same Redis, continued
    new = pid_of(stack_dir, "app@journal")
    assert new != journal_pid and proc_state(new) in RUNNING  # started again, pid recorded in stack.json
    ctl = RecordedProcesses.from_state_file(stack_dir)
    assert ctl.wait_ready("app@journal", 60) is None and ctl.wait_ready("redis", 10) is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_heals_processes_before_exit(stack_dir: Path, tmp_path: Path, sig: int) -> None:
    journal, redis = pid_of(stack_dir, "app@journal"), pid_of(stack_dir, "redis")
    proc = start_driver(stack_dir, tmp_path)
    wait_faults_active(stack_dir, proc, journal, redis)
    proc.send_signal(sig)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode in (130, -signal.SIGTERM), out
    assert all_targets_healthy(stack_dir) == []  # healed before the exit, not later by the watchdog
    assert_stack_whole(stack_dir, journal, redis)
    doc = json.loads((tmp_path / "run" / "timeline.json").read_text())
    assert {f["status"] for f in doc["faults"]} == {"healed"} and all(f["stopped_early"] for f in doc["faults"])
    assert not list((tmp_path / "run").glob(".chaos-lease-*"))


def test_sigkill_is_healed_by_the_watchdog(stack_dir: Path, tmp_path: Path) -> None:
    journal, redis = pid_of(stack_dir, "app@journal"), pid_of(stack_dir, "redis")
    proc = start_driver(stack_dir, tmp_path)
    wait_faults_active(stack_dir, proc, journal, redis)
    proc.kill()
    proc.communicate(timeout=10)
    assert_stack_whole(stack_dir, journal, redis)
    log = (tmp_path / "run" / "watchdog.log").read_text()
    assert "is gone; healing redis, app@journal" in log or "is gone; healing app@journal, redis" in log, log
    assert f"process redis: continued pid(s) [{redis}]" in log and "process app@journal: started again" in log


def test_sigkill_without_watchdog_is_healed_by_kugeldrill_heal(stack_dir: Path, tmp_path: Path) -> None:
    journal, redis = pid_of(stack_dir, "app@journal"), pid_of(stack_dir, "redis")
    proc = start_driver(stack_dir, tmp_path, watchdog=False)
    wait_faults_active(stack_dir, proc, journal, redis)
    proc.kill()
    proc.communicate(timeout=10)
    time.sleep(0.5)
    assert sorted(all_targets_healthy(stack_dir)) == [f"process app@journal is not running (pid {journal})",
                                                       f"process redis is stopped (pid {redis}, state T)"]
    heal = kd("heal", "--state", str(stack_dir / "stack.json"))
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert f"continued redis (pids [{redis}])" in heal.stdout and "started again app@journal" in heal.stdout
    assert_stack_whole(stack_dir, journal, redis)
    again = kd("heal", "--state", str(stack_dir / "stack.json"))
    assert again.returncode == 0 and "everything healed" in again.stdout  # safe to repeat


def test_aof_persistence_keeps_markers_across_a_redis_restart(stack_dir: Path) -> None:
    import redis as redis_py

    state = json.loads((stack_dir / "stack.json").read_text())
    assert state["redis"]["persistence"] == "aof" and "--appendonly" in state["redis"]["cmd"]
    client = redis_py.Redis.from_url(state["redis"]["url"].replace("/0", "/1"), socket_timeout=5)
    client.hset("journal||probe-event", mapping={"data": '{"event_id": "probe"}', "version": 1})
    ctl = RecordedProcesses.from_state_file(stack_dir)
    old = ctl.pids("redis")[0]
    res = ctl.stop("redis", 10)
    assert res.outcome == "done" and not pid_running(old)
    assert ctl.start("redis").pids_after != (old,)
    assert ctl.wait_ready("redis", 20) is None
    assert client.hget("journal||probe-event", "version") == b"1"  # the append-only file brought it back
    client.close()
    assert wait_for(lambda: all_targets_healthy(stack_dir) == [], 30)
