"""How the launcher runs daprd (launch/daprd.py): its command line, finding the binary for an
ack model, and the error that names the command building a missing one.

No daprd is started here; binaries are tiny scripts that answer `--version`, so the lookup
is tested without a real daprd too (the real one is checked where `make setup` built it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kugeldrill.ground.errors import ConfigError, MissingBinaryError
from kugeldrill.stack.embedded import StackOptions
from kugeldrill.stack.launch import daprd as dp
from kugeldrill.stack.launch.daprd import Daprd, SidecarSpec, ack_model_of, daprd_version, find_daprd
from kugeldrill.stack.launch.health import service_probe
from kugeldrill.stack.launch.plan import SidecarPorts
from kugeldrill.stack.launch.status import recorded_status

ROOT = Path(__file__).resolve().parents[2]
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

    def install(found: dict[str, Path]) -> None:
        def find_binary(name: str) -> Path:
            if name in found:
                return found[name]
            raise MissingBinaryError(f"{name} not found")

        monkeypatch.setattr(dp, "find_binary", find_binary)

    return install


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_daprd_runs_standalone_with_every_listener_on_loopback(tmp_path: Path) -> None:
    proc = Daprd(binary=tmp_path / "daprd", version="1.18.0").process(spec(tmp_path))
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
    assert proc.ack_model == "1.18"
    record = proc.record()
    assert record["version"] == "1.18.0" and record["port"] == 41001
    assert record["ports"] == {"http": 41001, "grpc": 41002, "metrics": 41003, "internal_grpc": 41004}
    assert record["cmd"] == cmd and record["env"] == proc.env and record["pid"] is None
    # `down` signals a pid only while its command line still has every marker.
    joined = " ".join(cmd)
    assert all(marker in joined for marker in record["match"])
    assert "--dapr-http-port 41001" in record["match"]


def test_ack_model_follows_the_dapr_version() -> None:
    assert ack_model_of("1.18.0") == "1.18" and ack_model_of("1.17.2") == "1.18"
    assert ack_model_of("1.16.0") == "1.16" and ack_model_of("1.15.9") == "1.16"
    assert ack_model_of("edge") == "1.18"


def test_each_ack_model_has_its_daprd(tmp_path: Path, installed) -> None:
    installed({"daprd": fake_daprd(tmp_path, "1.18.0"), "daprd-1.16": fake_daprd(tmp_path, "1.16.0", "daprd-1.16")})
    daprd = find_daprd("1.18")
    assert daprd.version == "1.18.0" and daprd.ack_model == "1.18"
    assert daprd.summary() == {"kind": "daprd", "version": "1.18.0", "ack_model": "1.18",
                               "binary": str(tmp_path / "bin" / "daprd")}
    assert find_daprd("1.16").binary.name == "daprd-1.16" and find_daprd("1.16").ack_model == "1.16"


def test_a_missing_daprd_is_an_error_naming_the_command_that_builds_it(tmp_path: Path, installed) -> None:
    installed({})
    with pytest.raises(MissingBinaryError, match="not installed") as info:
        find_daprd("1.18")
    assert "make setup" in info.value.hint and "scripts/build-daprd.sh" in info.value.hint
    with pytest.raises(MissingBinaryError) as info:
        find_daprd("1.16")
    assert "make daprd-1.16" in info.value.hint
    # The embedded stack asks before anything starts: the same error, no fallback.
    with pytest.raises(MissingBinaryError, match="make setup|not installed"):
        StackOptions(state_dir=tmp_path / "st").daprd()
    assert not (tmp_path / "st").exists()
    installed({"daprd-1.16": fake_daprd(tmp_path, "1.18.0", "daprd-1.16")})
    with pytest.raises(ConfigError, match="implements the 1.18 ack model"):
        find_daprd("1.16")
    with pytest.raises(ConfigError, match="ack model"):
        find_daprd("1.99")


def test_a_replaced_program_gets_daprds_arguments(tmp_path: Path) -> None:
    """The launcher's unit tests run a tiny server in daprd's place; it gets daprd's arguments."""
    daprd = StackOptions(sidecar_cmd=["/py", "-c", "fake"], ack_model="1.16").daprd()
    cmd = daprd.process(spec(tmp_path)).cmd
    assert cmd[:3] == ["/py", "-c", "fake"] and flag(cmd, "--dapr-http-port") == "41001"
    assert daprd.ack_model == "1.16"


def test_a_daprd_that_cannot_say_its_version_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "daprd"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    daprd_version.cache_clear()
    with pytest.raises(MissingBinaryError, match="--version failed"):
        daprd_version(broken)


def test_the_built_daprd_is_the_pinned_version() -> None:
    """`make setup` builds it; without it this fails with the command that builds it."""
    daprd_version.cache_clear()
    daprd = find_daprd("1.18")
    assert daprd.version == dp.DAPRD_PINNED["1.18"] and daprd.ack_model == "1.18"


def test_status_says_which_daprd_runs(tmp_path: Path) -> None:
    state = {
        "version": 1, "state_dir": str(tmp_path), "status": "running",
        "sidecar": {"kind": "daprd", "version": "1.18.0", "ack_model": "1.18", "binary": "/x/daprd"},
        "redis": {}, "toxiproxy": {}, "services": {}, "links": {},
        "sidecars": {"cart": {"version": "1.18.0", "url": "http://127.0.0.1:1", "pid": None,
                              "metrics_url": "http://127.0.0.1:3/metrics", "match": ["daprd"]}},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state))
    status = recorded_status(state, tmp_path / "stack.json", service_probe_for=service_probe, probe=False)
    assert status["sidecar"]["kind"] == "daprd"
    assert status["sidecars"]["cart"]["version"] == "1.18.0" and not status["sidecars"]["cart"]["running"]
    assert status["sidecars"]["cart"]["metrics_url"] == "http://127.0.0.1:3/metrics"
    res = subprocess.run([sys.executable, "-m", "kugeldrill", "stack", "status", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "sidecars             daprd 1.18.0 (ack model 1.18)" in res.stdout, res.stdout + res.stderr
