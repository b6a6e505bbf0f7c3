"""Scenario files: the library validates, and bad files get errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kugeldrill.ground.errors import ConfigError
from kugeldrill.scenario import SCENARIO_DIR, load_scenario, parse_scenario_text, suite

GOOD = """\
name: t
load:
  users: {CartUser: 2}
  duration: 20s
faults:
  - {at: 5, for: 5, link: redis@cart, kind: down}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_scenario_text(text, "drill.yaml")
    return str(info.value)


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")) + sorted(SCENARIO_DIR.glob("defects/*.yaml")),
                         ids=lambda p: p.stem)
def test_library_scenarios_validate(path: Path) -> None:
    sc = load_scenario(path).scenario
    assert sc.load.total_seconds > 0
    if not sc.long:
        assert sc.load.total_seconds <= 45, "CI scenarios keep load at or under 45 s"


def test_defect_scenarios_each_switch_one_defect() -> None:
    for path in sorted(SCENARIO_DIR.glob("defects/*.yaml")):
        assert len(load_scenario(path).scenario.stack.defects) == 1, path


def test_ci_suite_is_short_and_excludes_long() -> None:
    names = [p.stem for p in suite("ci")]
    assert "baseline" in names and "soak" not in names
    total = sum(load_scenario(p).scenario.load.total_seconds for p in suite("ci"))
    assert total <= 200


def test_good_text_parses_with_durations() -> None:
    sc = parse_scenario_text(GOOD).scenario
    assert sc.load.duration == 20.0 and sc.faults[0].duration == 5.0 and sc.target == "embedded"


def test_unknown_field_names_line_and_field() -> None:
    msg = _error(GOOD + "stack:\n  breaker:\n    treshold: 3\n")
    assert "drill.yaml:9:" in msg and "stack.breaker.treshold" in msg and "unknown field" in msg


def test_wrong_type_names_line_and_expectation() -> None:
    msg = _error(GOOD.replace("CartUser: 2", "CartUser: many"))
    assert "drill.yaml:3:" in msg and "load.users.CartUser" in msg and "integer" in msg


def test_unknown_user_class_and_defect() -> None:
    assert "unknown user class 'Robot'" in _error(GOOD.replace("CartUser", "Robot"))
    msg = _error(GOOD + "stack:\n  defects: [no_such_defect]\n")
    assert "drill.yaml:8:" in msg and "no_such_defect" in msg


def test_missing_required_field() -> None:
    msg = _error("name: t\nload:\n  users: {CartUser: 1}\n")
    assert "drill.yaml:2:" in msg and "give either 'duration' or 'stages'" in msg
    msg = _error("load:\n  users: {CartUser: 1}\n  duration: 5\n")
    assert "field 'name'" in msg and "required" in msg


def test_fault_past_end_of_load_names_its_line() -> None:
    msg = _error(GOOD.replace("for: 5", "for: 30"))
    assert "drill.yaml:6:" in msg and "faults[0].for" in msg and "ends at 35s" in msg


def test_fault_params_checked_by_chaos_vocabulary() -> None:
    text = GOOD.replace("kind: down}", "kind: latency, params: {latncy: 5}}")
    msg = _error(text)
    assert "drill.yaml:6:" in msg and "latncy" in msg and "latency" in msg
    assert "not a fault kind" in _error(GOOD.replace("kind: down", "kind: explode"))


def test_link_selector_shape() -> None:
    assert "<kind>@<app>" in _error(GOOD.replace("redis@cart", "redis"))


def test_duplicate_key_and_bad_yaml() -> None:
    msg = _error("name: a\nname: b\nload: {users: {CartUser: 1}, duration: 5}\n")
    assert "drill.yaml:2: field 'name': duplicate key (first given on line 1)" in msg
    msg = _error("name: a\nload: [1, 2\n")
    assert "not valid YAML" in msg and "drill.yaml:" in msg
    assert "must be a YAML mapping" in _error("- 1\n- 2\n")


def test_breaker_sequence_rules() -> None:
    text = GOOD + "expect:\n  breaker:\n    sequences:\n      - {service: cart, states: [CLOSED, CLOSED]}\n"
    assert "cannot follow itself" in _error(text)
    assert "unknown service 'kart'" in _error(text.replace("service: cart", "service: kart"))


def test_every_problem_is_reported_in_line_order() -> None:
    text = GOOD.replace("CartUser: 2", "CartUser: -1") + "bogus: 1\n"
    msg = _error(text)
    lines = [line for line in msg.splitlines() if not line.startswith("    hint:")]
    assert lines[0].startswith("scenario file drill.yaml is invalid")
    assert [line.split(":")[1] for line in lines[1:]] == ["3", "7"], lines
    # schema problems and the checks across fields come together, not one per run
    text = GOOD.replace("for: 5", "for: 30").replace("redis@cart", "redis@kart") + "stack: {breaker: {treshold: 3}}\n"
    msg = _error(text)
    assert "drill.yaml:7: field 'stack.breaker.treshold'" in msg and "did you mean 'threshold'?" in msg


def test_missing_file_lists_library() -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario("no-such-scenario")
    assert "not found" in str(info.value) and "baseline" in (info.value.hint or "")


def test_durations_in_a_scenario_use_the_one_parser() -> None:
    loaded = parse_scenario_text(GOOD.replace("duration: 20s", "duration: 1m30s").replace("at: 5,", "at: 1m,"))
    assert loaded.scenario.load.duration == 90.0 and loaded.scenario.faults[0].at == 60.0
    msg = _error(GOOD.replace("duration: 20s", "duration: soon"))
    assert "field 'load.duration'" in msg and "1m30s" in msg


def test_target_must_be_embedded_or_an_existing_file(tmp_path: Path) -> None:
    msg = _error("target: targets/nope.yaml\n" + GOOD)
    assert "drill.yaml:1:" in msg and "field 'target'" in msg and "does not exist" in msg
    (tmp_path / "t.yaml").write_text("name: t\nservices: {cart: 'http://127.0.0.1:1'}\n")
    loaded = parse_scenario_text(f"target: {tmp_path / 't.yaml'}\n" + GOOD.split("faults:")[0])
    assert loaded.scenario.target.endswith("t.yaml") and loaded.target_path == tmp_path / "t.yaml"
    # the target file is checked with the scenario, each problem at its own file and line
    (tmp_path / "t.yaml").write_text("name: t\nservices: {kart: 'http://127.0.0.1:1'}\n")
    msg = _error(f"target: {tmp_path / 't.yaml'}\n" + GOOD)
    assert f"{tmp_path / 't.yaml'}:2: field 'services.kart'" in msg


def test_load_config_checked_by_the_locustfile_schema() -> None:
    msg = _error(GOOD.replace("duration: 20s", "duration: 20s\n  config:\n    cart_wait: [0.1, 0.2]\n    no_such_knob: 1"))
    assert "drill.yaml:" in msg and "load.config" in msg and "no_such_knob" in msg


PROCESS = """\
name: t
load:
  users: {CartUser: 2}
  duration: 20s
stack:
  redis_persistence: aof
  republish_min_age_seconds: 12s
faults:
  - {at: 2, for: 5, process: "app@journal,redis", kind: kill, params: {uptime: 1}}
"""


def test_process_faults_parse_and_keep_their_subject() -> None:
    sc = parse_scenario_text(PROCESS, "drill.yaml").scenario
    (f,) = sc.faults
    assert (f.process, f.link, f.kind) == ("app@journal,redis", None, "kill")
    assert f.to_entry() == {"at": 2.0, "for": 5.0, "process": "app@journal,redis", "kind": "kill",
                                     "params": {"uptime": 1}}
    assert sc.stack.redis_persistence == "aof" and sc.stack.republish_min_age_seconds == 12.0


@pytest.mark.parametrize("fault,message", [
    ("{at: 2, for: 5, kind: kill}", "give either 'link' (a link fault) or 'process'"),
    ("{at: 2, for: 5, link: redis@cart, process: redis, kind: down}", "not both"),
    ("{at: 2, for: 5, link: redis@cart, kind: kill}",
     "drill.yaml:6: field 'faults[0].link': fault kind 'kill' acts on a process, not a link; give 'process:' instead"),
    ("{at: 2, for: 5, process: redis, kind: down}",
     "drill.yaml:6: field 'faults[0].process': fault kind 'down' acts on a link, not a process; give 'link:' instead"),
    ("{at: 2, for: 5, process: postgres, kind: kill}", "process selector 'postgres' must be 'redis'"),
    ("{at: 2, for: 5, process: redis, kind: kill, params: {every: 9}}",
     "drill.yaml:6: field 'faults[0].params.every': (9s) must be shorter than the fault"),
    ("{at: 2, for: 5, process: app@kart, kind: kill}",
     "drill.yaml:6: field 'faults[0].process': process selector 'app@kart' matches no process"),
])
def test_bad_process_faults_name_line_and_field(fault: str, message: str) -> None:
    text = PROCESS.split("faults:")[0].replace("stack:\n  redis_persistence: aof\n  republish_min_age_seconds: 12s\n", "")
    assert message in _error(text + "faults:\n  - " + fault + "\n")


def test_bad_redis_persistence_is_refused() -> None:
    assert "redis_persistence" in _error(PROCESS.replace("aof", "rdb"))


def test_stack_sidecar_kind_is_removed_with_a_clear_error() -> None:
    for kind in ("standin", "daprd"):
        msg = _error(GOOD + f"stack:\n  sidecar: {kind}\n")
        assert "drill.yaml:8:" in msg and "stack.sidecar" in msg and "real daprd is the only" in msg, msg


def test_a_misspelt_fault_field_is_named_like_any_other() -> None:
    msg = _error(GOOD.replace("kind: down}", "kind: down, paramz: {}}"))
    assert "faults[0].paramz" in msg and "unknown field (not part of the scenario schema)" in msg, msg
    assert "did you mean 'params'?" in msg, msg
