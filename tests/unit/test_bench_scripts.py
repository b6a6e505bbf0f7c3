"""Every bench script still starts: its imports resolve and its options parse (`--help`).

The benches run as `make` targets, not in `make test`, so a rename elsewhere in the tree
(a parser moved, a module split) would otherwise break one silently until someone runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The runnable scripts (a bench may also ship a module others load, e.g. a Locust listener).
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


def test_there_are_bench_scripts() -> None:
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_starts(script: Path) -> None:
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "usage:" in proc.stdout
