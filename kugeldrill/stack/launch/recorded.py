"""What the stand-in (`stack.launcher.Stack`) and the native Kugelpos runner
(`stack.native.launcher.NativeKugelpos`) have alike: a state file recording every process
they started, the URLs read from it, re-attaching to it, the start wrapper that cleans up
after a failed start, and `down`.

Each launcher says how its state file is named (`STATE_NAME`), which servers run behind its
apps (`SERVERS`, in stop order) and how its start errors read (`START`); the rest is here once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.failures import STACK_START, StartFailure
from kugeldrill.stack.launch.running import Running
from kugeldrill.stack.launch.state import STATE_NAME, StateFile, read_state
from kugeldrill.stack.launch.stop import SERVERS, parts, ports, stop_parts

Self = TypeVar("Self", bound="RecordedDeployment")


class RecordedDeployment:
    """A running (or re-attached) set of processes; `state` is its state file's contents."""

    STATE_NAME: ClassVar[str] = STATE_NAME
    SERVERS: ClassVar[tuple[str, ...]] = SERVERS
    START: ClassVar[StartFailure] = STACK_START

    def __init__(self, state_file: StateFile) -> None:
        self._file = state_file
        self._running = Running()
        self._down_result: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self._file.state

    @property
    def state_path(self) -> Path:
        return self._file.path

    @property
    def redis_url(self) -> str:
        return self.state["redis"]["url"]

    @property
    def toxiproxy_url(self) -> str:
        return self.state["toxiproxy"]["api"]

    def service_urls(self) -> dict[str, str]:
        return {app: entry["url"] for app, entry in self.state.get("services", {}).items()}

    @classmethod
    def from_state_file(cls: type[Self], path: Path | str) -> Self:
        """Re-attach to processes started elsewhere (the CLI's `down`, `status`, `logs`)."""
        path = Path(path)
        if path.is_dir():
            path = path / cls.STATE_NAME
        return cls(StateFile(path, read_state(path)))

    def parts(self) -> list[tuple[str, dict[str, Any]]]:
        """Every recorded process as (part name, state entry), in stop order."""
        return parts(self.state, self.SERVERS)

    def ports(self) -> list[int]:
        """Every loopback port the processes and proxies listen on."""
        return ports(self.state, self.SERVERS)

    def down(self, timeout: float = 8.0, *, wait_ports: bool = True) -> dict[str, Any]:
        """Stop exactly the recorded processes; return what happened to each and ports still open.

        With `wait_ports` it also waits (up to 5 s) until no recorded port listens any more.
        A second call returns the first call's result: the ports may belong to others by then.
        """
        if self._down_result is None:
            self._down_result = stop_parts(self._file, self._running, timeout, wait_ports, self.SERVERS)
        return self._down_result

    def _start_or_clean_up(self, start: Callable[[], None]) -> None:
        """Write the state file, run `start`; on any failure stop what was started and raise a
        DrillError (an unexpected exception becomes the launcher's start error). Records the
        status and how long the start took."""
        self._file.write()
        t0 = time.monotonic()
        try:
            start()
        except BaseException as exc:
            # A port that failed to bind may belong to someone else: do not wait for it to close.
            self.down(wait_ports=False)
            if isinstance(exc, (DrillError, KeyboardInterrupt)):
                raise
            raise self.START.error(f"{self.START.what} start failed: {type(exc).__name__}: {exc}") from exc
        self._file.update(lambda s: s.update(status="running", startup_seconds=round(time.monotonic() - t0, 3)))
