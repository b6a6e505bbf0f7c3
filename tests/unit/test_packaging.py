"""`pip install .` installs one import namespace: `kugeldrill` and its subpackages, nothing else,
with the scenario library, the daprd recipe and the entry points (tests/integration/
test_installed_wheel.py installs the wheel and uses it).

The checkout keeps its top-level folders (chaos/, reports/, locustfiles/ are symlinked into
kugeldrill/); a wheel built from it must not put generic names like `stack` or `chaos` into
site-packages, where they would collide with other projects.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_kugeldrill_namespace(built_wheel: Path) -> None:
    wheel = built_wheel
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"kugeldrill", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for module in ("kugeldrill/chaos/timeline.py", "kugeldrill/reports/html.py", "kugeldrill/locustfiles/pos.py",
                   "kugeldrill/stack/embedded/stack.py", "kugeldrill/checkers/breaker.py", "kugeldrill/ground/history.py",
                   "kugeldrill/stack/components/templates/statestore.yaml"):
        assert module in names, module
    # The scenario library and the daprd recipe are package data, each file the checkout's own.
    library = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "scenarios").rglob("*.yaml"))
    assert sorted(n.removeprefix("kugeldrill/") for n in names if n.startswith("kugeldrill/scenarios/")) == library
    wheel_zip = zipfile.ZipFile(wheel)
    assert wheel_zip.read("kugeldrill/ground/build-daprd.sh") == (ROOT / "scripts" / "build-daprd.sh").read_bytes()
    # Installing it registers the command and the pytest plugin.
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel_zip.read(entry_points).decode()
    assert "[console_scripts]\nkugeldrill = kugeldrill.cli:main" in text
    assert "[pytest11]\nkugeldrill = kugeldrill.pytest_plugin" in text
