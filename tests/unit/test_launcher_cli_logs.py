"""`kugeldrill stack logs` against a hand-written state file (no processes needed)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_state(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    for name in ("cart", "sidecar-cart", "stock", "redis", "toxiproxy"):
        (logs / f"{name}.log").write_text("".join(f"{name} line {i}\n" for i in range(10)))
    state = {
        "version": 1, "state_dir": str(tmp_path),
        "redis": {"log": str(logs / "redis.log")}, "toxiproxy": {"log": str(logs / "toxiproxy.log")},
        "services": {"cart": {"log": str(logs / "cart.log")}, "stock": {"log": str(logs / "stock.log")}},
        "sidecars": {"cart": {"log": str(logs / "sidecar-cart.log")}}, "links": {},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state))
    return logs


def kd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kugeldrill", "stack", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_logs_of_one_app_show_its_service_and_sidecar_tails(tmp_path: Path) -> None:
    make_state(tmp_path)
    res = kd("logs", "cart", "-n", "2", "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "cart line 9" in res.stdout and "sidecar-cart line 8" in res.stdout
    assert "cart line 7" not in res.stdout and "stock line" not in res.stdout
    everything = kd("logs", "-n", "1", "--state-dir", str(tmp_path))
    assert all(f"{n} line 9" in everything.stdout for n in ("cart", "stock", "redis", "toxiproxy"))
    bad = kd("logs", "nope", "--state-dir", str(tmp_path))
    assert bad.returncode == 2 and "no logs for 'nope'" in bad.stderr and "known: cart, redis, stock, toxiproxy" in bad.stderr


def test_follow_prints_new_lines_until_interrupted(tmp_path: Path) -> None:
    logs = make_state(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "kugeldrill", "stack", "logs", "stock", "-n", "0", "--follow",
                             "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        out = ""
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline and "stock: fresh event" not in out:
            if "==> stock" in out:  # tail printed; keep appending until follow mode picks one up
                n += 1
                with (logs / "stock.log").open("a") as fh:
                    fh.write(f"fresh event {n}\n")
            if sel.select(timeout=0.5):
                out += proc.stdout.readline()
        assert "stock: fresh event" in out
        assert "stock line" not in out  # -n 0: no old lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
