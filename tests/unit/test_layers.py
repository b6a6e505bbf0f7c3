"""The layering contracts of pyproject.toml ([tool.importlinter]) hold: the house reads top-down.

Run through import-linter's own entry point, so a new import from a lower room to a higher
one (or of a bare top-level folder name) fails `make test` with import-linter's report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout and "kept" in proc.stdout


def test_the_ground_floor_is_the_lowest_layer() -> None:
    """The contract itself names the ground last (a contract edited away would pass anything)."""
    text = (ROOT / "pyproject.toml").read_text()
    layers = text[text.index("layers = ["):]
    layers = layers[: layers.index("]")]
    names = [line.strip().strip('",') for line in layers.splitlines()[1:] if line.strip()]
    assert names[0] == "kugeldrill.cli" and names[-1] == "kugeldrill.ground"
    assert "kugeldrill.chaos | kugeldrill.stack | kugeldrill.locustfiles" in names
