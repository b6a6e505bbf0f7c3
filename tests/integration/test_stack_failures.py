"""A real part that fails to start: the launcher names it, shows its log, stops the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.components import render_components
from kugeldrill.stack.launch.procs import pid_running
from kugeldrill.stack.embedded import Stack, StackOptions, StackStartError

pytestmark = pytest.mark.integration


def broken_for_journal(dest: Path, **kwargs: Any) -> Any:
    """The real renderer, except journal's components point at a Redis port where nothing listens."""
    if kwargs.get("app_id") == "journal":
        kwargs["redis_host"] = f"127.0.0.1:{free_port()}"
    return render_components(dest, **kwargs)


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and pid_running(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_a_sidecar_that_cannot_load_its_components_is_named_and_everything_is_stopped(tmp_path: Path) -> None:
    state_dir = tmp_path / "st"
    with pytest.raises(StackStartError) as info:
        stack = Stack.up(StackOptions(state_dir=state_dir, render_components=broken_for_journal, health_timeout=90.0))
        stack.down()  # only reached if the start wrongly succeeded
    message = str(info.value)
    assert "sidecar journal" in message
    assert "sidecar-journal.log" in message and "INIT_COMPONENT_FAILURE" in message  # its own log lines
    assert processes_mentioning(str(state_dir)) == []
    assert not (state_dir / "stack.json").exists()
