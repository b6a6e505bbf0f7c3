"""Each defect switch of the stand-in, caught by its checker in a real drill (issue 6).

A drill is run as the user runs it (`python -m kugeldrill run SCENARIO --out DIR`, a
subprocess: stand-in, Toxiproxy, Locust, timeline, checkers, reports). For every defect
scenario in scenarios/defects/ the drill must fail (exit 1), the matching checker's JUnit
testcase must carry a failure, and verdict.json must hold that checker's result with
`valid: false`, the expected failure kind and examples naming the defect's evidence (the
subscriber that missed events, the service whose breaker misbehaved).

The same scenario with the defect switched off (the loaded YAML minus `stack.defects`,
written to a temporary file) must pass (exit 0) — so the checker failed because of the
defect, not because of the fault or the load. CI time: one drill takes 25–45 s on a
2-core machine and they run one after another (each starts a whole stand-in; two side by
side starve each other's subscribers), so fourteen do not fit in the module's 6-minute
budget (ten measured at 4 min 53 s alone). The healthy counterparts run here only where
no library scenario runs that form already:

* subscriber-array-body, breaker-cumulative-failures, mark-before-effect — run here;
* shared-consumer-id (no fault) — `baseline`;
* stock-no-idempotency (app@journal down 8 s, strict duplicates) — `subscriber-down`;
* breaker-per-request and breaker-unlimited-half-open (sidecar@cart down 8 s, full
  breaker cycle) — `sidecar-cut`;

those library scenarios are part of `kugeldrill run --suite ci` (`make drill`).

mark_before_effect is also caught without the crash knob, by process faults alone: the
library scenario subscriber-crash (subscribers SIGKILLed repeatedly under load) with the
defect switched on; its healthy form is tests/integration/test_process_drills.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFECTS = ROOT / "scenarios" / "defects"
DRILL_TIMEOUT = 240  # seconds; a drill is 25-45 s alone, more on a loaded machine

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Pair:
    """A defect scenario and what its checker must say about it."""

    scenario: str  # file stem in scenarios/defects/
    checker: str  # breaker | duplicates | fanout
    kind: str  # the failure kind in the checker's examples
    evidence: dict[str, Any]  # fields every example of that kind must have (the defect's fingerprint)
    healthy_here: bool  # run the healthy counterpart in this module (else: library scenario, see docstring)

    def __str__(self) -> str:
        return self.scenario


PAIRS = [
    Pair("shared-consumer-id", "fanout", "missing", {}, healthy_here=False),
    # Stock answers proper JSON responses (as in Kugelpos): only report and journal lose events.
    Pair("subscriber-array-body", "fanout", "missing", {"subscriber": ("report", "journal")}, healthy_here=True),
    Pair("stock-no-idempotency", "duplicates", "duplicate",
         {"subscriber": ("stock",), "dedup_disabled": (True,)}, healthy_here=False),
    Pair("breaker-per-request", "breaker", "not_opened", {"service": ("cart",)}, healthy_here=False),
    Pair("breaker-cumulative-failures", "breaker", "opened_without_failures", {"service": ("cart",)},
         healthy_here=True),
    Pair("breaker-unlimited-half-open", "breaker", "half_open_extra_trials", {"service": ("cart",)},
         healthy_here=False),
    Pair("mark-before-effect", "fanout", "missing", {}, healthy_here=True),
]


def run_drill(scenario: Path, out: Path) -> tuple[int, str]:
    """`kugeldrill run` as a subprocess; (exit code, output tail)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "kugeldrill", "run", str(scenario), "--out", str(out), "--plain"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=DRILL_TIMEOUT)
    return proc.returncode, proc.stdout[-4000:]


def healthy_variant(pair: Pair, dest: Path) -> Path:
    """The defect scenario with its defect switched off, everything else as in the file."""
    data = yaml.safe_load((DEFECTS / f"{pair.scenario}.yaml").read_text())
    assert data["stack"].pop("defects"), f"{pair.scenario}.yaml switches on no defect"
    data["name"] = "healthy-" + pair.scenario
    path = dest / f"healthy-{pair.scenario}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def checker_result(out: Path, name: str) -> dict[str, Any]:
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["status"] == "completed", verdict.get("error")
    found = [c for c in verdict["checks"] if c["checker"] == name]
    assert len(found) == 1, [c["checker"] for c in verdict["checks"]]
    return found[0]


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_defect_is_caught_by_its_checker(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, tail = run_drill(DEFECTS / f"{pair.scenario}.yaml", out)
    assert code == 1, tail
    case = ET.parse(out / "junit.xml").getroot().find(f".//testcase[@name='{pair.checker}.check']")
    assert case is not None and case.find("failure") is not None, tail
    result = checker_result(out, pair.checker)
    assert result["valid"] is False, result["summary"]
    examples = result["examples"].get(pair.kind) or []
    assert examples, f"no '{pair.kind}' examples: {sorted(result['examples'])} — {result['summary']}"
    for field, allowed in pair.evidence.items():
        assert {ex.get(field) for ex in examples} <= set(allowed), (field, examples[:3])
    if pair.checker == "breaker":
        assert result["counts"]["violations"].get(pair.kind, 0) >= 1, result["counts"]


#: Expectations that bound the drill's pace rather than judge its outcome (ExpectationResult.checker).
PACE_BOUNDS = {"load", "convergence"}


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.healthy_here], ids=str)
def test_same_drill_passes_without_the_defect(pair: Pair, tmp_path: Path) -> None:
    """The defect's own checker and every other checker pass without the defect. The drill's
    pace bounds (how soon it settled, latency, error rates under load) are what a loaded test
    machine moves, not what this test is about: it requires the drill to have settled
    (converged, deliveries complete) but does not let the machine's pace decide it; `make
    mutants` runs the same healthy drills with every bound."""
    out = tmp_path / "run"
    code, tail = run_drill(healthy_variant(pair, tmp_path), out)
    result = checker_result(out, pair.checker)
    verdict = json.loads((out / "verdict.json").read_text())
    judged = [e for e in verdict["expectations"] if e["checker"] not in PACE_BOUNDS]
    failed = [f"{e['name']}: {e['observed']}" for e in judged if e["passed"] is not True]
    assert code in (0, 1) and not failed, f"{result['summary']}\n{failed}\n{tail}"
    assert verdict["converged"] is True, f"the drill never settled\n{tail}"
    assert not verdict["unhealed"], verdict["unhealed"]
    if code == 1:  # only a pace bound failed: say so in the test's output
        print("pace bounds missed:", [e["name"] for e in verdict["expectations"] if e["passed"] is not True])
    assert result["valid"] is True and not result["examples"].get(pair.kind)


def test_mark_before_effect_is_caught_by_subscriber_crash_alone(tmp_path: Path) -> None:
    """Real kills on the timeline, no crash knob: a kill between the early mark and the effect
    loses the event, and the fan-out checker names the subscriber that never applied it."""
    data = yaml.safe_load((ROOT / "scenarios" / "subscriber-crash.yaml").read_text())
    assert not data["stack"].get("crash_before_effect_every") and not data["stack"].get("defects")
    assert [f["kind"] for f in data["faults"]] == ["kill"]
    data["name"] = "subscriber-crash-mark-before-effect"
    data["stack"]["defects"] = ["mark_before_effect"]
    scenario = tmp_path / "subscriber-crash-mark-before-effect.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "run"
    code, tail = run_drill(scenario, out)
    assert code == 1, tail
    result = checker_result(out, "fanout")
    assert result["valid"] is False, result["summary"]
    missing = result["examples"].get("missing") or []
    assert missing and {ex["subscriber"] for ex in missing} <= {"report", "journal", "stock"}, result["examples"]
    verdict = json.loads((out / "verdict.json").read_text())
    lost = sum(p["recovery"]["lost"] for p in verdict["process_faults"])
    assert lost >= 1, verdict["process_faults"]  # lost at a kill, never applied afterwards
