"""`kugeldrill run --duration` and `--master`, `kugeldrill worker --master`: parsing and refusals."""

from __future__ import annotations

import argparse

import pytest

from kugeldrill.cli import build_parser
from kugeldrill.commands.run import master_binding, with_duration
from kugeldrill.commands.worker import parse_master
from kugeldrill.ground.errors import ConfigError
from kugeldrill.locustfiles.command import worker_command
from kugeldrill.scenario import load_scenario, parse_scenario_text


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "baseline", *argv])


def test_duration_repeats_the_fault_plan_per_cycle_and_keeps_what_heals_in_time() -> None:
    soak = load_scenario("soak")
    period = soak.scenario.load.total_seconds
    hour = with_duration(soak, 3600)
    assert hour.scenario.load.duration == 3600 and hour.scenario.load.total_seconds == 3600
    assert len(hour.scenario.faults) == len(soak.scenario.faults) * int(3600 // period)
    assert [f.at for f in hour.scenario.faults[: len(soak.scenario.faults) + 1]][-1] == soak.scenario.faults[0].at + period
    assert all(f.at + f.duration <= 3600 for f in hour.scenario.faults)
    short = with_duration(soak, 180)
    assert [(f.at, f.duration) for f in short.scenario.faults] == [(f.at, f.duration) for f in soak.scenario.faults
                                                               if f.at + f.duration <= 180]
    # The run folder's scenario.yaml is the scenario as run: it parses back to the same thing.
    assert parse_scenario_text(hour.text).scenario == hour.scenario
    assert "--duration 3600s" in hour.text.splitlines()[0]


def test_duration_refuses_a_staged_scenario() -> None:
    staged = parse_scenario_text("name: s\nload:\n  stages:\n    - {duration: 5s, users: {CartUser: 1}}\n")
    with pytest.raises(ConfigError, match="stages"):
        with_duration(staged, 60)


def test_duration_option_uses_the_duration_parser() -> None:
    assert _args("--duration", "1h").duration == 3600
    with pytest.raises(SystemExit):
        _args("--duration", "soon")


def test_master_options_become_one_binding_and_conflicts_are_refused() -> None:
    assert master_binding(_args()) is None
    binding = master_binding(_args("--master", "--master-port", "6001", "--expect-workers", "3"))
    assert (binding.bind, binding.port, binding.expect_workers) == ("127.0.0.1", 6001, 3)
    with pytest.raises(ConfigError, match="--expect-workers"):
        master_binding(_args("--master"))
    with pytest.raises(ConfigError, match="goes with --master"):
        master_binding(_args("--expect-workers", "2"))
    with pytest.raises(ConfigError, match="exclude each other"):
        master_binding(_args("--master", "--expect-workers", "2", "--processes", "2"))
    with pytest.raises(ConfigError, match="TCP port"):
        master_binding(_args("--master", "--expect-workers", "2", "--master-port", "70000"))


@pytest.mark.parametrize("text, expected", [("10.0.0.5:6000", ("10.0.0.5", 6000)), ("host", ("host", 5557)),
                                            ("[::1]:5558", ("::1", 5558)), ("[fe80::1]", ("fe80::1", 5557))])
def test_worker_master_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_master(text) == expected


@pytest.mark.parametrize("text", [":5557", "h:port", "h:0", "[::1", "[::1]x"])
def test_worker_master_address_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_master(text)


def test_a_worker_takes_nothing_from_this_machine_but_the_master_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUGELDRILL_PROVISION", "/somewhere/provision.json")
    monkeypatch.setenv("KUGELDRILL_CART_WAIT", "0,0")
    cmd = worker_command("10.0.0.5", 6000, processes=4)
    argv = cmd.argv
    assert "--worker" in argv and argv[argv.index("--master-host") + 1] == "10.0.0.5"
    assert argv[argv.index("--master-port") + 1] == "6000" and argv[argv.index("--processes") + 1] == "4"
    assert not [k for k in cmd.env if k.startswith("KUGELDRILL_")]


def test_a_master_on_another_interface_needs_the_targets_word_before_anything_starts(tmp_path, capsys) -> None:
    from pathlib import Path

    from kugeldrill.cli import main
    from kugeldrill.commands.run import check_master_for, validate_all
    from kugeldrill.ground.errors import NotLoopbackError
    from kugeldrill.locustfiles.command import MasterBinding

    run = tmp_path / "run"
    code = main(["run", "baseline", "--master", "--master-bind", "10.1.2.3", "--expect-workers", "1", "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and "refusing --master-bind '10.1.2.3'" in err and "embedded stand-in" in err, err
    assert not run.exists()  # refused before the stand-in started

    compose = Path(__file__).resolve().parents[2] / "targets" / "kugelpos-compose.yaml"
    master = MasterBinding(bind="10.1.2.3", expect_workers=2)
    with pytest.raises(NotLoopbackError, match=f"target file {compose}"):
        check_master_for(master, validate_all(["baseline"], compose))
    allowing = tmp_path / "allowing.yaml"
    allowing.write_text(compose.read_text().replace("allow_hosts:\n", "allow_hosts:\n- 10.1.2.3\n", 1))
    check_master_for(master, validate_all(["baseline"], allowing))  # the target lists the host: allowed
    check_master_for(MasterBinding(bind="127.0.0.1", expect_workers=2), validate_all(["baseline"], None))
