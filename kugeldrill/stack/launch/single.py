"""One sidecar process started on its own and waited for: for anything that runs a sidecar
outside a whole stand-in (a runner for the real Kugelpos services, conformance tests, benches).

The launcher starts its sidecars the same way (the `cmd` and `env` of a `SidecarProcess`, the
log file as stdout) and waits with the same probes (`launch.health`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from kugeldrill.ground.errors import TargetUnreachableError
from kugeldrill.stack.launch.health import NeverHealthy, sidecar_probe
from kugeldrill.stack.launch.sidecars import SidecarKind, SidecarProcess, SidecarSpec
from kugeldrill.stack.launch.process import ManagedProcess, log_tail


@dataclass
class SidecarHandle:
    """A started sidecar process: its URLs, log, and stop/kill."""

    process: SidecarProcess
    managed: ManagedProcess

    @property
    def kind(self) -> str:
        return self.process.kind

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def metrics_url(self) -> str:
        return self.process.metrics_url

    @property
    def log_file(self):  # noqa: ANN201 - a Path
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
        """Until `/v1.0/healthz` is 204 (daprd: initialised, its app's subscriptions read)."""
        return self._wait("/v1.0/healthz", timeout, expect_subscriptions=expect_subscriptions)

    def _wait(self, path: str, timeout: float, *, expect_subscriptions: bool) -> "SidecarHandle":
        deadline = time.monotonic() + timeout
        probe = sidecar_probe(self.url, expect_subscriptions)
        last = "no answer"
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise TargetUnreachableError(
                        f"{self.kind} sidecar exited with code {self.managed.proc.returncode if self.managed.proc else None} "
                        f"during start-up; last log lines ({self.log_file}):\n{log_tail(self.log_file)}")
                try:
                    if path == "/v1.0/healthz":
                        problem = probe(client)
                    else:
                        status = client.get(self.url + path).status_code
                        problem = None if status == 204 else f"GET {path} answered {status}"
                except NeverHealthy as exc:
                    raise TargetUnreachableError(f"{self.kind} sidecar: {exc}") from None
                except httpx.HTTPError as exc:
                    problem = f"GET {path}: {type(exc).__name__}"
                if problem is None:
                    return self
                last = problem
                time.sleep(0.05)
        raise TargetUnreachableError(f"{self.kind} sidecar at {self.url} not ready within {timeout:.0f}s ({last}); "
                                     f"last log lines ({self.log_file}):\n{log_tail(self.log_file)}")

    def stop(self, timeout: float = 10.0) -> None:
        self.managed.stop(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.managed.kill(10)


def start_sidecar_process(kind: SidecarKind, spec: SidecarSpec, env: dict[str, str] | None = None) -> SidecarHandle:
    """Start `kind`'s sidecar for `spec` (stdout and stderr into `spec.log_file`, `env` on top of
    this process's environment); not waited for."""
    process = kind.process(spec)
    managed = ManagedProcess(f"sidecar {spec.app_id}", process.cmd, spec.log_file, env={**(env or {}), **process.env})
    managed.start()
    return SidecarHandle(process, managed)
