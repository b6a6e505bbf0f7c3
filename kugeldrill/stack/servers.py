"""Starting and stopping the real servers a drill needs: redis-server and toxiproxy-server.

Used by the launcher and by the tests' fixtures, so both run the same binaries the same
way: on a free loopback port, with a log file, waited for until they answer, and stopped
(terminate, then kill) without leaving a process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.pids import pid_stopped
from kugeldrill.ground.ports import free_port
from kugeldrill.ground.tools import find_binary


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - a not-yet-ready server raises all sorts
            pass
        time.sleep(interval)
    return False


def log_tail(path: Path | None, lines: int = 20) -> str:
    if not path or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """A child process with its log; `stop()` always reaps it."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None  # working directory (None: inherited)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the child
            )
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            if pid_stopped(self.proc.pid):  # paused by a fault: SIGTERM acts only once continued
                self.proc.send_signal(signal.SIGCONT)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass

    def fail(self, what: str) -> DrillError:
        tail = log_tail(self.log_path)
        return DrillError(f"{self.name} {what}; last log lines ({self.log_path}):\n{tail}")


def _port_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


@dataclass
class RedisServer:
    """A throw-away redis-server on loopback (no persistence unless asked)."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kd-redis-")))
    port: int = 0
    host: str = "127.0.0.1"
    persist: bool = False
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.port = self.port or free_port(self.host)
        binary = find_binary("redis-server")
        argv = [
            str(binary), "--port", str(self.port), "--bind", self.host,
            "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no",
        ]
        if self.persist:
            argv[argv.index("--appendonly") + 1] = "yes"
        self.process = ManagedProcess("redis-server", argv, self.workdir / "redis.log")
        self.process.start()
        if not wait_for(lambda: self.process.alive() and _port_open(self.host, self.port), timeout):
            self.process.stop()
            raise self.process.fail(f"did not answer on {self.host}:{self.port} within {timeout:.0f}s")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would (for recovery tests)."""
        if self.process and self.process.proc:
            self.process.proc.kill()
            self.process.proc.wait(timeout=5)


@dataclass
class ToxiproxyServer:
    """A toxiproxy-server with its API on loopback."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kd-toxiproxy-")))
    port: int = 0
    host: str = "127.0.0.1"
    process: ManagedProcess | None = None

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ToxiproxyServer":
        self.port = self.port or free_port(self.host)
        binary = find_binary("toxiproxy-server")
        argv = [str(binary), "-host", self.host, "-port", str(self.port)]
        env = dict(os.environ, LOG_LEVEL=os.environ.get("TOXIPROXY_LOG_LEVEL", "warn"))
        self.process = ManagedProcess("toxiproxy-server", argv, self.workdir / "toxiproxy.log", env=env)
        self.process.start()

        def ready() -> bool:
            return httpx.get(f"{self.api}/version", timeout=1.0).status_code == 200

        if not wait_for(lambda: self.process.alive() and ready(), timeout):
            self.process.stop()
            raise self.process.fail(f"did not answer on {self.api} within {timeout:.0f}s")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
