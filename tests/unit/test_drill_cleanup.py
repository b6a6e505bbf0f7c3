"""The drill's cleanup contract with fake parts: whatever fails, faults are healed, the
environment is torn down, and a report of what was gathered is written."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from kugeldrill.checkers.params import BreakerParams
from kugeldrill.checkers.pending import RepublishPolicy

import kugeldrill.drill.run as drill_mod
from kugeldrill.drill import DrillOptions, run_drill
from kugeldrill.ground.errors import DrillError, TargetUnreachableError
from kugeldrill.scenario import parse_scenario_text
from kugeldrill.reports.console import Console

SCENARIO = """\
name: fake
load: {users: {CartUser: 1}, duration: 5}
"""


class FakeEnv:
    kind = "embedded"
    description = "fake"
    allow_hosts: tuple[str, ...] = ()
    redis_url = None

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.notes: list[str] = []

    def service_urls(self) -> dict[str, str]:
        return {"cart": "http://127.0.0.1:1"}

    def toxiproxy_api(self) -> None:
        return None

    def link_map(self) -> Any:
        return None

    def events_files(self) -> dict[str, Path]:
        return {}

    def outbox_probe(self) -> None:
        return None

    def check_inputs(self, run_dir: Path) -> Any:
        return None

    def breaker_params(self) -> BreakerParams:
        return BreakerParams()

    def republish_policy(self) -> RepublishPolicy:
        return RepublishPolicy()

    def save_into(self, run_dir: Path) -> None:
        self.calls.append("save")
        (run_dir / "stack.json").write_text("{}")

    def heal_parts(self, process_targets: list[str]) -> list[Any]:
        self.calls.append("heal")
        return []

    def teardown(self) -> None:
        self.calls.append("teardown")


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> FakeEnv:
    env = FakeEnv()
    monkeypatch.setattr(drill_mod, "open_environment", lambda *a, **k: env)
    monkeypatch.setattr(drill_mod.Drill, "_provision", lambda self, env: None)
    return env


def _run(tmp_path: Path) -> Any:
    loaded = parse_scenario_text(SCENARIO, str(tmp_path / "fake.yaml"))
    return run_drill(loaded, tmp_path, DrillOptions(console=Console(live=False)))


def test_error_in_load_phase_still_heals_tears_down_and_reports(tmp_path: Path, fake_env: FakeEnv,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise TargetUnreachableError("cart at http://127.0.0.1:1 refused the connection")

    monkeypatch.setattr(drill_mod, "start_locust", boom)
    summary = _run(tmp_path)
    assert summary.status == "error" and summary.exit_code == 2
    assert "phase 'load'" in summary.error and "refused" in summary.error
    assert "heal" in fake_env.calls and "teardown" in fake_env.calls
    assert fake_env.calls.index("heal") < fake_env.calls.index("teardown")
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["verdict"] == "error" and (tmp_path / "report.html").exists() and (tmp_path / "junit.xml").exists()
    assert (tmp_path / "scenario.yaml").read_text().endswith(SCENARIO)


def test_sigint_becomes_interrupted_with_cleanup(tmp_path: Path, fake_env: FakeEnv,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*a: Any, **k: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(drill_mod, "start_locust", interrupt)
    previous = signal.getsignal(signal.SIGINT)
    summary = _run(tmp_path)
    assert summary.status == "interrupted" and summary.exit_code == 130
    assert "SIGINT" in summary.error and "phase 'load'" in summary.error
    assert "teardown" in fake_env.calls
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored
    assert json.loads((tmp_path / "verdict.json").read_text())["status"] == "interrupted"


def test_internal_bug_is_reported_not_raised(tmp_path: Path, fake_env: FakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drill_mod, "start_locust", lambda *a, **k: 1 / 0)
    summary = _run(tmp_path)
    assert summary.status == "error" and "ZeroDivisionError" in summary.error
    assert "teardown" in fake_env.calls and (tmp_path / "report.html").exists()


def test_environment_failure_is_exit_2_with_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a: Any, **k: Any) -> None:
        raise DrillError("redis-server not found on PATH")

    monkeypatch.setattr(drill_mod, "open_environment", fail)
    summary = _run(tmp_path)
    assert summary.exit_code == 2 and "redis-server not found" in summary.error
    assert (tmp_path / "junit.xml").exists()


class StillPaused:
    """A heal part whose process stays paused (its resume command fails), as a target's may."""

    name = "processes"

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.heals = 0

    def heal(self) -> list[str]:
        self.heals += 1
        return []

    def leftovers(self) -> list[str]:
        return ["process redis is not running (or paused) according to its 'running' command"]


def test_what_the_heal_leaves_reaches_the_verdict(tmp_path: Path, fake_env: FakeEnv,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's leftovers are in verdict.json, the report, JUnit and the console lines,
    whether or not the run got to its own heal phase (here it is interrupted during the load)."""
    from kugeldrill.reports.console import failure_lines

    part = StillPaused()
    monkeypatch.setattr(fake_env, "heal_parts", lambda targets: [part])

    def interrupt(*a: Any, **k: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(drill_mod, "start_locust", interrupt)
    summary = _run(tmp_path)
    assert summary.status == "interrupted" and part.heals == 1
    assert summary.unhealed == ["process redis is not running (or paused) according to its 'running' command"]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["unhealed"] == summary.unhealed and verdict["verdict"] == "interrupted"
    assert "Not healed" in (tmp_path / "report.html").read_text()
    assert 'name="drill.healed"' in (tmp_path / "junit.xml").read_text()
    assert failure_lines(summary)[0].startswith("  NOT HEALED process redis")


def test_a_completed_drill_with_a_fault_left_never_passes() -> None:
    from kugeldrill.reports.summary import ExpectationResult, RunSummary

    s = RunSummary(scenario="x", expectations=[ExpectationResult("load.min_requests", "load", True, "≥ 1", "9")])
    assert s.verdict == "pass"
    s.unhealed = ["proxy kugeldrill.redis@cart disabled"]
    assert s.verdict == "fail" and s.exit_code == 1
