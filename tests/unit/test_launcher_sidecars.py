"""The sidecar interface (launch/sidecars.py): what each kind runs, and which kind is chosen.

No sidecar is started here; daprd binaries are tiny scripts that answer `--version`, so the
choice logic is tested on machines without a real daprd too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kugeldrill.ground.errors import ConfigError, MissingBinaryError
from kugeldrill.stack.launch import sidecars as sc
from kugeldrill.stack.launch.plan import SidecarPorts
from kugeldrill.stack.launch.sidecars import (
    DaprdSidecar,
    SidecarSpec,
    StandinSidecar,
    ack_model_of,
    choose_sidecar,
    daprd_version,
)

PORTS = SidecarPorts(http=41001, grpc=41002, metrics=41003, internal_grpc=41004)


def spec(tmp_path: Path) -> SidecarSpec:
    return SidecarSpec(app_id="journal", ports=PORTS, app_address="127.0.0.1", app_port=42000,
                       resources_dir=tmp_path / "components" / "journal", log_file=tmp_path / "sidecar-journal.log",
                       config_dir=tmp_path / "config")


def fake_daprd(tmp_path: Path, version: str, name: str = "daprd") -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    daprd_version.cache_clear()
    return path


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    """installed({"daprd": path, ...}): what find_binary finds; anything else is missing."""
    monkeypatch.delenv(sc.SIDECAR_ENV, raising=False)

    def install(found: dict[str, Path]) -> None:
        def find_binary(name: str) -> Path:
            if name in found:
                return found[name]
            raise MissingBinaryError(f"{name} not found")

        monkeypatch.setattr(sc, "find_binary", find_binary)

    return install


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_daprd_runs_standalone_with_every_listener_on_loopback(tmp_path: Path) -> None:
    kind = DaprdSidecar(binary=tmp_path / "daprd", version="1.18.0")
    proc = kind.process(spec(tmp_path))
    cmd = proc.cmd
    assert cmd[0] == str(tmp_path / "daprd") and flag(cmd, "--mode") == "standalone"
    for name in ("--dapr-listen-addresses", "--dapr-internal-grpc-listen-address", "--metrics-listen-address",
                 "--app-channel-address"):
        assert flag(cmd, name) == "127.0.0.1", name
    assert (flag(cmd, "--dapr-http-port"), flag(cmd, "--dapr-grpc-port"), flag(cmd, "--metrics-port"),
            flag(cmd, "--dapr-internal-grpc-port")) == ("41001", "41002", "41003", "41004")
    assert flag(cmd, "--app-port") == "42000" and flag(cmd, "--app-id") == "journal"
    assert flag(cmd, "--resources-path") == str(tmp_path / "components" / "journal")
    assert "--placement-host-address" not in cmd and "--scheduler-host-address" not in cmd
    assert "--log-file" not in cmd  # daprd <= 1.16 has no such flag: the log is its stdout
    # No mDNS: the Configuration selects a name resolver that announces nothing.
    config = yaml.safe_load(Path(flag(cmd, "--config")).read_text())
    assert config["kind"] == "Configuration" and config["spec"]["nameResolution"]["component"] == "kubernetes"
    assert proc.env == {"DAPR_HOST_IP": "127.0.0.1", "DAPR_API_TOKEN": "", "APP_API_TOKEN": ""}
    assert proc.url == "http://127.0.0.1:41001" and proc.metrics_url == "http://127.0.0.1:41003/metrics"
    assert proc.ack_model == "1.18" and proc.kind == "daprd"
    record = proc.record()
    assert record["kind"] == "daprd" and record["version"] == "1.18.0" and record["port"] == 41001
    assert record["ports"] == {"http": 41001, "grpc": 41002, "metrics": 41003, "internal_grpc": 41004}
    assert record["cmd"] == cmd and record["env"] == proc.env and record["pid"] is None
    # `down` signals a pid only while its command line still has every marker.
    joined = " ".join(cmd)
    assert all(marker in joined for marker in record["match"])
    assert "--dapr-http-port 41001" in record["match"]


def test_standin_command_and_metrics_on_its_api_port(tmp_path: Path) -> None:
    proc = StandinSidecar(ack_model="1.16", python="/py").process(spec(tmp_path))
    assert proc.cmd[:3] == ["/py", "-m", "kugeldrill.stack.sidecar"]
    assert flag(proc.cmd, "--ack-model") == "1.16" and flag(proc.cmd, "--app-host") == "127.0.0.1"
    assert flag(proc.cmd, "--log-file") == str(tmp_path / "sidecar-journal.log")
    assert proc.metrics_url == "http://127.0.0.1:41001/metrics" and proc.env == {}
    assert proc.kind == "standin" and proc.ack_model == "1.16"
    replaced = StandinSidecar(base_cmd=("fake", "-c", "x")).process(spec(tmp_path))
    assert replaced.cmd[:3] == ["fake", "-c", "x"]


def test_ack_model_follows_the_dapr_version() -> None:
    assert ack_model_of("1.18.0") == "1.18" and ack_model_of("1.17.2") == "1.18"
    assert ack_model_of("1.16.0") == "1.16" and ack_model_of("1.15.9") == "1.16"
    assert ack_model_of("edge") == "1.18"


def test_auto_prefers_daprd_and_falls_back_to_the_standin_with_a_note(tmp_path: Path, installed) -> None:
    installed({"daprd": fake_daprd(tmp_path, "1.18.0")})
    choice = choose_sidecar(None, "1.18")
    assert isinstance(choice.kind, DaprdSidecar) and choice.kind.version == "1.18.0" and choice.note is None
    assert choice.summary() == {"kind": "daprd", "version": "1.18.0", "ack_model": "1.18", "requested": "auto",
                                "binary": str(tmp_path / "bin" / "daprd")}
    # The 1.16 ack model needs daprd-1.16; without it, auto runs the stand-in and says why.
    fallback = choose_sidecar(None, "1.16")
    assert isinstance(fallback.kind, StandinSidecar) and fallback.kind.ack_model == "1.16"
    assert "daprd-1.16" in fallback.note and "make daprd-1.16" in fallback.note
    assert fallback.summary()["note"] == fallback.note
    installed({})
    assert "make setup" in choose_sidecar(None, "1.18").note


def test_an_explicit_daprd_that_is_missing_or_wrong_is_an_error(tmp_path: Path, installed) -> None:
    installed({})
    with pytest.raises(MissingBinaryError, match="not installed") as info:
        choose_sidecar("daprd", "1.18")
    assert "make setup" in info.value.hint and "--sidecar standin" in info.value.hint
    installed({"daprd-1.16": fake_daprd(tmp_path, "1.18.0", "daprd-1.16")})
    with pytest.raises(ConfigError, match="implements the 1.18 ack model"):
        choose_sidecar("daprd", "1.16")
    with pytest.raises(ConfigError, match="sidecar kind"):
        choose_sidecar("docker", "1.18")
    with pytest.raises(ConfigError, match="ack model"):
        choose_sidecar("standin", "1.99")


def test_environment_default_and_a_replaced_command(tmp_path: Path, installed, monkeypatch) -> None:
    installed({"daprd": fake_daprd(tmp_path, "1.18.0")})
    monkeypatch.setenv(sc.SIDECAR_ENV, "standin")
    assert isinstance(choose_sidecar(None).kind, StandinSidecar)
    assert isinstance(choose_sidecar("daprd").kind, DaprdSidecar)  # an explicit choice wins
    monkeypatch.setenv(sc.SIDECAR_ENV, "podman")
    with pytest.raises(ConfigError, match="KUGELDRILL_SIDECAR"):
        choose_sidecar(None)
    monkeypatch.delenv(sc.SIDECAR_ENV)
    replaced = choose_sidecar(None, standin_cmd=["fake"])
    assert isinstance(replaced.kind, StandinSidecar) and replaced.kind.base_cmd == ("fake",)
    with pytest.raises(ConfigError, match="cannot be combined with daprd"):
        choose_sidecar("daprd", standin_cmd=["fake"])


def test_a_daprd_that_cannot_say_its_version_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "daprd"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    daprd_version.cache_clear()
    with pytest.raises(MissingBinaryError, match="--version failed"):
        daprd_version(broken)


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "tools" / "bin" / "daprd").exists()
                    and not os.environ.get("KUGELDRILL_REQUIRE_DAPRD"), reason="daprd not built (make setup)")
def test_the_built_daprd_is_the_pinned_version() -> None:
    daprd_version.cache_clear()
    kind = sc.find_daprd("1.18")
    assert kind.version == sc.DAPRD_PINNED["1.18"] and kind.ack_model == "1.18"


def test_status_says_which_sidecar_runs(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from kugeldrill.stack.launch.health import service_probe
    from kugeldrill.stack.launch.status import recorded_status

    def stack_status(state: dict, path: Path, probe: bool) -> dict:
        return recorded_status(state, path, service_probe_for=service_probe, probe=probe)

    state = {
        "version": 1, "state_dir": str(tmp_path), "status": "running",
        "sidecar": {"kind": "daprd", "version": "1.18.0", "ack_model": "1.18", "requested": "auto"},
        "redis": {}, "toxiproxy": {}, "services": {}, "links": {},
        "sidecars": {"cart": {"kind": "daprd", "version": "1.18.0", "url": "http://127.0.0.1:1", "pid": None,
                              "metrics_url": "http://127.0.0.1:3/metrics", "match": ["daprd"]}},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state))
    status = stack_status(state, tmp_path / "stack.json", probe=False)
    assert status["sidecar"]["kind"] == "daprd"
    assert status["sidecars"]["cart"]["kind"] == "daprd" and not status["sidecars"]["cart"]["running"]
    assert status["sidecars"]["cart"]["metrics_url"] == "http://127.0.0.1:3/metrics"
    # A state file from before sidecar kinds: the stand-in's sidecar ran.
    assert stack_status({}, tmp_path / "old.json", probe=False)["sidecar"]["kind"] == "standin"
    res = subprocess.run([sys.executable, "-m", "kugeldrill", "stack", "status", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert "sidecars             daprd 1.18.0 (ack model 1.18; asked for: auto)" in res.stdout, res.stdout + res.stderr
