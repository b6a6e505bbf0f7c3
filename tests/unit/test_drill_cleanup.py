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
