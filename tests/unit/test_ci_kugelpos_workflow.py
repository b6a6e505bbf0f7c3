"""deploy/ci/kugelpos-nightly.yml: valid YAML whose kugeldrill commands parse with today's CLI."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

from kugeldrill.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "ci" / "kugelpos-nightly.yml"


def _commands() -> list[list[str]]:
    """Every `.venv/bin/kugeldrill …` invocation in the workflow's run steps (shell continuations joined)."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["drill"]["steps"]
    out = []
    for step in steps:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            line = line.split("|", 1)[0].split("||", 1)[0].strip()
            if line.startswith(".venv/bin/kugeldrill"):
                words = ["VALUE" if w.startswith("$") else w for w in shlex.split(line, comments=True)]
                out.append([w.replace('"', "") for w in words[1:]])
    return out


def test_the_workflow_checks_out_both_and_publishes_the_suite() -> None:
    data = yaml.safe_load(WORKFLOW.read_text())
    steps = data["jobs"]["drill"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert sum(u.startswith("actions/checkout") for u in uses) == 2
    junit = next(s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report"))
    assert junit["with"]["report_paths"].endswith("runs/kugelpos/suite-junit.xml") and junit["if"] == "always()"
    assert any(s.get("uses", "").startswith("actions/upload-artifact") and s["if"] == "always()" for s in steps)


def test_every_kugeldrill_command_of_the_workflow_parses() -> None:
    commands = _commands()
    assert any(c[:2] == ["kugelpos", "drill"] for c in commands)
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert callable(args.func), argv


def test_actionlint_passes_on_the_kugelpos_workflow() -> None:
    from test_ci_workflow import _actionlint

    proc = subprocess.run([_actionlint(), "-no-color", str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
