"""The native runner's watchdog: the deployment is stopped when `kugelpos drill` dies without stopping it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kugeldrill.stack.native.launcher import STATE_NAME

PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-m", "kugeldrill.stack.native.watchdog", "--parent", str(__import__("os").getpid()),
                  "--state-dir", sys.argv[1], "--interval", "0.1"], start_new_session=True)
time.sleep(float(sys.argv[2]))
"""


def _state(tmp_path: Path, pid: int) -> Path:
    state = {"version": 1, "kind": "kugelpos-native", "state_dir": str(tmp_path), "status": "running",
             "services": {"report": {"pid": pid, "match": ["sleep", "301"], "log": str(tmp_path / "r.log"),
                                     "cmd": ["sleep", "301"]}},
             "sidecars": {}, "links": {}}
    (tmp_path / STATE_NAME).write_text(json.dumps(state))
    return tmp_path


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def _watchdogs(state_dir: Path) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "kugeldrill.stack.native.watchdog" in cmd and str(state_dir) in cmd:
            out.append(proc)
    return out


def test_the_deployment_is_stopped_when_its_command_dies(tmp_path: Path) -> None:
    service = subprocess.Popen(["sleep", "301"], start_new_session=True)
    try:
        state_dir = _state(tmp_path, service.pid)
        subprocess.run([sys.executable, "-c", PARENT, str(state_dir), "0.5"], timeout=30, check=True)
        # The watchdog ends once it has stopped the deployment: wait for it, not for a guessed time.
        psutil.wait_procs(_watchdogs(state_dir), timeout=300)
        assert not _watchdogs(state_dir), "the watchdog is still running"
        assert _gone(service.pid, 5), "the watchdog did not stop the recorded process"
        service.wait(timeout=5)
        assert not (state_dir / STATE_NAME).exists()
    finally:
        if service.poll() is None:
            service.kill()


def test_the_watchdog_leaves_alone_a_deployment_its_command_stopped(tmp_path: Path) -> None:
    service = subprocess.Popen(["sleep", "301"], start_new_session=True)
    try:
        state_dir = _state(tmp_path, service.pid)
        parent = subprocess.Popen([sys.executable, "-c", PARENT, str(state_dir), "3"])
        time.sleep(1.0)
        (state_dir / STATE_NAME).unlink()  # the command's own `down` removes the state file
        parent.wait(timeout=30)
        time.sleep(1.0)
        assert service.poll() is None, "the watchdog stopped a process after the state file was gone"
    finally:
        service.kill()
        service.wait(timeout=5)
