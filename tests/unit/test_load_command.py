"""The runner's Locust command line: headless, verdict left to the checkers, loopback master."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.locustfiles.command import LOCUSTFILE, locust_command


def test_local_run(tmp_path: Path) -> None:
    run = locust_command(tmp_path, users=8, run_time="30s", load_config=tmp_path / "load.yaml")
    argv = run.argv
    assert argv[argv.index("-f") + 1] == str(LOCUSTFILE)
    assert "--headless" in argv and argv[argv.index("-u") + 1] == "8" and argv[argv.index("-t") + 1] == "30s"
    assert argv[argv.index("--exit-code-on-error") + 1] == "0"
    assert "--processes" not in argv and "--master-bind-port" not in argv
    assert run.env["KUGELDRILL_PROVISION"] == str(tmp_path.resolve() / "provision.json")
    assert run.env["KUGELDRILL_HISTORY_DIR"] == str(tmp_path.resolve() / "history")
    assert run.env["KUGELDRILL_LOAD_CONFIG"] == str((tmp_path / "load.yaml").resolve())


def test_distributed_run_binds_its_master_on_loopback_and_a_private_port(tmp_path: Path) -> None:
    a = locust_command(tmp_path, users=8, processes=2).argv
    b = locust_command(tmp_path, users=8, processes=2).argv
    assert a[a.index("--processes") + 1] == "2"
    assert a[a.index("--master-bind-host") + 1] == "127.0.0.1" == a[a.index("--master-host") + 1]
    assert a[a.index("--master-bind-port") + 1] == a[a.index("--master-port") + 1] != "5557"
    fixed = locust_command(tmp_path, users=8, processes=2, master_port=6000).argv
    assert fixed[fixed.index("--master-port") + 1] == "6000"


def test_default_master_binding_only_for_processes_without_a_user_choice() -> None:
    from kugeldrill.locustfiles.command import default_master_binding

    env = default_master_binding(["locust", "-f", "pos.py", "--processes", "2"], {})
    assert env["LOCUST_MASTER_BIND_HOST"] == "127.0.0.1" == env["LOCUST_MASTER_NODE_HOST"]
    assert env["LOCUST_MASTER_BIND_PORT"] == env["LOCUST_MASTER_NODE_PORT"]
    assert default_master_binding(["locust", "--processes=4"], {})
    assert default_master_binding(["locust"], {"LOCUST_PROCESSES": "2"})
    assert default_master_binding(["locust", "-f", "pos.py"], {}) == {}
    assert default_master_binding(["locust", "--processes", "2", "--master-bind-port", "6000"], {}) == {}
    assert default_master_binding(["locust", "--worker", "--master-host", "10.0.0.2"], {}) == {}
    assert default_master_binding(["locust", "--processes", "2"], {"LOCUST_MASTER_NODE_PORT": "7000"}) == {}
