"""`kugeldrill stack up|status|logs|down` as a user runs them: separate processes.

`up` returns while the stack keeps running detached; `status --json` lists every URL and
which daprd runs; `down` (a new process, so only pids from stack.json) leaves no process and
no port — every sidecar port included (daprd listens on four).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kugeldrill.stack.launch.procs import pid_running, port_listening

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def kd(*args: str, timeout: float = 150.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_bad_options_fail_with_a_clear_message(tmp_path: Path) -> None:
    res = kd("stack", "up", "--state-dir", str(tmp_path), "--defect", "no_such_defect")
    assert res.returncode == 2
    assert "unknown defect switch(es) ['no_such_defect']" in res.stderr and "Traceback" not in res.stderr
    res = kd("stack", "status", "--state-dir", str(tmp_path / "none"))
    assert res.returncode == 2 and "no stack state file" in res.stderr and "Traceback" not in res.stderr
    res = kd("stack", "down", "--state-dir", str(tmp_path / "none"))
    assert res.returncode == 0 and "nothing to stop" in res.stdout


def test_up_status_logs_down_leave_nothing_behind(tmp_path: Path) -> None:
    state_dir = tmp_path / "st"
    up = kd("stack", "up", "--state-dir", str(state_dir), "--breaker-reset", "5", "--republish-interval", "10",
            "--crash-before-effect-every", "50", "--timeout", "120")
    assert up.returncode == 0, up.stderr
    assert "stack healthy in" in up.stdout
    try:
        status = kd("stack", "status", "--state-dir", str(state_dir), "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        st = json.loads(status.stdout)
        assert st["redis_url"].startswith("redis://127.0.0.1:")
        assert st["toxiproxy_url"].startswith("http://127.0.0.1:")
        assert set(st["services"]) == {"account", "terminal", "master-data", "cart", "report", "journal", "stock"}
        assert all(s["running"] and s["healthy"] and s["url"].startswith("http://127.0.0.1:")
                   for s in st["services"].values())
        assert all(s["running"] and s["healthy"] for s in st["sidecars"].values())
        assert len(st["links"]) == 15 and all(link["url"] for link in st["links"].values())
        assert st["options"]["breaker"]["reset_seconds"] == 5.0
        assert {s["version"] for s in st["sidecars"].values()} == {"1.18.0"}
        assert st["sidecar"]["kind"] == "daprd" and st["sidecar"]["version"] == "1.18.0"
        assert "sidecars   daprd 1.18.0 (ack model 1.18)" in up.stdout
        state = json.loads((state_dir / "stack.json").read_text())
        assert state["supervisor"]["mode"] == "process"  # up returned; a detached supervisor remains
        # The detached supervisor restarts a subscriber that dies, and records it.
        old_pid = state["services"]["stock"]["pid"]
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = json.loads((state_dir / "stack.json").read_text())
            if state["services"]["stock"].get("restarts"):
                break
            time.sleep(0.2)
        assert state["services"]["stock"]["restarts"][0]["old_pid"] == old_pid
        assert pid_running(state["services"]["stock"]["pid"])

        logs = kd("stack", "logs", "cart", "--state-dir", str(state_dir), "-n", "5")
        assert logs.returncode == 0 and "==> cart" in logs.stdout and "==> sidecar cart" in logs.stdout
        bad = kd("stack", "logs", "nosuchapp", "--state-dir", str(state_dir))
        assert bad.returncode == 2 and "no logs for 'nosuchapp'" in bad.stderr
    finally:
        state = json.loads((state_dir / "stack.json").read_text())
        pids = [e["pid"] for key in ("redis", "toxiproxy", "supervisor") for e in [state.get(key) or {}] if e.get("pid")]
        pids += [e["pid"] for group in ("services", "sidecars") for e in state[group].values()]
        ports = [state["redis"]["port"], state["toxiproxy"]["port"]]
        ports += [e["port"] for e in state["services"].values()]
        ports += [p for e in state["sidecars"].values() for p in (e.get("ports") or {"http": e["port"]}).values()]
        ports += [int(link["listen"].rsplit(":", 1)[1]) for link in state["links"].values()]
        down = kd("stack", "down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(pids) == 2 + 1 + 7 + 5
    assert [p for p in pids if pid_running(p)] == []
    assert [p for p in ports if port_listening("127.0.0.1", p)] == []
    assert not (state_dir / "stack.json").exists()
