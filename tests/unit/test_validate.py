"""`kugeldrill validate`, `list`, `schema` and `run`'s first step: scenarios and target files
checked completely without starting anything, each problem at its file:line with a hint."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from kugeldrill.cli import main
from kugeldrill.scenario import library
from kugeldrill.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """\
name: mine
load:
  users: {CartUser: 2}
  duration: 20s
faults:
  - {at: 4, for: 8, link: sidecar@cart, kind: down}
"""

TARGET = """\
name: staging
services:
  cart: http://127.0.0.1:8003
  journal: http://127.0.0.1:8005
toxiproxy: {api: "http://127.0.0.1:8474"}
links:
  sidecar@cart: {listen: "127.0.0.1:3600", upstream: "127.0.0.1:3500"}
observe:
  redis_url: redis://127.0.0.1:6379/0
"""


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start a stack or a drill fails the test."""
    import kugeldrill.drill
    from kugeldrill.stack.embedded import Stack

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("something was started")

    monkeypatch.setattr(Stack, "up", refuse)
    monkeypatch.setattr(kugeldrill.drill, "run_drill", refuse)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _validate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["validate", *argv])
    return code, capsys.readouterr().out


def test_a_misspelt_link_is_caught_with_its_line_and_the_right_name(tmp_path, capsys, nothing_starts) -> None:
    path = _write(tmp_path, "s.yaml", SCENARIO.replace("sidecar@cart", "sidecar@kart"))
    code, out = _validate(capsys, str(path))
    assert code == 1
    assert f"{path}:6: field 'faults[0].link': link selector 'sidecar@kart' matches no link" in out
    assert "hint: did you mean 'sidecar@cart'?" in out


def test_a_fault_past_the_load_s_end_is_caught(tmp_path, capsys, nothing_starts) -> None:
    path = _write(tmp_path, "s.yaml", SCENARIO.replace("for: 8", "for: 18"))
    code, out = _validate(capsys, str(path))
    assert code == 1 and f"{path}:6: field 'faults[0].for': the fault ends at 22s but the load ends at 20s" in out


def test_an_unknown_target_field_is_caught_with_the_closest_known_one(tmp_path, capsys, nothing_starts) -> None:
    target = _write(tmp_path, "t.yaml", TARGET + "breaker:\n  treshold: 3\n")
    code, out = _validate(capsys, str(target))
    assert code == 1
    assert f"{target}:11: field 'breaker.treshold': unknown field (not part of the target file schema)" in out
    assert "did you mean 'threshold'?" in out


def test_a_non_loopback_host_is_caught_with_the_allow_hosts_fix(tmp_path, capsys, nothing_starts) -> None:
    target = _write(tmp_path, "t.yaml", TARGET.replace("http://127.0.0.1:8005", "http://10.0.0.7:8005"))
    code, out = _validate(capsys, str(target))
    assert code == 1
    assert f"{target}:4: field 'services.journal': host '10.0.0.7'" in out and "not loopback" in out
    assert "add 'allow_hosts: [10.0.0.7]'" in out
    _write(tmp_path, "t.yaml", "allow_hosts: [10.0.0.7]\n" + target.read_text())
    assert _validate(capsys, str(target))[0] == 0


def test_a_scenario_is_checked_against_its_target_s_links(tmp_path, capsys, nothing_starts) -> None:
    target = _write(tmp_path, "t.yaml", TARGET)
    scenario = _write(tmp_path, "s.yaml", SCENARIO.replace("sidecar@cart", "redis@cart")
                      + "stack:\n  republish_interval_seconds: 2\n")
    code, out = _validate(capsys, str(scenario), "--target", str(target))
    assert code == 1 and "link selector 'redis@cart' matches no link (known links: sidecar@cart)" in out
    scenario.write_text(SCENARIO + "stack:\n  republish_interval_seconds: 2\n")
    code, out = _validate(capsys, str(scenario), "--target", str(target))
    assert code == 0, out
    assert f"{scenario}:8: warning: field 'stack.republish_interval_seconds'" in out  # the target ignores it


def test_run_validates_every_file_before_anything_starts(tmp_path, capsys, nothing_starts) -> None:
    bad = _write(tmp_path, "a.yaml", SCENARIO.replace("sidecar@cart", "sidecar@kart"))
    worse = _write(tmp_path, "b.yaml", SCENARIO.replace("name: mine", "name: other").replace("for: 8", "for: 30"))
    assert main(["run", "baseline", str(bad), str(worse), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "2 file(s) invalid; nothing was started" in err
    assert f"{bad}:6: field 'faults[0].link'" in err and f"{worse}:6: field 'faults[0].for'" in err
    assert not (tmp_path / "runs").exists()


def test_run_out_is_one_run_folder(tmp_path, capsys, nothing_starts) -> None:
    assert main(["run", "baseline", "sidecar-cut", "--out", str(tmp_path / "x")]) == 2
    assert "use --runs-dir DIR" in capsys.readouterr().err


def test_validate_json_lists_every_file(tmp_path, capsys) -> None:
    bad = _write(tmp_path, "s.yaml", SCENARIO.replace("for: 8", "for: 18"))
    code = main(["validate", "baseline", str(bad), "--json", "--json-file", str(tmp_path / "v.json")])
    printed = json.loads(capsys.readouterr().out)
    assert code == 1 and printed == json.loads((tmp_path / "v.json").read_text())
    assert [f["valid"] for f in printed["files"]] == [True, False]
    (problem,) = printed["files"][1]["problems"]
    assert problem["line"] == 6 and problem["field"] == "faults[0].for" and problem["severity"] == "error"


def test_list_shows_the_library(capsys) -> None:
    assert main(["list", "--json"]) == 0
    scenarios = {s["name"]: s for s in json.loads(capsys.readouterr().out)["scenarios"]}
    assert len(scenarios) == len(library())
    assert scenarios["soak"]["suite"] == "nightly" and scenarios["soak"]["load_seconds"] == 600
    assert scenarios["defect-breaker-per-request"]["suite"] == "defects"
    assert main(["list"]) == 0 and "sidecar-cut" in capsys.readouterr().out


def test_every_listed_name_is_what_run_and_validate_accept(capsys) -> None:
    from kugeldrill.scenario import resolve_scenario_path

    assert main(["list", "--json"]) == 0
    for entry in json.loads(capsys.readouterr().out)["scenarios"]:
        assert resolve_scenario_path(entry["name"]) == Path(entry["path"])
    assert main(["validate", "baselin"]) == 1
    assert "did you mean 'baseline'?" in capsys.readouterr().out


def test_target_check_reports_file_problems_without_probing(tmp_path, capsys) -> None:
    target = _write(tmp_path, "t.yaml", TARGET.replace("redis_url", "redis_ulr"))
    assert main(["target", "check", str(target)]) == 1
    out = capsys.readouterr().out
    assert f"{target}:9: field 'observe.redis_ulr'" in out and "nothing was probed" in out


# ------------------------------------------------------------------ JSON Schema


@pytest.mark.parametrize("kind", ["scenario", "target"])
def test_schema_command_prints_a_valid_json_schema(kind: str, capsys) -> None:
    assert main(["schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json_schema(kind)


def test_every_library_file_passes_the_schema_and_typos_do_not() -> None:
    scenario = jsonschema.Draft202012Validator(json_schema("scenario"))
    for path in library():
        errors = list(scenario.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"
    target = jsonschema.Draft202012Validator(json_schema("target"))
    for path in (ROOT / "targets").glob("*.yaml"):
        assert not list(target.iter_errors(yaml.safe_load(path.read_text()))), path
    doc = yaml.safe_load(SCENARIO)
    assert scenario.is_valid({**doc, "load": {**doc["load"], "duration": "1m30s"}})
    assert not scenario.is_valid({**doc, "load": {**doc["load"], "duration": "soon"}})
    assert not scenario.is_valid({**doc, "lod": {}})
    assert not target.is_valid({**yaml.safe_load(TARGET), "services": {"kart": "http://127.0.0.1:1"}})


def test_duration_fields_are_the_ones_the_models_parse() -> None:
    """A field takes "30s" in the schema exactly when the model takes it: no list kept by hand."""
    fault = json_schema("scenario")["$defs"]["PlannedFault"]["properties"]  # chaos' record, read from the file
    assert any(o.get("type") == "string" for o in fault["for"]["anyOf"])
    assert fault["kind"]["type"] == "string" and "anyOf" not in fault["kind"]  # a word, not a duration
    load = json_schema("scenario")["$defs"]["LoadSpec"]["properties"]
    assert any(o.get("type") == "string" for o in load["duration"]["anyOf"])
    assert "anyOf" not in load["processes"]
