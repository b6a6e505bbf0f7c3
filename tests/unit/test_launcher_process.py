"""The launcher's process record: a process started from its state entry, and started again
from it by process faults, runs with exactly the recorded argv, variables and working folder,
whichever deployment recorded it (the embedded stack's stack.json or the native runner's
kugelpos.json)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from kugeldrill.ground.pids import pid_running
from kugeldrill.stack.launch.control import RecordedProcesses
from kugeldrill.stack.launch.process import Command, ManagedProcess, wait_for, without_variables
from kugeldrill.stack.launch.state import StateFile

PRINT_ENV = "import os, sys, time; print(os.getcwd(), os.environ.get('KD_SET'), os.environ.get('KD_GONE'), flush=True); time.sleep(60)"


def test_a_recorded_command_runs_with_its_variables_folder_and_without_the_scrubbed_ones(tmp_path: Path,
                                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KD_GONE", "inherited")
    entry = {"cmd": without_variables([sys.executable, "-c", PRINT_ENV], ["KD_GONE"]), "env": {"KD_SET": "1"},
             "cwd": str(tmp_path), "log": str(tmp_path / "p.log")}
    proc = ManagedProcess.of("probe", Command.from_entry(entry)).start()
    try:
        assert wait_for(lambda: (tmp_path / "p.log").read_text().strip(), 20)
        assert (tmp_path / "p.log").read_text().split() == [str(tmp_path), "1", "None"]
    finally:
        proc.stop()
    assert not proc.alive() and without_variables(["x"], []) == ["x"]


def test_process_faults_restart_a_native_record_from_its_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """kill, then start again from the record: new pid recorded, the same variables, the
    restart listed; MongoDB is a target of the native runner, Toxiproxy of nobody."""
    monkeypatch.setenv("KD_GONE", "inherited")
    log = tmp_path / "logs" / "cart.log"
    first = ManagedProcess.of("service cart", Command.from_entry(
        {"cmd": without_variables([sys.executable, "-c", PRINT_ENV, "marker-cart"], ["KD_GONE"]),
         "env": {"KD_SET": "2"}, "cwd": str(tmp_path), "log": str(log)})).start()
    state = {"version": 1, "kind": "kugelpos-native", "started_wall": time.time(),
             "services": {"cart": {"pid": first.pid, "cmd": first.argv, "env": {"KD_SET": "2"}, "cwd": str(tmp_path),
                                   "log": str(log), "match": ["marker-cart"], "url": "http://127.0.0.1:1"}},
             "sidecars": {}, "mongo": {"pid": 1, "cmd": ["java"], "match": ["kugeldrill.mongo.Main"], "port": 1},
             "toxiproxy": {"pid": 1, "api": "http://127.0.0.1:1"}, "redis": {}}
    path = tmp_path / "kugelpos.json"
    path.write_text(json.dumps(state))
    ctl = RecordedProcesses(StateFile(path, json.loads(path.read_text())))
    restarted = None
    try:
        assert ctl.description == "the native Kugelpos" and ctl.targets() == ["mongo", "app@cart"]
        assert wait_for(lambda: log.read_text().strip(), 20)
        ctl.kill("app@cart")
        assert first.wait(5)
        result = ctl.start("app@cart")
        (restarted,) = result.pids_after
        after = json.loads(path.read_text())["services"]["cart"]
        assert after["pid"] == restarted != first.pid and after["restarts"][0]["cause"] == "process fault"
        assert wait_for(lambda: len(log.read_text().split()) == 6, 20)
        assert log.read_text().split()[3:] == [str(tmp_path), "2", "None"]
    finally:
        first.stop()
        for child in ctl._children.values():  # noqa: SLF001 - the restarted child, reaped
            child.stop()
    assert restarted is not None and not pid_running(restarted)


def test_pause_resume_and_kill_reach_a_servers_workers(tmp_path: Path):
    """A multi-worker server (uvicorn --workers N) is a group: pausing only its supervisor
    would leave its workers serving. Its own session makes it the group's leader."""
    from kugeldrill.ground.pids import proc_state

    script = ("import subprocess, sys, time; w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
              " print(w.pid, flush=True); time.sleep(60)")
    log = tmp_path / "srv.log"
    server = ManagedProcess.of("service cart", Command.from_entry(
        {"cmd": [sys.executable, "-c", script, "marker-srv"], "log": str(log)})).start()
    state = {"version": 1, "started_wall": time.time(), "redis": {},
             "services": {"cart": {"pid": server.pid, "cmd": server.argv, "log": str(log), "match": ["marker-srv"],
                                   "url": "http://127.0.0.1:1"}}, "sidecars": {}}
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(state))
    ctl = RecordedProcesses(StateFile(path, json.loads(path.read_text())))
    try:
        assert wait_for(lambda: log.read_text().strip(), 20)
        worker = int(log.read_text().split()[0])
        ctl.pause("app@cart")
        assert wait_for(lambda: proc_state(worker) == "T", 5), proc_state(worker)
        ctl.resume("app@cart")
        assert wait_for(lambda: proc_state(worker) in ("S", "R"), 5), proc_state(worker)
        ctl.kill("app@cart")
        assert wait_for(lambda: not pid_running(worker), 5)
    finally:
        server.kill()
