"""The Locust command line and load config a scenario turns into."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kugeldrill.drill.locust import SHAPEFILE, load_config_for, locust_command
from kugeldrill.ground.errors import ConfigError, NotLoopbackError
from kugeldrill.scenario import parse_scenario_text
from kugeldrill.scenario_schema import LoadSpec


def _load(text: str):
    return parse_scenario_text("name: t\nload:\n" + text).scenario.load


def test_duration_scenario_command(tmp_path: Path) -> None:
    load = _load("  users: {CartUser: 3, TerminalUser: 1}\n  spawn_rate: 4\n  duration: 1m\n")
    cmd, env = locust_command(tmp_path, load, provision_path=tmp_path / "provision.json", processes=1)
    assert cmd[cmd.index("-u") + 1] == "4" and cmd[cmd.index("-t") + 1] == "60s" and cmd[cmd.index("-r") + 1] == "4"
    assert cmd[cmd.index("--exit-code-on-error") + 1] == "0"  # the verdict is ours, not Locust's
    assert "--processes" not in cmd and "--headless" in cmd
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "locust")
    assert env["KUGELDRILL_HISTORY_DIR"] == str(tmp_path / "history")


def test_stages_use_the_shape_and_processes(tmp_path: Path) -> None:
    load = _load("  stages:\n    - {duration: 5s, users: {CartUser: 2}}\n    - {duration: 5s, users: {CartUser: 4, TerminalUser: 1}}\n")
    cmd, env = locust_command(tmp_path, load, provision_path=tmp_path / "p.json", processes=2)
    assert cmd[cmd.index("-f") + 1].endswith(str(SHAPEFILE)) and "-u" not in cmd and "-t" not in cmd
    assert json.loads(env["KUGELDRILL_STAGES"])[1]["users"] == 5
    assert cmd[cmd.index("--processes") + 1] == "2"


def test_load_config_weights_are_user_counts() -> None:
    load = _load("  users: {CartUser: 3, OpenCloseUser: 1}\n  duration: 5\n  config: {cart_wait: [0.2, 0.4]}\n")
    cfg = load_config_for(load)
    assert (cfg["cart_weight"], cfg["terminal_weight"], cfg["openclose_weight"]) == (3, 0, 1)
    assert cfg["cart_wait"] == [0.2, 0.4]


def test_bad_load_config_is_refused_before_anything_runs() -> None:
    load = LoadSpec.model_validate({"users": {"CartUser": 1}, "duration": 5, "config": {"no_such_knob": 1}})
    with pytest.raises(ConfigError) as info:
        load_config_for(load)
    assert "no_such_knob" in str(info.value)


def test_a_master_for_remote_workers(tmp_path: Path) -> None:
    from kugeldrill.drill.locust import MasterBinding, check_master

    load = _load("  users: {CartUser: 3}\n  duration: 20s\n  processes: 2\n")
    master = MasterBinding(bind="127.0.0.1", port=6001, expect_workers=3, wait_seconds=120)
    cmd, _ = locust_command(tmp_path, load, provision_path=tmp_path / "p.json", processes=0, master=master)
    assert "--processes" not in cmd and "--master" in cmd
    assert cmd[cmd.index("--master-bind-port") + 1] == "6001" and cmd[cmd.index("--expect-workers") + 1] == "3"
    assert cmd[cmd.index("--expect-workers-max-wait") + 1] == "120"
    with pytest.raises(NotLoopbackError, match="non-loopback interface, and the embedded stand-in") as info:
        check_master(MasterBinding(bind="0.0.0.0"), embedded=True)
    assert "127.0.0.1" in (info.value.hint or "")
    with pytest.raises(NotLoopbackError, match="target file t.yaml does not allow host '10.1.2.3'") as info:
        check_master(MasterBinding(bind="10.1.2.3"), allow_hosts=("10.9.9.9",), target=Path("t.yaml"))
    assert "allow_hosts" in (info.value.hint or "")
    check_master(MasterBinding(bind="10.1.2.3"), allow_hosts=("10.1.2.3",))  # the target allows it
    check_master(MasterBinding(bind="::1"), embedded=True)
    check_master(MasterBinding(bind="localhost"), embedded=True)
