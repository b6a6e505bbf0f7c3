"""A drill against a target file pointing at a running stand-in, as if it were external.

Issue 8's last "Done when": the stand-in is started on its own (as a deployment someone
else runs), `kugeldrill target from-stack` writes its target file, and `kugeldrill run`
drills it through that file as a user would (a subprocess). The verdict must rest only on
the target's observation sources: Kugelpos-format log lines (copied into the run folder)
and Redis, never the stand-in's structured events. A stand-in with a fan-out defect, seen
through the same kind of target file, must fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from kugeldrill.ground.gzfiles import open_stored
from stackutil import running_stack

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "fixtures" / "target" / "sidecar-cut-target.yaml"
pytestmark = [pytest.mark.integration, pytest.mark.slow]
LOG_FIELDS = ("breaker_transitions", "breaker_calls", "applications", "duplicate_skips")


def _kugeldrill(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)


def _drill_through_target(tmp: Path, *, defects: list[str], via_option: bool,
                          republish: float = 2.0) -> tuple[int, Path, str]:
    """Start a stand-in, derive its target file with the CLI, drill it; returns (exit, run dir, output)."""
    with running_stack(tmp / "deployment", breaker_reset_seconds=3.0, republish_interval_seconds=republish,
                       defects=defects) as stack:
        target = tmp / "drill" / "target.yaml"
        target.parent.mkdir(parents=True)
        derived = _kugeldrill("target", "from-stack", "--state-dir", str(stack.state_path),
                              "--target-file", str(target), timeout=60)
        assert derived.returncode == 0, derived.stdout
        scenario = target.parent / SCENARIO.name  # its `target: target.yaml` is relative to it
        shutil.copyfile(SCENARIO, scenario)
        run_dir = tmp / "run"
        extra = ["--target", str(target)] if via_option else []
        proc = _kugeldrill("run", str(scenario), *extra, "--out", str(run_dir), "--plain", timeout=150)
        # The drill never stops what it did not start.
        assert all(psutil.pid_exists(svc["pid"]) for svc in stack.state["services"].values())
    return proc.returncode, run_dir, proc.stdout


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    return _drill_through_target(tmp_path_factory.mktemp("healthy"), defects=[], via_option=False)


def _verdict(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "verdict.json").read_text())


def _checks(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["checker"]: c for c in verdict["checks"]}


def test_target_drill_passes(healthy_run: tuple[int, Path, str]) -> None:
    code, run_dir, out = healthy_run
    verdict = _verdict(run_dir)
    assert code == 0, out + json.dumps(verdict.get("expectations"), indent=1)[:4000]
    assert verdict["target"].startswith("target embedded-as-external")
    assert {name: c["valid"] for name, c in _checks(verdict).items()} == {
        "breaker": True, "duplicates": True, "fanout": True, "outcomes": True}


def test_checkers_read_only_the_target_sources(healthy_run: tuple[int, Path, str]) -> None:
    _, run_dir, _ = healthy_run
    assert (run_dir / "target.yaml").is_file() and not (run_dir / "stack.json").exists()
    assert not (run_dir / "events").exists()
    logs = run_dir / "logs"
    for name, check in _checks(_verdict(run_dir)).items():
        sources = check["details"]["provenance"]["sources"]
        if name == "outcomes":  # report, journal and stock through their public APIs
            assert sources["business"].startswith("report, journal and stock APIs"), sources
            continue
        assert not any("/events/" in str(v) or "diagnostics" in str(v) for v in sources.values()), (name, sources)
        for field in LOG_FIELDS:
            assert sources[field].startswith("Kugelpos logs: "), (name, field, sources[field])
            paths = sources[field].removeprefix("Kugelpos logs: ").split(", ")
            assert all(Path(p).parent == logs for p in paths), paths
        assert sources["markers"].startswith("Redis "), sources
    # The copies are what was judged: cart's log holds the breaker's own wording.
    with open_stored(logs / "cart.log", "rt") as fh:  # gzipped after the drill
        assert "Circuit breaker OPEN after 3 failures" in fh.read()


def test_breaker_cycle_found_in_the_logs(healthy_run: tuple[int, Path, str]) -> None:
    _, run_dir, _ = healthy_run
    verdict = _verdict(run_dir)
    cart = [(t["from_state"], t["to_state"]) for t in verdict["breaker_transitions"]
            if t["service"] == "cart" and t["breaker"] == "dapr"]
    assert cart[0] == ("CLOSED", "OPEN") and cart[-1] == ("HALF_OPEN", "CLOSED"), cart
    assert all(t["reason"].startswith("Circuit breaker") for t in verdict["breaker_transitions"])
    breaker = _checks(verdict)["breaker"]
    assert breaker["counts"]["opens"] >= 1 and breaker["counts"]["rejected"] > 0
    assert breaker["details"]["params"]["reset_seconds"] == 3.0  # the target file's breaker
    fanout = _checks(verdict)["fanout"]["counts"]["totals"]
    assert fanout["expected"] > 0 and fanout["once"] == fanout["expected"]


def test_report_rerenders_from_the_run_folder(healthy_run: tuple[int, Path, str]) -> None:
    _, run_dir, _ = healthy_run
    (run_dir / "report.html").unlink()
    proc = _kugeldrill("report", str(run_dir), timeout=60)
    assert proc.returncode == 0, proc.stdout
    html = (run_dir / "report.html").read_text()
    assert "target-sidecar-cut" in html and "sidecar@cart" in html


def test_shared_consumer_id_through_a_target_fails(tmp_path: Path) -> None:
    """Subscribers sharing a consumerID compete for deliveries: the logs show each tranlog
    applied by one subscriber, and fan-out fails (exit 1).

    The publisher republishes every 5 minutes (as Kugelpos): a republish sends an event to the
    shared group again, where another subscriber may take it, so a 2 s republish job fans
    everything out in the end — within the drill on real daprd, whose deliveries are quick —
    and hides the defect from fan-out. What is judged here is the delivery itself."""
    code, run_dir, out = _drill_through_target(tmp_path, defects=["shared_consumer_id"], via_option=True,
                                               republish=300.0)
    verdict = _verdict(run_dir)
    assert code == 1, out
    fanout = _checks(verdict)["fanout"]
    assert fanout["valid"] is False, fanout["summary"]
    assert fanout["counts"]["totals"]["missing"] > 0
    assert fanout["details"]["provenance"]["sources"]["applications"].startswith("Kugelpos logs: ")
    failed = [e["name"] for e in verdict["expectations"] if not e["passed"]]
    assert "fanout.check" in failed, failed


def test_a_target_republishing_every_five_minutes_is_not_a_false_alarm(tmp_path: Path) -> None:
    """Kugelpos republishes a failed publish only every 5 minutes: after the sidecar cut, the events
    cart could not publish are still owed when the drill judges. Pending, not missing: the drill
    ends pass or unknown with the republish as the reason — never FAIL — and convergence is
    reported from what was observed (stream groups only), not as a quiet 0.0 s."""
    code, run_dir, out = _drill_through_target(tmp_path, defects=[], via_option=True, republish=300.0)
    verdict = _verdict(run_dir)
    exps = verdict["expectations"]
    assert not [e for e in exps if e["passed"] is False], out + json.dumps(exps, indent=1)[:4000]
    unknown = [e for e in exps if e["passed"] is None]
    assert code == (1 if unknown else 0), out
    assert all("republish" in (e["observed"] + json.dumps(e["evidence"])) for e in unknown), unknown
    fanout = _checks(verdict)["fanout"]
    assert fanout["counts"]["totals"]["missing"] == 0
    if fanout["valid"] is None:
        assert fanout["counts"]["totals"]["pending_republish"] > 0 and "republish" in fanout["summary"]
    conv = next(e for e in exps if e["name"] == "convergence.max_seconds")
    assert conv["passed"] is None or "outboxes were not read" in conv["observed"], conv
    assert verdict["pending_republish"] or conv["passed"] is True
    if verdict["pending_republish"]:  # deliveries still owed: not converged, whatever the streams say
        assert verdict["convergence_seconds"] is None and verdict["converged"] is None, verdict["convergence_seconds"]
