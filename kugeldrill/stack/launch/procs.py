"""Process identity and stopping by pid, for processes this launcher did or did not spawn.

`down` may run in another process than `up` (the CLI), so it only has pids. A pid can be
reused after a reboot or a crash; before signalling, we check that /proc/<pid>/cmdline
still contains the markers recorded at start (program name and its port or config path),
so `down` never kills an unrelated process. The /proc readers live in `ground.pids`
(chaos' watchdog needs them too); they are re-exported here.
"""

from __future__ import annotations

import os
import signal
import socket

from kugeldrill.ground.pids import gone_within as _gone_within
from kugeldrill.ground.pids import pid_matches, pid_running, pid_stopped, proc_state, read_cmdline, reap as _reap

__all__ = ["pid_matches", "pid_running", "pid_stopped", "proc_state", "read_cmdline", "stop_pid", "port_listening"]


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
        if pid_stopped(pid):  # a paused (SIGSTOPped) process handles SIGTERM only once continued
            os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return "gone"
    if _gone_within(pid, timeout):
        return "stopped"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    return "killed" if _gone_within(pid, timeout) else "unkillable"


def port_listening(host: str, port: int, timeout: float = 0.3) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
