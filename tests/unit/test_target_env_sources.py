"""TargetEnvironment reads only the target file's sources, and judges its declared breaker.

No deployment is needed: the log command is a real subprocess printing compose-style
lines, the log files are real files, and the checks below look at what reaches the
checkers (records, provenance, BreakerParams).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kugeldrill.deploy.from_stack import max_call_seconds, target_from_stack
from kugeldrill.drill.checks import build_params
from kugeldrill.drill.env import TargetEnvironment
from kugeldrill.ground.errors import ConfigError
from kugeldrill.scenario import parse_scenario_text
from kugeldrill.target import dump_target, load_target

H = "kugel_common.utils.dapr_client_helper"
SCENARIO = parse_scenario_text("name: t\nload: {users: {CartUser: 1}, duration: 5}\n", "t.yaml").scenario


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text("name: t\nservices: {cart: 'http://127.0.0.1:1'}\n" + body)
    return path


def test_kugelpos_breaker_reaches_the_checker_params(tmp_path: Path) -> None:
    target = load_target(_write(tmp_path, "breaker: {threshold: 3, reset_seconds: 61, half_open: unlimited, "
                                          "failures: cumulative, max_call_seconds: 93}\n"))
    bp = build_params(SCENARIO, TargetEnvironment(target).breaker_params()).breaker
    assert (bp.threshold, bp.reset_seconds, bp.half_open_max_calls, bp.mode) == (3, 61.0, None, "cumulative")


def test_single_and_counted_half_open_trials(tmp_path: Path) -> None:
    single = load_target(_write(tmp_path, "breaker: {half_open: single}\n"))
    assert build_params(SCENARIO, TargetEnvironment(single).breaker_params()).breaker.half_open_max_calls == 1
    assert build_params(SCENARIO, TargetEnvironment(single).breaker_params()).breaker.mode == "consecutive"
    two = load_target(_write(tmp_path, "breaker: {half_open: 2}\n"))
    assert build_params(SCENARIO, TargetEnvironment(two).breaker_params()).breaker.half_open_max_calls == 2
    with pytest.raises(ConfigError, match="half_open"):
        load_target(_write(tmp_path, "breaker: {half_open: 0}\n"))


def test_from_stack_round_trips_and_declares_the_stand_in_breaker(tmp_path: Path) -> None:
    cfg = tmp_path / "cart.json"
    cfg.write_text(json.dumps({"dapr_url": "http://127.0.0.1:2/v1.0", "dapr_timeout_seconds": 2.0,
                               "dapr_max_attempts": 2}))
    state = {"redis": {"url": "redis://127.0.0.1:6399/0"}, "toxiproxy": {"api": "http://127.0.0.1:8474"},
             "services": {"cart": {"url": "http://127.0.0.1:3", "log": "/x/cart.log", "config": str(cfg)}},
             "links": {"sidecar@cart": {"listen": "127.0.0.1:4", "upstream": "127.0.0.1:5"}},
             "options": {"breaker": {"threshold": 4, "reset_seconds": 3.0, "half_open_max_calls": 2},
                         "defects": ["breaker_cumulative_failures", "shared_consumer_id"]}}
    assert max_call_seconds(state) == 4.1  # 2 attempts x 2 s + one 0.1 s backoff
    path = tmp_path / "derived.yaml"
    path.write_text(dump_target(target_from_stack(state)))
    target = load_target(path)
    assert target.observe.logs.files == {"cart": "/x/cart.log"} and target.observe.redis_url.endswith(":6399/0")
    assert target.toxiproxy is not None and target.toxiproxy.manage_links == "existing"
    b = target.breaker
    assert (b.threshold, b.reset_seconds, b.half_open, b.failures, b.max_call_seconds) == (4, 3.0, 2, "cumulative", 4.1)


def test_log_command_output_and_files_are_copied_and_parsed(tmp_path: Path) -> None:
    """Compose-style command output names the service by prefix; file logs by their app."""
    lines = [
        f"report-1  | 2099-01-01T00:00:00.5Z 2099-01-01 00:00:00,500 [INFO] app.api.v1.tran: tranlog received "
        "successfully. event_id: e1, tranlog: {'tenant_id': 'T1', 'store_code': 'S', 'terminal_no': 1, "
        "'transaction_no': 7}",
        f"journal-1  | 2099-01-01 00:00:00,600 [INFO] app.api.v1.tran: tranlog received successfully. "
        "event_id: e1, tranlog: {'tenant_id': 'T1', 'store_code': 'S', 'terminal_no': 1, 'transaction_no': 7}",
    ]
    script = tmp_path / "logs.py"
    script.write_text("import sys\nprint(%r)\nprint('a warning', file=sys.stderr)\n" % "\n".join(lines))
    cart_log = tmp_path / "cart-live.log"
    cart_log.write_text(f"2099-01-01 00:00:01,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures\n"
                        f"2099-01-01 00:00:01,001 [ERROR] {H}: Failed to publish event to topic-tranlog: x\n")
    path = _write(tmp_path, f"observe:\n  logs:\n    files: {{cart: {cart_log}}}\n"
                            f"    command: [{sys.executable}, logs.py]\n    cwd: .\n    command_timeout_seconds: 30\n")
    env = TargetEnvironment(load_target(path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    inputs = env.check_inputs(run_dir)

    assert (run_dir / "logs" / "target.log").read_text().splitlines() == lines
    assert (run_dir / "logs" / "target.stderr.log").read_text().strip() == "a warning"
    assert (run_dir / "logs" / "cart.log").read_text() == cart_log.read_text()
    assert sorted((a.subscriber, a.event_id) for a in inputs.applications) == [("journal", "e1"), ("report", "e1")]
    assert [(t.service, t.to_state) for t in inputs.breaker_transitions] == [("cart", "OPEN")]
    source = inputs.provenance()["sources"]["applications"]
    assert str(run_dir / "logs" / "target.log") in source and str(cart_log) not in source
    assert "events" not in json.dumps(inputs.provenance()["sources"])


def test_failing_log_command_is_a_note_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path, f"observe:\n  logs:\n    command: [{sys.executable}, -c, 'import sys; sys.exit(3)']\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    inputs = TargetEnvironment(load_target(path)).check_inputs(run_dir)
    assert any("exited 3" in n for n in inputs.notes)
    assert "applications" in inputs.missing


def test_run_target_option_points_the_scenario_at_the_file(tmp_path: Path) -> None:
    text = "name: t\nload: {users: {CartUser: 1}, duration: 5}\n"
    path = _write(tmp_path, "")
    moved = parse_scenario_text(text, str(tmp_path / "t.yaml"), target=path)
    assert moved.scenario.target == str(path.resolve()) and moved.target_path == path
    assert parse_scenario_text(text, str(tmp_path / "t.yaml")).scenario.target == "embedded"
    with pytest.raises(ConfigError, match="target file does not exist"):
        parse_scenario_text(text, str(tmp_path / "t.yaml"), target=tmp_path / "missing.yaml")
