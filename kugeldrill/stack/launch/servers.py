"""The real servers behind every deployment the launcher starts: redis-server and toxiproxy-server.

Used by the launcher and by the tests' fixtures, so both run the same binaries the same
way: on a free loopback port, with a log file, waited for until they answer, and stopped
(terminate, then kill) without leaving a process behind. Each has `process` (its
`ManagedProcess`) and `record()` (its state-file entry), which is what `Launcher.start_server`
needs of any server (the native runner's MongoDB server too).
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.ports import free_port
from kugeldrill.ground.tools import find_binary
from kugeldrill.stack.launch.process import ManagedProcess, wait_for


def _redis_pid(host: str, port: int) -> int | None:
    """The process id of the Redis answering on `port` (INFO server), None if it does not say.

    A free port handed out by the kernel can be taken by someone else before our server binds
    it (another deployment's Toxiproxy proxy, forwarding to *its* Redis): an open port, even a
    PONG, does not prove the server is ours, and a deployment wired to another one's Redis
    shares its streams and consumer groups."""
    with socket.create_connection((host, port), timeout=0.5) as sock:
        sock.settimeout(0.5)
        sock.sendall(b"INFO server\r\n")
        data = b""
        while b"process_id:" not in data or not data.split(b"process_id:", 1)[1].count(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


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
        process = self.process

        def settled() -> bool:  # ours answers, or it exited (a port taken: its log says so)
            return not process.alive() or _redis_pid(self.host, self.port) == process.pid

        if not wait_for(settled, timeout) or not process.alive():
            self.process.stop()
            raise self.process.fail(f"did not answer on {self.host}:{self.port} within {timeout:.0f}s")
        return self

    def record(self) -> dict[str, Any]:
        """The state-file entry of a started server (contracts §2)."""
        assert self.process is not None, "record() of a server that was not started"
        return {"url": self.url, "host": self.host, "port": self.port, "pid": self.process.pid,
                "log": str(self.process.log_path), "cmd": list(self.process.argv),
                "match": ["redis-server", f":{self.port}"], "persistence": "aof" if self.persist else "none"}

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would (for recovery tests)."""
        if self.process:
            self.process.kill()


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
        env = {"LOG_LEVEL": os.environ.get("TOXIPROXY_LOG_LEVEL", "warn")}
        self.process = ManagedProcess("toxiproxy-server", argv, self.workdir / "toxiproxy.log", env=env)
        self.process.start()

        def ready() -> bool:
            return httpx.get(f"{self.api}/version", timeout=1.0).status_code == 200

        if not wait_for(lambda: self.process.alive() and ready(), timeout):
            self.process.stop()
            raise self.process.fail(f"did not answer on {self.api} within {timeout:.0f}s")
        return self

    def record(self) -> dict[str, Any]:
        """The state-file entry of a started server (contracts §2)."""
        assert self.process is not None, "record() of a server that was not started"
        return {"api": self.api, "host": self.host, "port": self.port, "pid": self.process.pid,
                "log": str(self.process.log_path), "cmd": list(self.process.argv), "env": dict(self.process.env or {}),
                "match": ["toxiproxy-server", str(self.port)]}

    def stop(self) -> None:
        if self.process:
            self.process.stop()
