"""What the embedded stack (`stack.embedded.Stack`) and the native Kugelpos runner
(`stack.native.launcher.NativeKugelpos`) are alike: a set of processes the `Launcher`
started and recorded in a state file, the URLs read from it, re-attaching to it from
another process, process faults on it, and `down`.

Each deployment says how its state file is named (`STATE_NAME`) and how its launcher
words, paces and stops its start (`SETTINGS`); the rest is here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kugeldrill.stack.launch.control import RecordedProcesses
from kugeldrill.stack.launch.launcher import LaunchSettings, Launcher
from kugeldrill.stack.launch.state import STATE_NAME, StateFile, read_state
from kugeldrill.stack.launch.stop import parts, ports

Self = TypeVar("Self", bound="RecordedDeployment")


class RecordedDeployment:
    """A running (or re-attached) set of processes; `state` is its state file's contents."""

    STATE_NAME: ClassVar[str] = STATE_NAME
    SETTINGS: ClassVar[LaunchSettings] = LaunchSettings()

    def __init__(self, state_file: StateFile) -> None:
        self.launcher = Launcher(state_file, self.SETTINGS)

    @property
    def state(self) -> dict[str, Any]:
        return self.launcher.state

    @property
    def state_path(self) -> Path:
        return self.launcher.file.path

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
        return parts(self.state, self.SETTINGS.servers)

    def ports(self) -> list[int]:
        """Every loopback port the processes and proxies listen on."""
        return ports(self.state, self.SETTINGS.servers)

    def processes(self) -> RecordedProcesses:
        """Process faults on this deployment (kill, pause, resume, stop, start by target name).

        It shares this object's state file, so a supervisor thread of this process sees a
        fault's `held` mark at once."""
        return RecordedProcesses(self.launcher.file)

    def down(self, timeout: float = 8.0, *, wait_ports: bool = True) -> dict[str, Any]:
        """Stop exactly the recorded processes; return what happened to each and ports still open.

        With `wait_ports` it also waits (up to 5 s) until no recorded port listens any more.
        A second call returns the first call's result: the ports may belong to others by then.
        """
        return self.launcher.down(timeout, wait_ports=wait_ports)
