"""daprd-like text log lines.

Why: adapters built for a real deployment read daprd's log (e.g. "retriable error returned
from app while processing pub/sub event ..."), so the stand-in writes the same logfmt shape:
`time="..." level=warning msg="..." app_id=cart instance=... scope=... type=log ver=...`.
"""

from __future__ import annotations

import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

DAPR_VERSION = {"1.18": "1.18.3", "1.16": "1.16.9"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class SidecarLog:
    """Thread-safe writer of daprd-format lines to a file or stderr."""

    def __init__(self, app_id: str, *, path: str | Path | None = None, version: str = "1.18.3",
                 debug: bool = False) -> None:
        self.app_id = app_id
        self.version = version
        self.instance = socket.gethostname()
        self.debug_enabled = debug
        self._lock = threading.Lock()
        self._own = path is not None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._out: TextIO = open(path, "a", buffering=1, encoding="utf-8")
        else:
            self._out = sys.stderr

    def line(self, level: str, msg: str, scope: str = "dapr.runtime") -> str:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (f'time="{now}" level={level} msg={_quote(msg)} app_id={self.app_id} '
                f"instance={self.instance} scope={scope} type=log ver={self.version}")

    def write(self, level: str, msg: str, scope: str = "dapr.runtime") -> None:
        text = self.line(level, msg, scope) + "\n"
        with self._lock:
            try:
                self._out.write(text)
            except ValueError:  # closed at shutdown
                pass

    def debug(self, msg: str, scope: str = "dapr.runtime") -> None:
        if self.debug_enabled:
            self.write("debug", msg, scope)

    def info(self, msg: str, scope: str = "dapr.runtime") -> None:
        self.write("info", msg, scope)

    def warning(self, msg: str, scope: str = "dapr.runtime") -> None:
        self.write("warning", msg, scope)

    def error(self, msg: str, scope: str = "dapr.runtime") -> None:
        self.write("error", msg, scope)

    def close(self) -> None:
        if self._own:
            with self._lock:
                self._out.close()
