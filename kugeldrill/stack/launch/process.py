"""One child process with its log, and the record that runs it again.

Everything the launcher starts — Redis, Toxiproxy, MongoDB, services, sidecars, the crash
supervisor — is a `ManagedProcess`: started in its own session (a terminal's Ctrl-C reaches
the launcher, not the child), stdout and stderr appended to its log, and `stop()` always
reaps it.

A process that may be started again by someone else (the crash supervisor, a process fault,
the watchdog or `kugeldrill heal` after the drill died) is started from a `Command`, the
part of its state-file entry that says how: `cmd` (argv), `env` (variables set on top of
the starter's own environment — never a copy of the whole environment), `cwd` and `log`.
The launcher itself starts it from the same record, so every restart runs exactly what ran
first.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.pids import pid_stopped
from kugeldrill.ground.processes import spawn_detached


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
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


@dataclass(frozen=True)
class Command:
    """How to run one recorded process: the `cmd`, `env`, `cwd` and `log` of its state entry."""

    argv: tuple[str, ...]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)  # set on top of the starter's environment
    cwd: Path | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "Command":
        cwd = entry.get("cwd")
        return cls(tuple(str(a) for a in entry["cmd"]), Path(entry["log"]),
                   {str(k): str(v) for k, v in (entry.get("env") or {}).items()}, Path(cwd) if cwd else None)


def without_variables(argv: list[str], names: list[str]) -> list[str]:
    """`argv` run without the variables `names` of the starter's environment (`env -u NAME ...`).

    A record's `env` can only add variables; a process that must not inherit some (the native
    runner's services must not see the launcher's PYTHONPATH) says so in its command line,
    so whoever starts it again from the record runs it the same way."""
    if not names:
        return list(argv)
    return ["env", *[arg for name in names for arg in ("-u", name)], *argv]


@dataclass
class ManagedProcess:
    """A child process with its log; `stop()` always reaps it."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: Mapping[str, str] | None = None  # variables set on top of this process's environment
    cwd: Path | None = None  # working directory (None: inherited)

    @classmethod
    def of(cls, name: str, command: Command) -> "ManagedProcess":
        return cls(name, list(command.argv), command.log, env=dict(command.env), cwd=command.cwd)

    def start(self) -> "ManagedProcess":
        self.proc = spawn_detached(self.argv, self.log_path, env=self.env, cwd=self.cwd)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float) -> bool:
        """True once the process has exited (and is reaped) within `timeout` seconds."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            if pid_stopped(self.proc.pid):  # paused by a fault: SIGTERM acts only once continued
                self.proc.send_signal(signal.SIGCONT)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(timeout)
        except ProcessLookupError:
            pass

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL, as a crash would; reaped."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def fail(self, what: str) -> DrillError:
        tail = log_tail(self.log_path)
        return DrillError(f"{self.name} {what}; last log lines ({self.log_path}):\n{tail}")


__all__ = ["Command", "ManagedProcess", "log_tail", "wait_for", "without_variables"]
