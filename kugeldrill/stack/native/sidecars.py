"""Which Dapr sidecar serves each real Kugelpos app, behind one small interface.

Kugelpos talks to Dapr only over HTTP on `localhost:<port>/v1.0` (publish, state, healthz),
so any sidecar that serves that API on the app's port works. `standin` is the project's
Dapr-compatible sidecar (`python -m kugeldrill.stack.sidecar`, kugeldrill/stack/sidecar/README.md).
A sidecar kind only says how to start one process and which command-line markers identify
it; the native launcher does the rest (ports, links, components, health, stopping).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kugeldrill.ground.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SidecarSpec:
    app_id: str
    dapr_http_port: int
    app_host: str
    app_port: int
    resources: Path
    log_file: Path


class SidecarKind(Protocol):
    name: str

    def command(self, spec: SidecarSpec) -> list[str]: ...

    def match(self, spec: SidecarSpec) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class StandinSidecar:
    """The project's sidecar, with Dapr 1.18's acknowledgement model (Kugelpos runs daprd:latest)."""

    python: str = sys.executable
    ack_model: str = "1.18"
    name: str = "standin"

    def command(self, spec: SidecarSpec) -> list[str]:
        return [self.python, "-m", "kugeldrill.stack.sidecar", "--app-id", spec.app_id,
                "--dapr-http-port", str(spec.dapr_http_port), "--app-port", str(spec.app_port),
                "--app-host", spec.app_host, "--resources-path", str(spec.resources),
                "--log-file", str(spec.log_file), "--ack-model", self.ack_model]

    def match(self, spec: SidecarSpec) -> list[str]:
        return ["--dapr-http-port", str(spec.dapr_http_port), "--app-id", spec.app_id]


SIDECAR_KINDS = ("standin",)


def sidecar_kind(name: str, *, python: str = sys.executable) -> SidecarKind:
    if name == "standin":
        return StandinSidecar(python=python)
    raise ConfigError(f"unknown sidecar kind {name!r}", hint=f"known: {', '.join(SIDECAR_KINDS)}")
