"""How to start the Dapr sidecar of one app: one small interface, two implementations.

A `SidecarSpec` says what any sidecar needs — app id, its own ports, where its app listens
(the app channel), its resources folder, its log file. A `SidecarKind` turns it into a
`SidecarProcess`: the command line, environment additions, command-line markers and URLs
that the launcher runs and records in stack.json. Because everything needed to run a sidecar
again is in that record (`cmd`, `env`, `log`, `match`), `down`, `status` and process faults
that restart a process from its recorded command work the same for both kinds, and so does
anything else that starts one sidecar per app (a runner for the real Kugelpos code).

* `daprd` — the real Dapr sidecar, `tools/bin/daprd` (built by `make setup`, see
  scripts/build-daprd.sh) or `tools/bin/daprd-1.16` for the ≤ 1.16 ack model. Standalone:
  no placement, no scheduler, every listener on loopback, and name resolution that does not
  announce the app on the network (daprd's standalone default, mDNS, multicasts on every
  interface). Ack model, redelivery and Resiliency are Dapr's own.
* `standin` — kugeldrill's Dapr-compatible sidecar (`python -m kugeldrill.stack.sidecar`),
  a lighter fallback whose differences from daprd are listed in stack/sidecar/README.md.

`choose_sidecar(requested, ack_model)` picks the kind: the one asked for, or (None) real
daprd where it is installed and the stand-in sidecar otherwise, with a note saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from kugeldrill.ground.errors import ConfigError, MissingBinaryError
from kugeldrill.ground.tools import find_binary
from kugeldrill.stack.launch.plan import HOST, SidecarPorts

SIDECAR_KINDS: tuple[str, ...] = ("daprd", "standin")
ACK_MODELS: tuple[str, ...] = ("1.18", "1.16")
#: `KUGELDRILL_SIDECAR=standin|daprd` sets the default kind (e.g. to run the whole test
#: suite on one sidecar); an explicit choice (option, scenario, CLI flag) wins over it.
SIDECAR_ENV = "KUGELDRILL_SIDECAR"
#: The daprd binary for each ack model: ≥ 1.17 acks failed deliveries, ≤ 1.16 leaves them pending.
DAPRD_BINARIES = {"1.18": "daprd", "1.16": "daprd-1.16"}
DAPRD_PINNED = {"1.18": "1.18.0", "1.16": "1.16.0"}
DAPRD_CONFIG_NAME = "daprd-config.yaml"

# daprd's standalone name resolution is mDNS, which announces `<app-id> -> host:port` by
# multicast on every interface. The kubernetes resolver only formats a DNS name when a
# service invocation asks for one (the stand-in makes none), so nothing leaves loopback.
DAPRD_CONFIG = """\
# Rendered by kugeldrill (stack.launch.sidecars): the Configuration every daprd of the stack reads.
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
    """What one app's sidecar needs, whichever kind runs it."""

    app_id: str
    ports: SidecarPorts
    app_address: str  # the app channel: where the sidecar reaches its app (the app@X proxy)
    app_port: int
    resources_dir: Path  # rendered Components / Resiliency (stack.components.render_components)
    log_file: Path
    config_dir: Path  # where a kind may write its own configuration files
    host: str = HOST  # every listener binds here (loopback)


@dataclass(frozen=True)
class SidecarProcess:
    """How to run one sidecar: what the launcher starts and records in stack.json."""

    kind: str
    version: str
    ack_model: str
    cmd: list[str]
    env: dict[str, str]  # additions to the launcher's environment (recorded: a restart needs them)
    match: list[str]  # command-line markers: `down` signals a pid only while they still match
    url: str  # the Dapr HTTP API (`/v1.0/...`)
    metrics_url: str  # Prometheus text
    ports: SidecarPorts

    def record(self) -> dict[str, object]:
        """The stack.json entry (contracts §2) for this sidecar; `pid` is filled in at start."""
        return {
            "kind": self.kind, "version": self.version, "url": self.url, "port": self.ports.http,
            "ports": {"http": self.ports.http, "grpc": self.ports.grpc, "metrics": self.ports.metrics,
                      "internal_grpc": self.ports.internal_grpc},
            "metrics_url": self.metrics_url, "pid": None, "cmd": list(self.cmd), "env": dict(self.env),
            "match": list(self.match),
        }


class SidecarKind(Protocol):
    """One way of running a Dapr sidecar."""

    name: str  # "daprd" | "standin"
    version: str
    ack_model: str  # the ack model it implements: "1.18" (≥ 1.17) or "1.16"

    def describe(self) -> str: ...
    def process(self, spec: SidecarSpec) -> SidecarProcess: ...


@dataclass(frozen=True)
class DaprdSidecar:
    """The real daprd, standalone, on loopback."""

    binary: Path
    version: str
    name: str = "daprd"
    log_level: str = "info"

    @property
    def ack_model(self) -> str:
        return ack_model_of(self.version)

    def describe(self) -> str:
        return f"daprd {self.version} ({self.binary})"

    def process(self, spec: SidecarSpec) -> SidecarProcess:
        """The daprd command line; writes the shared Configuration into `spec.config_dir`."""
        config = write_daprd_config(spec.config_dir)
        ports, host = spec.ports, spec.host
        cmd = [
            str(self.binary),
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
            kind=self.name, version=self.version, ack_model=self.ack_model, cmd=cmd, env=env,
            match=[self.binary.name, "--app-id", spec.app_id, f"--dapr-http-port {ports.http}"],
            url=f"http://{host}:{ports.http}", metrics_url=f"http://{host}:{ports.metrics}/metrics", ports=ports,
        )


@dataclass(frozen=True)
class StandinSidecar:
    """kugeldrill's own Dapr-compatible sidecar (one Python process per app)."""

    ack_model: str = "1.18"
    python: str = sys.executable
    base_cmd: tuple[str, ...] | None = None  # replaces `python -m kugeldrill.stack.sidecar` (launcher tests)
    name: str = "standin"

    @property
    def version(self) -> str:
        return _package_version()

    def describe(self) -> str:
        return f"standin (kugeldrill's Dapr-compatible sidecar, ack model {self.ack_model})"

    def process(self, spec: SidecarSpec) -> SidecarProcess:
        base = list(self.base_cmd) if self.base_cmd else [self.python, "-m", "kugeldrill.stack.sidecar"]
        port = spec.ports.http
        cmd = [*base, "--app-id", spec.app_id, "--dapr-http-port", str(port), "--app-port", str(spec.app_port),
               "--app-host", spec.app_address, "--resources-path", str(spec.resources_dir),
               "--log-file", str(spec.log_file), "--ack-model", self.ack_model]
        url = f"http://{spec.host}:{port}"
        return SidecarProcess(
            kind=self.name, version=self.version, ack_model=self.ack_model, cmd=cmd, env={},
            match=["--dapr-http-port", str(port), "--app-id", spec.app_id], url=url,
            metrics_url=url + "/metrics",  # served on the API port (daprd: its own port)
            ports=spec.ports,
        )


@dataclass(frozen=True)
class SidecarChoice:
    """The kind chosen for a stack, and, when it was not the one asked for, why."""

    kind: SidecarKind
    requested: str | None
    note: str | None = None

    def summary(self) -> dict[str, object]:
        """The `sidecar` block of stack.json."""
        out: dict[str, object] = {"kind": self.kind.name, "version": self.kind.version,
                                  "ack_model": self.kind.ack_model, "requested": self.requested or "auto"}
        if isinstance(self.kind, DaprdSidecar):
            out["binary"] = str(self.kind.binary)
        if self.note:
            out["note"] = self.note
        return out


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


def find_daprd(ack_model: str = "1.18") -> DaprdSidecar:
    """The installed daprd for `ack_model`, or MissingBinaryError saying how to get it."""
    if ack_model not in ACK_MODELS:
        raise ConfigError(f"ack model {ack_model!r} is not one of {', '.join(ACK_MODELS)}")
    name = DAPRD_BINARIES[ack_model]
    make = ("'kugeldrill setup' (in a checkout: 'make setup')" if ack_model == "1.18"
            else "'kugeldrill setup --ack-model 1.16' (in a checkout: 'make daprd-1.16')")
    try:
        binary = find_binary(name)
    except MissingBinaryError as exc:
        raise MissingBinaryError(
            f"real daprd for the {ack_model} ack model ({name}, Dapr {DAPRD_PINNED[ack_model]}) is not installed: {exc}",
            hint=f"build it with {make} (needs Go; see scripts/build-daprd.sh), or use the stand-in sidecar "
                 "(--sidecar standin, scenario stack.sidecar: standin)",
        ) from None
    version = daprd_version(binary)
    if ack_model_of(version) != ack_model:
        raise ConfigError(f"{binary} is daprd {version}, which implements the {ack_model_of(version)} ack model, "
                          f"not {ack_model}", hint=f"rebuild it with {make}")
    return DaprdSidecar(binary=binary, version=version)


def choose_sidecar(requested: str | None, ack_model: str = "1.18", *, python: str = sys.executable,
                   standin_cmd: list[str] | None = None) -> SidecarChoice:
    """The sidecar kind for a stack.

    `requested` is "daprd", "standin" or None (auto: `$KUGELDRILL_SIDECAR` if set, else real
    daprd where it is installed, else the stand-in sidecar with a note). `standin_cmd`
    replaces the stand-in's command (the launcher's own tests) and implies the stand-in.
    """
    if requested is not None and requested not in SIDECAR_KINDS:
        raise ConfigError(f"sidecar kind {requested!r} is not one of {', '.join(SIDECAR_KINDS)}")
    if ack_model not in ACK_MODELS:
        raise ConfigError(f"ack model {ack_model!r} is not one of {', '.join(ACK_MODELS)}")
    standin = StandinSidecar(ack_model=ack_model, python=python,
                             base_cmd=tuple(standin_cmd) if standin_cmd else None)
    if standin_cmd:
        if requested == "daprd":
            raise ConfigError("a replaced sidecar command runs the stand-in sidecar; it cannot be combined with daprd")
        return SidecarChoice(standin, requested)
    wanted = requested
    if wanted is None:
        env_kind = os.environ.get(SIDECAR_ENV, "").strip()
        if env_kind:
            if env_kind not in SIDECAR_KINDS:
                raise ConfigError(f"{SIDECAR_ENV}={env_kind!r} is not one of {', '.join(SIDECAR_KINDS)}")
            wanted = env_kind
    if wanted == "standin":
        return SidecarChoice(standin, requested)
    if wanted == "daprd":
        return SidecarChoice(find_daprd(ack_model), requested)
    try:
        return SidecarChoice(find_daprd(ack_model), requested)
    except (MissingBinaryError, ConfigError) as exc:
        note = f"real daprd is not available ({exc}); using the stand-in sidecar"
        if exc.hint:
            note += f" — {exc.hint}"
        return SidecarChoice(standin, requested, note=note)


def write_daprd_config(config_dir: Path) -> Path:
    """The daprd Configuration file (idempotent: same content for every app)."""
    path = Path(config_dir) / DAPRD_CONFIG_NAME
    if not path.exists() or path.read_text() != DAPRD_CONFIG:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(DAPRD_CONFIG)
        os.replace(tmp, path)
    return path


@lru_cache(maxsize=1)
def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("kugeldrill")
    except Exception:  # noqa: BLE001 - a checkout without metadata still runs
        return "unknown"


__all__ = [
    "ACK_MODELS", "DAPRD_CONFIG_NAME", "SIDECAR_ENV", "SIDECAR_KINDS", "DaprdSidecar", "SidecarChoice",
    "SidecarKind", "SidecarProcess", "SidecarSpec", "StandinSidecar", "ack_model_of", "choose_sidecar",
    "daprd_version", "find_daprd", "write_daprd_config",
]
