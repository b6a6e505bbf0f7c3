"""The environment interface: a target file that does not answer is refused before any load."""

from __future__ import annotations

from pathlib import Path

import pytest

from kugeldrill.drill.env import TargetEnvironment, open_environment
from kugeldrill.ground.errors import NotLoopbackError, TargetUnreachableError
from kugeldrill.ground.ports import free_port
from kugeldrill.scenario import parse_scenario_text


def _target(tmp_path: Path, host: str = "127.0.0.1") -> Path:
    port = free_port()
    path = tmp_path / "dead.yaml"
    path.write_text(f"name: dead\nservices:\n  cart: http://{host}:{port}\n  terminal: http://{host}:{port}\n")
    return path


def test_unreachable_target_is_named(tmp_path: Path) -> None:
    path = _target(tmp_path)
    with pytest.raises(TargetUnreachableError) as info:
        TargetEnvironment.open(path)
    assert str(path) in str(info.value) and "cart at http://127.0.0.1:" in str(info.value)


def test_non_loopback_target_refused(tmp_path: Path) -> None:
    with pytest.raises(NotLoopbackError):
        TargetEnvironment.open(_target(tmp_path, host="10.1.2.3"))


def test_scenario_target_resolved_relative_to_scenario(tmp_path: Path) -> None:
    _target(tmp_path)
    text = "name: t\ntarget: dead.yaml\nload: {users: {CartUser: 1}, duration: 5}\n"
    loaded = parse_scenario_text(text, str(tmp_path / "s.yaml"))
    with pytest.raises(TargetUnreachableError):
        open_environment(loaded.scenario, tmp_path, loaded.path)
