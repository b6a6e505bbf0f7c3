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


def _protocol_members() -> set[str]:
    from kugeldrill.drill.env import DrillEnvironment

    names = set(DrillEnvironment.__annotations__)
    names |= {n for n, v in vars(DrillEnvironment).items() if callable(v) and not n.startswith("_")}
    return names


def test_both_environments_have_every_member_of_the_interface() -> None:
    """The drill reads the environment through its typed Protocol only: an attribute one kind
    lacks (say `notes`) would be an internal error in every drill against it."""
    from kugeldrill.drill.env import EmbeddedEnvironment
    from kugeldrill.stack.embedded import StackOptions
    from kugeldrill.target import load_target

    class FakeStack:
        state = {"sidecar": {"version": "1.18.0"}, "links": {}, "services": {}}
        redis_url = "redis://127.0.0.1:1/0"
        toxiproxy_url = "http://127.0.0.1:8474"

    embedded = EmbeddedEnvironment(FakeStack(), StackOptions(state_dir=Path("/nonexistent")))  # type: ignore[arg-type]
    target = TargetEnvironment(load_target(_live_target_file()))
    members = _protocol_members()
    assert {"notes", "heal_parts", "process_control", "provision_options", "ensure_links"} <= members
    for env in (embedded, target):
        missing = [m for m in members if not hasattr(env, m)]
        assert not missing, (type(env).__name__, missing)
    assert [p.name for p in embedded.heal_parts([])] == ["links"] and embedded.notes == [] == target.notes


def _live_target_file() -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "t.yaml"
    path.write_text("name: t\nservices:\n  cart: http://127.0.0.1:1\n  terminal: http://127.0.0.1:1\n"
                    "toxiproxy: {api: 'http://127.0.0.1:8474'}\n")
    return path
