"""Process identity and state by pid, read from /proc (Linux).

Several rooms act on processes they may not have started themselves — the launcher's
`down`, the stand-in's process faults, the watchdog and `kugeldrill heal` after the drill
died — so they only have pids. A pid can be reused after a crash; before signalling,
callers check that /proc/<pid>/cmdline still contains the markers recorded at start
(program name and its port or config path), so an unrelated process is never touched.

States are the kernel's one-letter codes (`man 5 proc`): R running, S sleeping, D disk
sleep, T stopped (SIGSTOP), t traced, Z zombie, X dead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

STOPPED_STATES = frozenset({"T", "t"})
DEAD_STATES = frozenset({"Z", "X"})


def read_cmdline(pid: int) -> str | None:
    """The command line of `pid` as one space-joined string, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return " ".join(part for part in raw.decode(errors="replace").split("\0") if part)


def proc_state(pid: int) -> str | None:
    """The one-letter state of `pid` from /proc/<pid>/stat, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) S ..." - comm may contain spaces or parentheses; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else None


def pid_running(pid: int | None) -> bool:
    """True if `pid` exists and is not a zombie (an exited child nobody reaped yet).

    A stopped (SIGSTOPped) process counts as running: it exists and holds its ports.
    """
    if not pid:
        return False
    state = proc_state(pid)
    return state is not None and state not in DEAD_STATES


def pid_stopped(pid: int | None) -> bool:
    """True if `pid` exists and is stopped by a signal (state T): frozen, not dead."""
    return pid is not None and pid > 0 and proc_state(pid) in STOPPED_STATES


def pid_matches(pid: int | None, markers: Iterable[str]) -> bool:
    """True if `pid` runs and its command line contains every marker."""
    if pid is None or not pid_running(pid):
        return False
    cmdline = read_cmdline(pid)
    return cmdline is not None and all(marker in cmdline for marker in markers)


def reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child (otherwise init does it)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def gone_within(pid: int, timeout: float, interval: float = 0.02) -> bool:
    """Reap and poll until the pid is gone (or a zombie) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not pid_running(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def state_within(pid: int, states: Iterable[str], timeout: float, interval: float = 0.005) -> bool:
    """Poll until `pid` is in one of `states` (e.g. {"T"} after SIGSTOP) or `timeout` passes.

    Signals are delivered asynchronously: kill() returns before the target has stopped or
    continued, so a caller that records "paused at" waits for the kernel to say so.
    """
    wanted = set(states)
    deadline = time.monotonic() + timeout
    while True:
        if proc_state(pid) in wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def signal_group(pid: int, sig: int) -> None:
    """`sig` to the process and, when it leads its own process group, to the whole group.

    Everything the launcher (or a restarter) starts runs in its own session, so its group is
    the process and its children: a multi-worker server (uvicorn --workers N) pauses, continues
    and dies with its workers instead of leaving them serving. A process that does not lead a
    group (started by someone else) gets the signal alone. SIGTERM (`stop`) goes to the process
    only: a server shuts its workers down itself."""
    try:
        leads = os.getpgid(pid) == pid
    except ProcessLookupError:
        return
    if leads:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)
