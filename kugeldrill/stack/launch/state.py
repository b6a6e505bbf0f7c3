"""The stack state file (contracts §2): written as the stack starts, read by down/status.

Written atomically (temp file + rename) after every started part, so a launcher that dies
half-way still leaves a file from which `kugeldrill stack down` can stop what was started.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError, DrillError

STATE_VERSION = 1
STATE_NAME = "stack.json"


class StateFile:
    """One `stack.json`; `update` applies a change under a lock and rewrites the file."""

    def __init__(self, path: Path, state: dict[str, Any] | None = None) -> None:
        self.path = path
        self.state: dict[str, Any] = state if state is not None else {}
        self._lock = threading.RLock()

    def write(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(self.state, indent=2, sort_keys=False))
            os.replace(tmp, self.path)

    def update(self, change: Any) -> None:
        """Call `change(state)` and persist the result, atomically with respect to other threads."""
        with self._lock:
            change(self.state)
            self.write()

    def remove(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)


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
