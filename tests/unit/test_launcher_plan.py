"""The shape of the embedded stack (contracts §1) and the state-file/pid helpers, without processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.stack.launch.plan import PortPlan, link_names, link_url, proxy_specs
from kugeldrill.stack.launch.procs import pid_matches, stop_pid
from kugeldrill.stack.launch.state import StateFile, read_state


def test_every_sidecar_app_has_three_links_with_the_contract_names() -> None:
    names = link_names()
    assert len(names) == 15 and len(set(names)) == 15
    for app in ("terminal", "cart", "report", "journal", "stock"):
        assert {f"redis@{app}", f"sidecar@{app}", f"app@{app}"} <= set(names)
    assert not [n for n in names if n.endswith(("@account", "@master-data"))]


def test_proxy_specs_point_at_the_right_upstreams() -> None:
    plan = PortPlan(redis=1000, toxiproxy=1001, services={"cart": 2000, "stock": 2001},
                    sidecars={"cart": 3000, "stock": 3001})
    specs = {s["name"]: s for s in proxy_specs(PortPlan(
        redis=1000, toxiproxy=1001,
        services={a: 2000 + i for i, a in enumerate(["account", "terminal", "master-data", "cart", "report", "journal", "stock"])},
        sidecars={a: 3000 + i for i, a in enumerate(["terminal", "cart", "report", "journal", "stock"])}))}
    assert specs["kugeldrill.redis@cart"]["upstream"] == "127.0.0.1:1000"
    assert specs["kugeldrill.sidecar@cart"]["upstream"] == "127.0.0.1:3001"
    assert specs["kugeldrill.app@stock"]["upstream"] == "127.0.0.1:2006"
    assert all(s["listen"] == "127.0.0.1:0" and s["enabled"] for s in specs.values())
    assert plan.all_ports()[:2] == [1000, 1001]


def test_allocated_ports_are_distinct() -> None:
    plan = PortPlan.allocate()
    assert len(set(plan.all_ports())) == 14


def test_link_urls() -> None:
    assert link_url("redis@cart", "127.0.0.1:5") == "redis://127.0.0.1:5/0"
    assert link_url("sidecar@cart", "127.0.0.1:5") == "http://127.0.0.1:5"


def test_state_file_round_trip_and_errors(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "stack.json", {"version": 1, "services": {}})
    sf.update(lambda s: s["services"].__setitem__("cart", {"pid": 7}))
    assert read_state(tmp_path)["services"]["cart"]["pid"] == 7
    with pytest.raises(DrillError, match="no stack state file"):
        read_state(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        read_state(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ConfigError, match="version 99"):
        read_state(tmp_path / "old.json")


def test_stop_pid_checks_the_command_line_first() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "kd-marker-xyz"])
    try:
        # Between fork and exec the child still shows our command line: wait for the exec.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not pid_matches(proc.pid, ["kd-marker-xyz"]):
            time.sleep(0.02)
        assert pid_matches(proc.pid, ["kd-marker-xyz"])
        assert stop_pid(proc.pid, ["something-else"]) == "not ours"
        assert proc.poll() is None
        assert stop_pid(proc.pid, ["kd-marker-xyz"]) == "stopped"
        assert proc.wait(timeout=5) is not None
        assert stop_pid(proc.pid, ["kd-marker-xyz"]) == "gone"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sidecar_ports_are_chosen_late_and_never_a_planned_port() -> None:
    plan = PortPlan.allocate()
    ports = plan.sidecar_ports("cart")
    assert ports.http == plan.sidecars["cart"]  # the sidecar@cart proxy forwards there
    assert len(set(ports.all())) == 4 and not set(ports.all()[1:]) & set(plan.all_ports())


def test_recorded_options_read_back_with_names() -> None:
    from kugeldrill.stack.embedded.options import RecordedOptions, StackOptions

    opts = StackOptions(breaker_reset_seconds=3.0, republish_interval_seconds=2.0, defects=["database_index"],
                        fail_effect_every=5, resiliency=False)
    back = RecordedOptions.from_state({"options": json.loads(json.dumps(opts.summary()))})
    assert back == opts.recorded()
    assert back.breaker.reset_seconds == 3.0 and back.republish_min_age_seconds == 2.0 and not back.resiliency
    assert RecordedOptions.from_state({}) == RecordedOptions()  # an old or partial state file: the defaults
