"""The stack state file (contracts §2): written as the stack starts, read by down/status.

Written atomically (temp file + rename) after every started part, so a launcher that dies
half-way still leaves a file from which `kugeldrill stack down` can stop what was started.
Other processes write it too (the detached crash supervisor, a process fault's restart,
the watchdog or `kugeldrill heal` after a drill died): every update takes the file's lock
and re-reads it first (`ground.jsonfile`), so nobody's change is lost.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.jsonfile import file_lock, lock_path, read_json, write_json_atomic

STATE_VERSION = 1
STATE_NAME = "stack.json"


class StateFile:
    """One `stack.json`; `update` applies a change under a lock and rewrites the file."""

    def __init__(self, path: Path, state: dict[str, Any] | None = None) -> None:
        self.path = path
        self.state: dict[str, Any] = state if state is not None else {}
        self._lock = threading.RLock()

    def write(self) -> None:
        """Write the in-memory state as it is (the launcher's first write of a new stack)."""
        with self._lock, file_lock(self.path):
            write_json_atomic(self.path, self.state)

    def update(self, change: Any) -> None:
        """Re-read the file, call `change(state)`, persist: atomic with respect to other
        threads and, through the file lock, to other processes writing the same file.

        The dict is refreshed in place, so holders of `state` see other writers' changes."""
        with self._lock, file_lock(self.path):
            self._refresh_from_disk()
            change(self.state)
            write_json_atomic(self.path, self.state)

    def reload(self) -> dict[str, Any]:
        """Pick up other processes' changes (a supervisor process watching pids others restart)."""
        with self._lock:
            self._refresh_from_disk()
        return self.state

    def _refresh_from_disk(self) -> None:
        # Key by key, never clear(): a reader in another thread sees old or new values, never none.
        disk = read_json(self.path)
        if isinstance(disk, dict) and disk.get("version") == STATE_VERSION:
            self.state.update(disk)
            for key in [k for k in self.state if k not in disk]:
                del self.state[key]

    def remove(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)
            lock_path(self.path).unlink(missing_ok=True)


def read_state(path: Path) -> dict[str, Any]:
    """Load and sanity-check a state file; every problem is a DrillError naming the file."""
    if path.is_dir():
        path = path / STATE_NAME
    if not path.exists():
        raise DrillError(
            f"no stack state file at {path}",
            hint="start a stack with 'kugeldrill stack up' (or pass the --state-dir it used)",
        )
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"stack state file {path} is unreadable: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(
            f"stack state file {path} has version {state.get('version') if isinstance(state, dict) else '?'}; "
            f"expected {STATE_VERSION}"
        )
    return state
