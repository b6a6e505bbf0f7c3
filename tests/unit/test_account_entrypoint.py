"""`python -m stack.services --config FILE` refuses bad input with one clear line (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kugeldrill.stack.services", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    (json.dumps({"name": "cart"}), "not a valid ServiceConfig"),
    (json.dumps({"name": "cart", "port": 1, "data_dir": "/tmp", "defects": ["nope"]}), "unknown defect"),
    (json.dumps({"name": "billing", "port": 1, "data_dir": "/tmp"}), "no stand-in service named 'billing'"),
    (json.dumps({"name": "cart", "port": 1, "data_dir": "/tmp", "host": "10.1.2.3"}), "not loopback"),
])
def test_bad_config(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    proc = run(["--config", str(path)])
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
