"""A JSON state file shared by processes: atomic rewrites under an advisory lock.

`stack.json` is written by the launcher, by the crash supervisor (a separate process
after `kugeldrill stack up`), by process faults that restart a part, and by the watchdog
or `kugeldrill heal` after the drill died. Each writer takes an exclusive `flock` on
`<file>.lock`, re-reads the file, applies its change and replaces the file atomically,
so no writer loses another's update and no reader ever sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def lock_path(path: Path) -> Path:
    """The lock file every writer of `path` agrees on."""
    return path.with_name(path.name + ".lock")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock for writers of `path` (held until the block ends)."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write to a temp file beside `path`, then rename over it (readers see old or new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The file's JSON, or None if it does not exist or is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def update_json(path: Path, change: Callable[[Any], Any]) -> Any:
    """Locked read-modify-write: `change(data)` mutates (or returns a replacement for) the data.

    Returns the data as written. A missing file is passed to `change` as None.
    """
    with file_lock(path):
        data = read_json(path)
        result = change(data)
        if result is not None:
            data = result
        write_json_atomic(path, data)
        return data


def set_key(path: Path, keys: list[str], value: Any) -> bool:
    """Set `data[k0][k1]...` = value in the file under the lock; False if the path is absent."""
    done = False

    def change(data: Any) -> None:
        nonlocal done
        node = data
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                return
            node = node[key]
        if isinstance(node, dict):
            node[keys[-1]] = value
            done = True

    if not path.exists():
        return False
    update_json(path, change)
    return done
