"""Lease entries carried out without the stack (the watchdog's and `kugeldrill heal`'s way),
on real short-lived processes: continue a SIGSTOPped one, start a dead one again and record
its pid, run a target's command; each idempotent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kugeldrill.chaos import lease as leases
from kugeldrill.chaos.procheal import heal_entries, run_entry
from kugeldrill.ground.pids import pid_running, proc_state, state_within

SLEEPER = [sys.executable, "-c", "import sys, time; time.sleep(60)", "kugeldrill-test-sleeper"]


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(SLEEPER)
    yield proc
    proc.kill()
    proc.wait()


def test_signal_entry_continues_a_stopped_process(sleeper) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    assert state_within(sleeper.pid, {"T"}, 2.0)
    entry = {"target": "redis", "do": "signal", "signal": "SIGCONT", "pids": [sleeper.pid],
             "match": ["kugeldrill-test-sleeper"]}
    out = run_entry(entry)
    assert out.ok and out.message == f"continued pid(s) [{sleeper.pid}]"
    assert proc_state(sleeper.pid) not in ("T", "t")  # running again (R, S or D)
    again = run_entry(entry)
    assert again.ok and "were running" in again.message  # idempotent


def test_signal_entry_never_touches_a_pid_that_is_another_program(sleeper) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    assert state_within(sleeper.pid, {"T"}, 2.0)
    try:
        out = run_entry({"target": "redis", "do": "signal", "signal": "SIGCONT", "pids": [sleeper.pid],
                         "match": ["redis-server"]})
        assert not out.ok and "runs any more" in out.message
        assert proc_state(sleeper.pid) == "T"  # left alone
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)


def test_spawn_entry_starts_records_the_pid_and_is_idempotent(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"version": 1, "services": {"journal": {"pid": 999999999, "cmd": SLEEPER}}}))
    entry = {"target": "app@journal", "do": "spawn", "argv": SLEEPER, "env": {"KUGELDRILL_TEST": "1"},
             "log": str(tmp_path / "journal.log"), "match": ["kugeldrill-test-sleeper"],
             "pid_file": {"path": str(state), "keys": ["services", "journal", "pid"]}}
    out = run_entry(entry)
    pid = json.loads(state.read_text())["services"]["journal"]["pid"]
    try:
        assert out.ok and out.message == f"started again (pid {pid})"
        assert pid_running(pid) and os.getpgid(pid) == pid  # its own session, like the launcher's children
        assert Path(f"/proc/{pid}/environ").read_bytes().split(b"\0").count(b"KUGELDRILL_TEST=1") == 1
        again = run_entry(entry)
        assert again.ok and again.message == f"already running (pid {pid})"
        os.kill(pid, signal.SIGSTOP)
        assert state_within(pid, {"T"}, 2.0)
        third = run_entry(entry)
        assert third.ok and "was stopped; continued" in third.message and proc_state(pid) != "T"
    finally:
        os.kill(pid, signal.SIGKILL)


def test_spawn_entry_reports_a_command_that_exits_at_once(tmp_path: Path) -> None:
    out = run_entry({"target": "redis", "do": "spawn", "argv": [sys.executable, "-c", "raise SystemExit(3)"],
                     "log": str(tmp_path / "x.log"), "match": ["nothing"]})
    assert not out.ok and "exited at once with code 3" in out.message


def test_signal_entry_falls_back_to_spawning_a_gone_process(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    marker = tmp_path / "started"
    fallback = {"target": "redis", "do": "spawn", "argv": [sys.executable, "-c",
                f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(5)"],
                "log": str(tmp_path / "r.log"), "match": ["never-matches"]}
    out = run_entry({"target": "redis", "do": "signal", "signal": "SIGCONT", "pids": [gone.pid], "match": ["x"],
                     "fallback": fallback})
    assert out.ok and "started again" in out.message
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_command_entries_and_unknown_actions(tmp_path: Path) -> None:
    ok, bad, unknown = heal_entries({
        "a": {"target": "app@cart", "do": "command", "argv": ["true"]},
        "b": {"target": "app@stock", "do": "command", "argv": ["sh", "-c", "echo no such container >&2; exit 1"]},
        "c": {"target": "redis", "do": "teleport"},
    })
    assert ok.ok and ok.message == "ran true"
    assert not bad.ok and "exited with 1: no such container" in bad.message
    assert not unknown.ok and "unknown heal action 'teleport'" in unknown.message


def test_watchdog_heals_process_entries_when_its_parent_dies(tmp_path: Path, sleeper) -> None:
    """A parent that writes a lease with a paused process, then dies: the watchdog continues it."""
    os.kill(sleeper.pid, signal.SIGSTOP)
    assert state_within(sleeper.pid, {"T"}, 2.0)
    lease = tmp_path / "lease.json"
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    data = leases.make_lease(None, [])
    data["parent_pid"] = parent.pid
    data["processes"] = {"freeze": {"target": "redis", "need": "resume", "do": "signal", "signal": "SIGCONT",
                                    "pids": [sleeper.pid], "match": ["kugeldrill-test-sleeper"]}}
    leases.write_lease(lease, data)
    wd = subprocess.Popen([sys.executable, "-m", "kugeldrill.chaos.watchdog", "--lease", str(lease), "--parent",
                           str(parent.pid), "--interval", "0.05", "--give-up", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        assert proc_state(sleeper.pid) == "T"  # parent alive: nothing healed yet
        parent.kill()
        parent.wait()
        out = wd.communicate(timeout=20)[0].decode()
        assert wd.returncode == 0, out
        assert f"process redis: continued pid(s) [{sleeper.pid}]" in out
        assert proc_state(sleeper.pid) not in ("T", "t")  # running again (R, S or D)
        assert json.loads(lease.read_text())["state"] == "healed_by_watchdog"
    finally:
        parent.kill()
        wd.kill()


def test_kugeldrill_heal_carries_out_the_leases_beside_a_timeline(tmp_path: Path) -> None:
    """A drill killed with its watchdog gone: `kugeldrill heal --state run/timeline.json`."""
    (tmp_path / "timeline.json").write_text(json.dumps({"t0_wall": 0, "t0_mono": 0, "state": "running",
                                                        "api": None, "faults": []}))
    marker = tmp_path / "started"
    lease = tmp_path / ".chaos-lease-1-abc.json"
    data = leases.make_lease(None, [])
    data["processes"] = {"crash": {"target": "app@cart", "need": "start", "do": "command",
                                   "argv": ["touch", str(marker)]}}
    leases.write_lease(lease, data)
    run = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--state", str(tmp_path / "timeline.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert marker.exists() and f"process app@cart: ran touch {marker}" in run.stdout
    assert json.loads(lease.read_text())["state"] == "healed_by_hand"  # a late watchdog leaves it alone
    again = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--state", str(lease)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "everything healed" in again.stdout
