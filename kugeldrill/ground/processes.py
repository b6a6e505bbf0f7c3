"""Process actions as records, and starting a process detached — shared by the rooms that
act on processes: the stand-in (which knows its processes), chaos (whose timeline and
watchdog kill, pause and restart them) and the roof (targets' command templates).

chaos defines the interface (`chaos.processes.ProcessControl`) and the stack implements
it, but chaos and stack must not import each other; the record they exchange lives here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError

ACTIONS = ("kill", "pause", "resume", "stop", "start")


class ProcessActionError(DrillError):
    """An action on a process target failed; the message names the target, the action and why."""


@dataclass(frozen=True)
class ProcessResult:
    """What one action on one process target did.

    outcome: `done`; `already` (nothing to do: already running / already continued, so
    healing is idempotent); `escalated` (a graceful stop needed SIGKILL after its grace).
    `facts` carries what the implementation measured on the way (e.g. seconds until the
    old process was gone) for the timeline record.
    """

    target: str
    action: str
    pids_before: tuple[int, ...] = ()
    pids_after: tuple[int, ...] = ()
    outcome: str = "done"
    detail: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON form written into timeline.json events."""
        out: dict[str, Any] = {"target": self.target, "action": self.action, "pids_before": list(self.pids_before),
                               "pids_after": list(self.pids_after), "outcome": self.outcome}
        if self.detail:
            out["detail"] = self.detail
        if self.facts:
            out["facts"] = dict(self.facts)
        return out


def spawn_detached(argv: Sequence[str], log: str | Path, *, env: Mapping[str, str] | None = None,
                   cwd: str | Path | None = None) -> subprocess.Popen:
    """Start `argv` in its own session, stdout+stderr appended to `log`, stdin closed.

    `env` holds overrides on top of this process's environment (what a state file or a
    lease records: the few variables a launcher set, never a copy of the whole
    environment). Its own session keeps a terminal's Ctrl-C away from it.
    """
    log_path = Path(log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update({str(k): str(v) for k, v in (env or {}).items()})
    with open(log_path, "ab") as out:
        return subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
                                close_fds=True)
