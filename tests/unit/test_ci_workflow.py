"""The GitHub Actions example is a workflow that runs: actionlint passes on it (with
shellcheck on its scripts where shellcheck is installed), it drills the version of daprd
this checkout pins, and it does what a nightly job needs (the nightly suite, the previous
night's runs as the baseline, JUnit published, the run folders kept)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
NIGHTLY = ROOT / ".github" / "workflows" / "nightly.yml"


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(ROOT / "tools" / "bin")) or shutil.which("actionlint")
    if found:
        return found
    if os.environ.get("CI"):  # set by .ci/run and by GitHub Actions
        pytest.fail("actionlint is not installed: 'make tools/bin/actionlint' installs it with go install")
    pytest.skip("actionlint is not installed ('make tools/bin/actionlint', needs Go)")


def test_actionlint_passes() -> None:
    proc = subprocess.run([_actionlint(), "-no-color", *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _steps() -> list[dict]:
    doc = yaml.safe_load(NIGHTLY.read_text())
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_it_drills_the_daprd_this_checkout_pins() -> None:
    doc = yaml.safe_load(NIGHTLY.read_text())
    script = (ROOT / "scripts" / "build-daprd.sh").read_text()
    pinned = re.search(r"1\.18\)\s*\n\s*VERSION=([0-9.]+)", script).group(1)
    assert doc["env"]["DAPR_VERSION"] == pinned
    go = next(s for s in _steps() if s.get("uses", "").startswith("actions/setup-go"))
    assert go["with"]["go-version"] == "${{ steps.dapr-go.outputs.version }}"  # read from daprd's go.mod


def test_it_runs_the_nightly_suite_against_the_previous_night() -> None:
    runs = "\n".join(s.get("run", "") for s in _steps())
    assert "kugeldrill run --suite nightly" in runs
    assert "gh run download" in runs and "--name kugeldrill-runs --dir baseline" in runs
    assert "kugeldrill compare" in runs and "--json-file" in runs
    uses = {s.get("uses", "").split("@")[0]: s for s in _steps()}
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"] == "runs/**/junit.xml"
    assert uses["actions/upload-artifact"]["with"]["name"] == "kugeldrill-runs"
    cached = [s["with"]["path"] for s in _steps() if s.get("uses", "").startswith("actions/cache")]
    assert "tools/bin" in cached and any("~/go/pkg/mod" in p for p in cached)
