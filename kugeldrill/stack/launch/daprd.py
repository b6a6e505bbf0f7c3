"""The Dapr sidecar of one app: real daprd, the only sidecar kugeldrill runs.

A `SidecarSpec` says what one app's sidecar needs — app id, its own ports, where its app
listens (the app channel: the `app@<app>` proxy), its resources folder, its log file.
`Daprd.process(spec)` turns it into a `SidecarProcess`: the command line, environment
additions, command-line markers and URLs that the launcher runs and records in the state
file. Everything needed to run it again is in that record (`cmd`, `env`, `log`, `match`), so
`down`, `status` and process faults work on it like on any other process.

daprd runs standalone: no placement, no scheduler, every listener on loopback, and name
resolution that does not announce the app on the network (daprd's standalone default, mDNS,
multicasts on every interface). Ack model, redelivery and Resiliency are Dapr's own
(docs/dapr-contract.md). `tools/bin/daprd` (Dapr 1.18, `make setup`) serves the ≥ 1.17
acknowledgement model, `tools/bin/daprd-1.16` (`make daprd-1.16`) the ≤ 1.16 one; a missing
binary is an error that names the command building it (`find_daprd`).

`start_sidecar` starts one daprd on its own and waits for it (conformance tests, benches).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx

from kugeldrill.ground.errors import ConfigError, MissingBinaryError, TargetUnreachableError
from kugeldrill.ground.jsonfile import write_text_atomic
from kugeldrill.ground.tools import find_binary, tools_bin
from kugeldrill.stack.launch.health import NeverHealthy, sidecar_probe
from kugeldrill.stack.launch.plan import HOST, SidecarPorts
from kugeldrill.stack.launch.process import ManagedProcess, log_tail

ACK_MODELS: tuple[str, ...] = ("1.18", "1.16")
#: The daprd binary for each ack model: ≥ 1.17 acks failed deliveries, ≤ 1.16 leaves them pending.
DAPRD_BINARIES = {"1.18": "daprd", "1.16": "daprd-1.16"}
DAPRD_PINNED = {"1.18": "1.18.0", "1.16": "1.16.0"}
#: The command that builds each: an installed kugeldrill's own, and a checkout's make target.
DAPRD_BUILD = {"1.18": "'kugeldrill setup' (in a checkout: 'make setup')",
               "1.16": "'kugeldrill setup --ack-model 1.16' (in a checkout: 'make daprd-1.16')"}
DAPRD_CONFIG_NAME = "daprd-config.yaml"

# daprd's standalone name resolution is mDNS, which announces `<app-id> -> host:port` by
# multicast on every interface. The kubernetes resolver only formats a DNS name when a
# service invocation asks for one (the stand-in makes none), so nothing leaves loopback.
DAPRD_CONFIG = """\
# Rendered by kugeldrill (stack.launch.daprd): the Configuration every daprd of the stack reads.
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: kugeldrill-daprd
spec:
  nameResolution:
    component: kubernetes
"""


@dataclass(frozen=True)
class SidecarSpec:
    """What one app's sidecar needs."""

    app_id: str
    ports: SidecarPorts
    app_address: str  # the app channel: where the sidecar reaches its app (the app@X proxy)
    app_port: int
    resources_dir: Path  # rendered Components / Resiliency (stack.components.render_components)
    log_file: Path
    config_dir: Path  # where the daprd Configuration is written
    host: str = HOST  # every listener binds here (loopback)


@dataclass(frozen=True)
class SidecarProcess:
    """How to run one sidecar: what the launcher starts and records in the state file."""

    version: str
    ack_model: str
    cmd: list[str]
    env: dict[str, str]  # set on top of the starter's environment (recorded: a restart needs them)
    match: list[str]  # command-line markers: `down` signals a pid only while they still match
    url: str  # the Dapr HTTP API (`/v1.0/...`)
    metrics_url: str  # Prometheus text
    ports: SidecarPorts

    def record(self) -> dict[str, object]:
        """The state-file entry (contracts §2) for this sidecar; `pid` is filled in at start."""
        return {
            "version": self.version, "url": self.url, "port": self.ports.http,
            "ports": {"http": self.ports.http, "grpc": self.ports.grpc, "metrics": self.ports.metrics,
                      "internal_grpc": self.ports.internal_grpc},
            "metrics_url": self.metrics_url, "pid": None, "cmd": list(self.cmd), "env": dict(self.env),
            "match": list(self.match),
        }


@dataclass(frozen=True)
class Daprd:
    """The real daprd, standalone, on loopback.

    `program` replaces the binary in the command line (the launcher's own unit tests run a
    tiny HTTP server that takes daprd's arguments); None runs `binary`."""

    binary: Path
    version: str
    log_level: str = "info"
    program: tuple[str, ...] | None = None

    @property
    def ack_model(self) -> str:
        return ack_model_of(self.version)

    def describe(self) -> str:
        return f"daprd {self.version} ({self.binary})"

    def summary(self) -> dict[str, object]:
        """The `sidecar` block of a state file: which daprd runs beside every app."""
        return {"kind": "daprd", "version": self.version, "ack_model": self.ack_model, "binary": str(self.binary)}

    def process(self, spec: SidecarSpec) -> SidecarProcess:
        """The daprd command line; writes the shared Configuration into `spec.config_dir`."""
        config = write_daprd_config(spec.config_dir)
        ports, host = spec.ports, spec.host
        cmd = [
            *(self.program or (str(self.binary),)),
            "--app-id", spec.app_id,
            "--mode", "standalone",
            "--dapr-http-port", str(ports.http),
            "--dapr-grpc-port", str(ports.grpc),
            "--dapr-internal-grpc-port", str(ports.internal_grpc),
            "--metrics-port", str(ports.metrics),
            "--dapr-listen-addresses", host,
            "--dapr-internal-grpc-listen-address", host,
            "--metrics-listen-address", host,
            "--app-port", str(spec.app_port),
            "--app-channel-address", spec.app_address,
            "--app-protocol", "http",
            "--resources-path", str(spec.resources_dir),
            "--config", str(config),
            "--log-level", self.log_level,
        ]  # logs go to stdout, which the launcher writes to spec.log_file (daprd <= 1.16 has no --log-file)
        env = {
            # The address daprd would announce for itself (actors, name resolution): loopback,
            # not the machine's first interface.
            "DAPR_HOST_IP": host,
            # An API token in the user's shell would make daprd refuse the services' calls.
            "DAPR_API_TOKEN": "",
            "APP_API_TOKEN": "",
        }
        return SidecarProcess(
            version=self.version, ack_model=self.ack_model, cmd=cmd, env=env,
            match=[Path(cmd[0]).name, "--app-id", spec.app_id, f"--dapr-http-port {ports.http}"],
            url=f"http://{host}:{ports.http}", metrics_url=f"http://{host}:{ports.metrics}/metrics", ports=ports,
        )


def ack_model_of(version: str) -> str:
    """Dapr ≥ 1.17 acks a failed delivery (the "1.18" model); ≤ 1.16 leaves it pending."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return "1.18"  # an unreleased build ("edge") is newer than any release
    return "1.18" if (major, minor) >= (1, 17) else "1.16"


@lru_cache(maxsize=8)
def daprd_version(binary: Path) -> str:
    """What `daprd --version` prints (e.g. "1.18.0"); a binary that cannot say is an error."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingBinaryError(f"{binary} cannot be run: {exc}", hint="rebuild it with 'make setup'") from None
    version = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
    if out.returncode != 0 or not version:
        raise MissingBinaryError(f"{binary} --version failed (exit {out.returncode})", hint="rebuild it with 'make setup'")
    return version


def find_daprd(ack_model: str = "1.18") -> Daprd:
    """The installed daprd for `ack_model`, or MissingBinaryError naming the command that builds it."""
    if ack_model not in ACK_MODELS:
        raise ConfigError(f"ack model {ack_model!r} is not one of {', '.join(ACK_MODELS)}")
    name, make = DAPRD_BINARIES[ack_model], DAPRD_BUILD[ack_model]
    try:
        binary = find_binary(name)
    except MissingBinaryError as exc:
        raise MissingBinaryError(
            f"real daprd for the {ack_model} ack model ({name}, Dapr {DAPRD_PINNED[ack_model]}) is not installed: {exc}",
            hint=f"build it with {make} (needs Go; scripts/build-daprd.sh {ack_model}), "
                 f"or put a daprd {DAPRD_PINNED[ack_model]} binary at {tools_bin() / name}",
        ) from None
    version = daprd_version(binary)
    if ack_model_of(version) != ack_model:
        raise ConfigError(f"{binary} is daprd {version}, which implements the {ack_model_of(version)} ack model, "
                          f"not {ack_model}", hint=f"rebuild it with {make}")
    return Daprd(binary=binary, version=version)


def write_daprd_config(config_dir: Path) -> Path:
    """The daprd Configuration file (idempotent: same content for every app)."""
    path = Path(config_dir) / DAPRD_CONFIG_NAME
    if not path.exists() or path.read_text() != DAPRD_CONFIG:
        write_text_atomic(path, DAPRD_CONFIG)
    return path


# ---------------------------------------------------------------------- one daprd on its own


@dataclass
class SidecarHandle:
    """A daprd started on its own: its URLs, log, and stop/kill."""

    process: SidecarProcess
    managed: ManagedProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def metrics_url(self) -> str:
        return self.process.metrics_url

    @property
    def log_file(self) -> Path:
        return self.managed.log_path

    @property
    def pid(self) -> int | None:
        return self.managed.pid

    def alive(self) -> bool:
        return self.managed.alive()

    def wait_outbound(self, timeout: float = 30.0) -> "SidecarHandle":
        """Until the outbound API (publish, state) answers: `/v1.0/healthz/outbound` is 204."""
        return self._wait("/v1.0/healthz/outbound", timeout, expect_subscriptions=False)

    def wait_ready(self, timeout: float = 30.0, *, expect_subscriptions: bool = False) -> "SidecarHandle":
        """Until `/v1.0/healthz` is 204 (initialised, its app's subscriptions read)."""
        return self._wait("/v1.0/healthz", timeout, expect_subscriptions=expect_subscriptions)

    def _wait(self, path: str, timeout: float, *, expect_subscriptions: bool) -> "SidecarHandle":
        deadline = time.monotonic() + timeout
        probe = sidecar_probe(self.url, expect_subscriptions)
        last = "no answer"
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise TargetUnreachableError(
                        f"daprd exited with code {self.managed.returncode} during start-up; "
                        f"last log lines ({self.log_file}):\n{log_tail(self.log_file)}")
                try:
                    if path == "/v1.0/healthz":
                        problem = probe(client)
                    else:
                        status = client.get(self.url + path).status_code
                        problem = None if status == 204 else f"GET {path} answered {status}"
                except NeverHealthy as exc:
                    raise TargetUnreachableError(f"daprd: {exc}") from None
                except httpx.HTTPError as exc:
                    problem = f"GET {path}: {type(exc).__name__}"
                if problem is None:
                    return self
                last = problem
                time.sleep(0.05)
        raise TargetUnreachableError(f"daprd at {self.url} not ready within {timeout:.0f}s ({last}); "
                                     f"last log lines ({self.log_file}):\n{log_tail(self.log_file)}")

    def stop(self, timeout: float = 10.0) -> None:
        self.managed.stop(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.managed.kill(10)

    def __enter__(self) -> "SidecarHandle":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_sidecar(daprd: Daprd, spec: SidecarSpec, env: dict[str, str] | None = None) -> SidecarHandle:
    """Start `daprd` for `spec` (stdout and stderr into `spec.log_file`, `env` on top of this
    process's environment); not waited for."""
    process = daprd.process(spec)
    managed = ManagedProcess(f"sidecar {spec.app_id}", process.cmd, spec.log_file, env={**(env or {}), **process.env})
    managed.start()
    return SidecarHandle(process, managed)


__all__ = [
    "ACK_MODELS", "DAPRD_CONFIG_NAME", "Daprd", "SidecarHandle", "SidecarProcess", "SidecarSpec", "ack_model_of",
    "daprd_version", "find_daprd", "start_sidecar", "write_daprd_config",
]
