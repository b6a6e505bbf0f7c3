"""A wheel built from this checkout, installed into a fresh venv outside it, is a working tool.

What a team gets from `pip install kugeldrill`: the scenario library as package data, user
files resolved from the working directory, redis-server/toxiproxy-server/daprd found on
PATH (the tools folder is pointed at an empty directory, so nothing comes from the
checkout's tools/ by accident), nothing written next to the installed package, and the
pytest plugin registered by the install alone.

Cost (measured on the shared 2-core machine at load 13): about 60 s in all — the wheel
builds and installs with its dependencies (uv, from its cache, byte-compiled; pip when uv
is missing) in about 9 s, and the drill is the short `baseline` (about 40 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    venv: Path
    work: Path  # an empty working directory outside the checkout
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=cwd or self.work, env=self.env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    @property
    def site_packages(self) -> Path:
        (found,) = (self.venv / "lib").glob("python3*/site-packages")
        return found


def _clean_env(tmp: Path) -> dict[str, str]:
    """The user's environment, without this checkout: its venv off PATH, no PYTHONPATH; the
    external programs on PATH (the checkout's tools/bin stands for a system install); the
    tools folder an empty one."""
    dev_bin = str(Path(sys.executable).parent)
    path = [str(ROOT / "tools" / "bin"), *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != dev_bin)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=os.pathsep.join(path), KUGELDRILL_TOOLS_DIR=str(tmp / "empty-tools"))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Installed:
    tmp = tmp_path_factory.mktemp("installed")
    assert ROOT not in tmp.parents
    wheel = built_wheel
    venv = tmp / "venv"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    subprocess.run([sys.executable, "-m", "venv", *(["--without-pip"] if uv else []), str(venv)], check=True,
                   timeout=120)
    # Byte-compiled at install, as pip does by default: the commands then start fast and
    # nothing is written into site-packages later.
    install = ([uv, "pip", "install", "--compile-bytecode", "--python", str(venv / "bin" / "python"), str(wheel)] if uv
               else [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    work = tmp / "work"
    work.mkdir()
    return Installed(venv, work, _clean_env(tmp))


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    proc = installed.run("python", "-c", "import kugeldrill, kugeldrill.ground.tools as t; "
                                         "print(kugeldrill.__file__); print(t.checkout_root()); print(t.tools_dir())")
    where, checkout, tools = proc.stdout.split()
    assert Path(where).is_relative_to(installed.site_packages), proc.stdout + proc.stderr
    assert checkout == "None" and tools == installed.env["KUGELDRILL_TOOLS_DIR"]


def test_list_shows_the_shipped_library(installed: Installed) -> None:
    proc = installed.run("kugeldrill", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert Path(data["library"]).is_relative_to(installed.site_packages)
    names = {s["name"]: s for s in data["scenarios"]}
    assert names["baseline"]["suite"] == "ci" and names["soak"]["long"] is True
    assert names["sidecar-cut"]["faults"] == ["down sidecar@cart 4–12s"]


USER_SCENARIO = """\
name: mine
load:
  users: {CartUser: 2}
  duration: 20s
faults:
  - {at: 4, for: 8, link: sidecar@kart, kind: down}
  - {at: 15, for: 10, link: redis@cart, kind: latency, params: {latency: 100}}
"""


def test_validate_checks_library_names_and_files_of_the_working_directory(installed: Installed) -> None:
    (installed.work / "mine.yaml").write_text(USER_SCENARIO)
    proc = installed.run("kugeldrill", "validate", "mine.yaml", "sidecar-cut")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mine.yaml:6: field 'faults[0].link': link selector 'sidecar@kart' matches no link" in proc.stdout
    assert "did you mean 'sidecar@cart'?" in proc.stdout
    assert "mine.yaml:7: field 'faults[1].for': the fault ends at 25s but the load ends at 20s" in proc.stdout
    assert "sidecar-cut.yaml: ok" in proc.stdout
    (installed.work / "mine.yaml").write_text(USER_SCENARIO.replace("kart", "cart").replace("for: 10", "for: 4"))
    assert installed.run("kugeldrill", "validate", "mine.yaml").returncode == 0


def test_the_pytest_plugin_is_registered_by_the_install(installed: Installed) -> None:
    (installed.work / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    proc = installed.run("python", "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", "test_nothing.py")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for fixture in ("kugeldrill_toxiproxy", "link_fault", "kugeldrill_drill"):
        assert fixture in proc.stdout, fixture
    (installed.work / "test_nothing.py").unlink()


def test_a_library_drill_runs_from_an_empty_directory(installed: Installed) -> None:
    before = sorted(p.relative_to(installed.site_packages) for p in installed.site_packages.rglob("*"))
    proc = installed.run("kugeldrill", "run", "baseline", "--plain", timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run_dir,) = (installed.work / "runs").glob("*-baseline")
    assert (run_dir / "report.html").is_file() and json.loads((run_dir / "verdict.json").read_text())["verdict"] == "pass"
    sidecar = json.loads((run_dir / "stack.json").read_text())["sidecar"]
    assert sidecar["kind"] == "daprd" and Path(sidecar["binary"]).parent == ROOT / "tools" / "bin"  # from PATH
    after = sorted(p.relative_to(installed.site_packages) for p in installed.site_packages.rglob("*"))
    assert after == before, "the drill wrote next to the installed package"
    assert not Path(installed.env["KUGELDRILL_TOOLS_DIR"]).exists()
