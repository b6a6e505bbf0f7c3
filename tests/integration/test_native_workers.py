"""`kugeldrill kugelpos up --workers`: the real Kugelpos services with several uvicorn workers.

Started and stopped with the CLI as a user would, with cart on two workers (the production
Compose file's shape, `--workers prod`, at a size this machine starts quickly):

* cart runs as uvicorn's supervisor with two worker processes, and the target file says the
  breaker and the republish job are then per process;
* a killed supervisor takes its workers with it, as a container's PID 1 does: nothing keeps
  answering on cart's port (the service-group hook in the services' environments);
* `kugeldrill kugelpos down` leaves no process and no port behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kugeldrill.stack.launch.procs import port_listening

ROOT = Path(__file__).resolve().parents[2]
KUGELPOS = Path(os.environ.get("KUGELPOS_SRC") or ROOT.parent / "shared" / "kugelpos-backend")
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.alone,
              pytest.mark.skipif(not (KUGELPOS / "services").is_dir(), reason=f"no Kugelpos checkout at {KUGELPOS}")]


def _kugeldrill(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], cwd=ROOT, text=True, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _live(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_multi_worker_service_runs_dies_and_stops_as_one(tmp_path: Path):
    state_dir = tmp_path / "kugelpos"
    up = _kugeldrill("kugelpos", "up", "--src", str(KUGELPOS), "--state-dir", str(state_dir), "--workers", "cart=2",
                     "--timeout", "240", timeout=900)
    state_file = state_dir / "kugelpos.json"
    try:
        assert up.returncode == 0, up.stdout[-3000:]
        state = json.loads(state_file.read_text())
        cart = state["services"]["cart"]
        assert cart["workers"] == 2 and cart["cmd"][-2:] == ["--workers", "2"]
        assert state["services"]["stock"]["workers"] == 1 and "--workers" not in state["services"]["stock"]["cmd"]
        target = yaml.safe_load(Path(state["target"]).read_text())
        assert "cart 2" in target["description"] and "the breaker is per process" in target["description"]

        supervisor = psutil.Process(cart["pid"])
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:  # uvicorn's workers, beside multiprocessing's resource tracker
            workers = [c.pid for c in supervisor.children() if "multiprocessing.spawn" in " ".join(c.cmdline())]
            if len(workers) == 2:
                break
            time.sleep(0.5)
        assert len(workers) == 2, f"cart's supervisor has workers {workers}"
        assert port_listening("127.0.0.1", cart["port"])

        supervisor.send_signal(signal.SIGKILL)  # what a process fault or a stop timeout does
        deadline = time.monotonic() + 15
        while (_live(workers) or port_listening("127.0.0.1", cart["port"])) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _live(workers) == [], "cart's workers outlived their supervisor"
        assert not port_listening("127.0.0.1", cart["port"]), "a killed cart still answers on its port"
    finally:
        down = _kugeldrill("kugelpos", "down", "--state-dir", str(state_dir), timeout=300)
    assert down.returncode == 0, down.stdout  # cart, killed on purpose, is reported gone
    pids = [e["pid"] for e in [*state["services"].values(), *state["sidecars"].values(),
                               state["mongo"], state["redis"], state["toxiproxy"]]]
    assert _live(pids + workers) == []
    ports = [e["port"] for e in state["services"].values()] + [int(link["listen"].rsplit(":", 1)[1])
                                                              for link in state["links"].values()]
    assert [p for p in ports if port_listening("127.0.0.1", p)] == []
    assert not state_file.exists()
