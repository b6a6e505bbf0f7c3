"""`pip install .` installs one import namespace: `kugeldrill` and its subpackages, nothing else.

The checkout keeps its top-level folders (chaos/, reports/, locustfiles/ are symlinked into
kugeldrill/); a wheel built from it must not put generic names like `stack` or `chaos` into
site-packages, where they would collide with other projects.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_kugeldrill_namespace(tmp_path: Path) -> None:
    build_dir = ROOT / "build"
    had_build_dir = build_dir.exists()
    try:
        _check_wheel(tmp_path)
    finally:
        if not had_build_dir:  # setuptools builds in the checkout; leave it as it was
            shutil.rmtree(build_dir, ignore_errors=True)


def _check_wheel(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("kugeldrill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"kugeldrill", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for module in ("kugeldrill/chaos/timeline.py", "kugeldrill/reports/html.py", "kugeldrill/locustfiles/pos.py",
                   "kugeldrill/stack/embedded/stack.py", "kugeldrill/checkers/breaker.py", "kugeldrill/ground/history.py",
                   "kugeldrill/stack/components/templates/statestore.yaml"):
        assert module in names, module
