"""Standalone `locust -f locustfiles/pos.py`: web UI starts; bad settings end with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kugeldrill.ground.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROV = {"tenant_id": "T1", "store_code": "1", "urls": {"cart": "http://127.0.0.1:9"},
        "items": [{"item_code": "ITEM000", "unit_price": 100}],
        "terminals": {"cart": [{"terminal_id": "T1-1-1", "terminal_no": 1, "api_key": "k"}]}}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUGELDRILL_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_web_ui_starts_without_host_flag(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pos.py"), "--web-host", "127.0.0.1",
         "--web-port", str(port)],
        cwd=tmp_path, env=_env(KUGELDRILL_PROVISION_JSON=json.dumps(PROV)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert status == 200, proc.stdout.read() if proc.poll() is not None else "web UI did not answer"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_missing_credentials_is_one_clear_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pos.py"), "--headless",
                           "-u", "1", "-t", "1s"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "kugeldrill: error: no credentials: set KUGELDRILL_PROVISION" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_non_loopback_host_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pos.py"), "--headless",
                           "-u", "1", "-t", "1s", "--host", "http://192.0.2.10:8003"], cwd=tmp_path,
                          env=_env(KUGELDRILL_PROVISION_JSON=json.dumps(PROV)), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refusing --host 'http://192.0.2.10:8003'" in proc.stderr


def test_processes_run_survives_a_taken_default_master_port(tmp_path: Path) -> None:
    """A plain `--processes 2` command line while *:5557 is taken (another drill) still runs."""
    import socket

    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", 5557))
        blocker.listen(1)
    except OSError:
        blocker.close()
        blocker = None  # someone else holds it already: same situation
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pos.py"), "--headless", "-u", "2",
             "-r", "2", "-t", "3s", "--processes", "2", "--exit-code-on-error", "0", "--only-summary"],
            cwd=tmp_path, env=_env(KUGELDRILL_PROVISION_JSON=json.dumps(PROV)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            raise
        assert proc.returncode == 0, err[-2000:]
        assert "Address already in use" not in err
    finally:
        if blocker is not None:
            blocker.close()
