"""A deployment stops what its state file records now: a part started again by another process
(`kugeldrill stack process start`, as a target drill's process faults do) is stopped too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kugeldrill.stack.launch.procs import port_listening
from stackutil import running_stack

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def _process(action: str, target: str, state_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kugeldrill", "stack", "process", action, target,
                           "--state-dir", str(state_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_down_stops_a_service_another_process_started_again(tmp_path: Path) -> None:
    state_dir = tmp_path / "st"
    with running_stack(state_dir) as stack:
        port = stack.state["services"]["journal"]["port"]
        _process("kill", "app@journal", state_dir)
        _process("start", "app@journal", state_dir)
        _process("ready", "app@journal", state_dir)
        result = stack.down()
        assert not result["ports_left"] and not result["problems"], result
    assert not port_listening("127.0.0.1", port)
