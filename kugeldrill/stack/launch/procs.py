"""Process identity and stopping by pid, for processes this launcher did or did not spawn.

`down` may run in another process than `up` (the CLI), so it only has pids. A pid can be
reused after a reboot or a crash; before signalling, we check that /proc/<pid>/cmdline
still contains the markers recorded at start (program name and its port or config path),
so `down` never kills an unrelated process.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def read_cmdline(pid: int) -> str | None:
    """The command line of `pid` as one space-joined string, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return " ".join(part for part in raw.decode(errors="replace").split("\0") if part)


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) S ..." - comm may contain spaces or parentheses; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else None


def pid_running(pid: int | None) -> bool:
    """True if `pid` exists and is not a zombie (an exited child nobody reaped yet)."""
    if not pid:
        return False
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def pid_matches(pid: int | None, markers: list[str]) -> bool:
    """True if `pid` runs and its command line contains every marker."""
    if not pid_running(pid):
        return False
    cmdline = read_cmdline(pid)  # type: ignore[arg-type]
    return cmdline is not None and all(marker in cmdline for marker in markers)


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child (otherwise init does it)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pid(pid: int | None, markers: list[str], timeout: float = 5.0) -> str:
    """SIGTERM, then SIGKILL after `timeout`; only if the pid still is the recorded program.

    Returns what happened: "stopped", "killed", "gone" (already exited) or
    "not ours" (the pid now belongs to another program; left alone).
    """
    if not pid or not pid_running(pid):
        if pid:
            _reap(pid)
        return "gone"
    if not pid_matches(pid, markers):
        return "not ours"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"
    if _gone_within(pid, timeout):
        return "stopped"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    return "killed" if _gone_within(pid, timeout) else "unkillable"


def _gone_within(pid: int, timeout: float) -> bool:
    """Reap and poll until the pid is gone or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_running(pid):
            return True
        time.sleep(0.05)
    return False


def port_listening(host: str, port: int, timeout: float = 0.3) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
