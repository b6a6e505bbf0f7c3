"""Process faults on a target through its file's command templates: schema, placeholders,
missing commands refused before a drill, commands run (real `sh`), idempotent heals where a
`running` query says so, and the watchdog's lease entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kugeldrill.chaos.processes import ProcessControl
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.processes import ProcessActionError
from kugeldrill.scenario import parse_scenario_text
from kugeldrill.target import load_target
from kugeldrill.target_processes import TargetProcesses

BASE = {"name": "t", "services": {"cart": "http://127.0.0.1:8003"}}


def write_target(tmp_path: Path, processes: dict | None) -> Path:
    data = dict(BASE)
    if processes is not None:
        data["processes"] = processes
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def state_commands(tmp_path: Path) -> dict:
    """Commands that keep each target's state in a file: running / paused / dead."""
    st = tmp_path / "state"
    st.mkdir(exist_ok=True)

    def sh(script: str) -> list[str]:
        return ["sh", "-c", script]

    return {
        "cwd": str(tmp_path),
        "commands": {
            "kill": sh("echo dead > state/{name}"),
            "pause": sh("echo paused > state/{name}"),
            "resume": sh("grep -qx paused state/{name} || { echo 'not paused' >&2; exit 1; }; echo running > state/{name}"),
            "stop": sh("echo 'stop after {grace}' >> state/{name}.log; echo dead > state/{name}"),
            "start": sh("echo running > state/{name}"),
            "running": sh("grep -qx running state/{name}"),
            "pids": sh("echo '{{.State.Pid}} 4242'"),
        },
        "targets": {"redis": {"vars": {"name": "redis"}}, "app@cart": {"vars": {"name": "cart"}},
                    "sidecar@cart": {"vars": {"name": "cart-dapr"}, "commands": {"kill": ["false"]}}},
    }


def control(tmp_path: Path) -> TargetProcesses:
    ctl = TargetProcesses(load_target(write_target(tmp_path, state_commands(tmp_path))))
    for name in ("redis", "cart", "cart-dapr"):
        (tmp_path / "state" / name).write_text("running\n")
    return ctl


def test_it_is_a_process_control(tmp_path: Path) -> None:
    assert isinstance(control(tmp_path), ProcessControl)


def test_actions_run_the_rendered_commands(tmp_path: Path) -> None:
    ctl = control(tmp_path)
    state = tmp_path / "state"
    assert ctl.targets() == ["redis", "app@cart", "sidecar@cart"]
    assert ctl.pids("redis") == [4242]  # docker's {{.State.Pid}} is not a placeholder and stays as it is
    res = ctl.pause("redis")
    assert (res.action, res.outcome, res.pids_before, res.pids_after) == ("pause", "done", (4242,), (4242,))
    assert state.joinpath("redis").read_text() == "paused\n"
    assert ctl.problems(["redis", "app@cart"]) == [
        "process redis is not running (or paused) according to its 'running' command"]
    assert ctl.resume("redis").outcome == "done" and ctl.resume("redis").outcome == "already"  # idempotent
    ctl.stop("app@cart", 2.5)
    assert state.joinpath("cart.log").read_text() == "stop after 2.5\n"
    assert ctl.start("app@cart").outcome == "done" and ctl.start("app@cart").outcome == "already"
    assert ctl.wait_ready("app@cart", 1.0) is None  # no ready query: nothing more to know


def test_a_failing_command_names_target_command_and_output(tmp_path: Path) -> None:
    ctl = control(tmp_path)
    with pytest.raises(ProcessActionError, match=r"sidecar@cart: false exited with 1"):
        ctl.kill("sidecar@cart")  # the per-target command overrides the shared one


def test_missing_commands_and_lease_entries(tmp_path: Path) -> None:
    spec = state_commands(tmp_path)
    del spec["commands"]["resume"]
    ctl = TargetProcesses(load_target(write_target(tmp_path, spec)))
    assert ctl.missing_actions("redis", ("pause", "resume")) == ["resume"]
    assert ctl.lease_entry("app@cart", "start") == {
        "target": "app@cart", "need": "start", "do": "command", "argv": ["sh", "-c", "echo running > state/cart"],
        "cwd": str(tmp_path), "timeout": 60.0}
    with pytest.raises(ProcessActionError, match="names no 'resume' command"):
        ctl.lease_entry("redis", "resume")


@pytest.mark.parametrize("processes,message", [
    ({"commands": {"explode": ["x"]}}, "unknown command 'explode'"),
    ({"commands": {"kill": []}}, "non-empty list of strings"),
    ({"targets": {"postgres": {}}}, "must be redis, sidecar@<app id> or app@<app id>"),
    ({"commands": {"kill": ["docker", "kill", "{container}"]}, "targets": {"redis": {}}},
     "the kill command of redis uses {container}, which redis does not define"),
])
def test_bad_process_sections_are_refused_at_load(tmp_path: Path, processes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_target(write_target(tmp_path, processes))


SCENARIO = """\
name: crash-target
target: target.yaml
load:
  users: {CartUser: 1}
  duration: 10s
faults:
  - {at: 1, for: 3, process: app@cart, kind: kill}
"""


def test_a_process_fault_needs_the_target_s_commands(tmp_path: Path) -> None:
    write_target(tmp_path, None)
    with pytest.raises(ConfigError, match="is a process fault, but target file .* names no process commands"):
        parse_scenario_text(SCENARIO, str(tmp_path / "s.yaml"))
    write_target(tmp_path, {"commands": {"kill": ["true"]}, "targets": {"app@cart": {}}})
    with pytest.raises(ConfigError, match=r"s.yaml:7: field 'faults\[0\].process': kill app@cart needs the "
                                          r"command\(s\) start"):
        parse_scenario_text(SCENARIO, str(tmp_path / "s.yaml"))
    write_target(tmp_path, {"commands": {"kill": ["true"], "start": ["true"]}, "targets": {"app@cart": {}}})
    assert parse_scenario_text(SCENARIO, str(tmp_path / "s.yaml")).scenario.faults[0].process == "app@cart"
