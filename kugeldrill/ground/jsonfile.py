"""Files replaced atomically, and JSON state files shared by processes under an advisory lock.

`atomic_file` is the one way kugeldrill replaces a file: written to a temporary file
beside it and renamed over it, so a reader (or a crash) sees the old file or the new one,
never half of one; on an error the temporary file is removed and the old file stays.
timeline.json, leases, verdict.json, provision.json, the merged history, gzipped run
files and stack.json are all written through it.

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
from typing import IO, Any, Literal


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


@contextmanager
def atomic_file(path: str | Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temporary file beside it, renamed over `path` when the block ends.

    The temporary name carries the pid and thread, so concurrent writers never share one;
    the parent folder is created. On an exception the temporary file is removed and `path`
    is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, mode, encoding="utf-8" if mode == "w" else None) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8), atomically."""
    with atomic_file(path) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 2) -> None:
    """Replace `path` with `data` as JSON, atomically (readers see old or new, never half)."""
    write_text_atomic(path, json.dumps(data, indent=indent, default=str))


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
