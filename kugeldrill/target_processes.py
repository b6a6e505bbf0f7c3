"""Process faults on a deployment kugeldrill did not start: the target file's command templates.

Implements chaos' `ProcessControl` by running the commands a target file names under
`processes:` (kugeldrill.target.ProcessesSpec), e.g. for Compose:

    processes:
      cwd: /path/to/kugelpos-backend/services
      commands:
        kill:   [docker, compose, kill, -s, KILL, "{service}"]
        pause:  [docker, compose, pause, "{service}"]
        resume: [docker, compose, unpause, "{service}"]
        stop:   [docker, compose, stop, -t, "{grace}", "{service}"]
        start:  [docker, compose, start, "{service}"]
      targets:
        redis:          {vars: {service: redis}}
        sidecar@cart:   {vars: {service: dapr_cart}}
        app@journal:    {vars: {service: journal}}

A command succeeds when it exits 0; its output is kept in the error when it does not. A
fault whose kind needs an action the file names no command for is refused before the
drill starts (`missing_actions`). Heals are idempotent only as far as the commands are
(`docker start` of a running container is; `docker unpause` of a running one is not), so
`resume` is skipped when the optional `running` query says the target already runs.
The watchdog gets the rendered `start`/`resume` command (a `command` lease entry).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterable
from typing import Any

from kugeldrill.ground.processes import ProcessActionError, ProcessResult
from kugeldrill.target import PLACEHOLDER_RE, TargetFile

_PID_RE = re.compile(r"\b\d+\b")


class TargetProcesses:
    """ProcessControl for a target file with a `processes:` section."""

    def __init__(self, target: TargetFile) -> None:
        if target.processes is None:
            raise ProcessActionError(f"target file {target.path} names no processes")
        self.target = target
        self.spec = target.processes
        self.description = f"target {target.name} ({target.path})"
        self.cwd = self.spec.resolved_cwd(target.path)

    # ------------------------------------------------------------------ commands

    def _render(self, target: str, action: str, extra: dict[str, str] | None = None) -> list[str] | None:
        argv = self.spec.command(target, action)
        if argv is None:
            return None
        kind, _, app = target.partition("@")
        values = {"target": target, "kind": kind, "app": app, **(extra or {})}
        spec = self.spec.targets.get(target)
        if spec is not None:
            values.update(spec.vars)
        return [PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), arg) for arg in argv]

    def _run(self, target: str, action: str, extra: dict[str, str] | None = None,
             *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = self._render(target, action, extra)
        if argv is None:
            raise ProcessActionError(f"{target}: {self.description} names no '{action}' command")
        try:
            done = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True,
                                  timeout=self.spec.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise ProcessActionError(f"{target}: {' '.join(argv)} did not finish within "
                                     f"{self.spec.timeout_seconds:g}s") from None
        except OSError as exc:
            raise ProcessActionError(f"{target}: cannot run {argv[0]}: {exc}") from None
        if check and done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-400:]
            raise ProcessActionError(f"{target}: {' '.join(argv)} exited with {done.returncode}: {tail}")
        return done

    def _act(self, target: str, action: str, extra: dict[str, str] | None = None) -> ProcessResult:
        """Run the action's command; one `pids` query for the record (each is a command too):
        the pids it acted on before a kill/pause/stop, the pids it brought up after a start/resume."""
        before = tuple(self.pids(target)) if action in ("kill", "pause", "stop") else ()
        done = self._run(target, action, extra)
        after = tuple(self.pids(target)) if action in ("start", "resume") else ()
        if action == "pause":
            after = before  # frozen, not replaced
        detail = (done.stdout or "").strip()[-200:]
        return ProcessResult(target, action, before, after, detail=detail)

    # ------------------------------------------------------------------ ProcessControl

    def targets(self) -> list[str]:
        return list(self.spec.targets)

    def missing_actions(self, target: str, actions: Iterable[str]) -> list[str]:
        return [a for a in actions if self.spec.command(target, a) is None]

    def pids(self, target: str) -> list[int]:
        if self.spec.command(target, "pids") is None:
            return []
        try:
            done = self._run(target, "pids", check=False)
        except ProcessActionError:
            return []
        return [int(p) for p in _PID_RE.findall(done.stdout or "") if int(p) > 0] if done.returncode == 0 else []

    def _running(self, target: str) -> bool | None:
        """The optional `running` query: True/False, None when the file names none."""
        if self.spec.command(target, "running") is None:
            return None
        try:
            return self._run(target, "running", check=False).returncode == 0
        except ProcessActionError:
            return False

    def kill(self, target: str) -> ProcessResult:
        return self._act(target, "kill")

    def pause(self, target: str) -> ProcessResult:
        return self._act(target, "pause")

    def resume(self, target: str) -> ProcessResult:
        if self._running(target) is True:
            pids = tuple(self.pids(target))
            return ProcessResult(target, "resume", pids, pids, outcome="already")
        return self._act(target, "resume")

    def stop(self, target: str, grace: float) -> ProcessResult:
        return self._act(target, "stop", {"grace": f"{grace:g}"})

    def start(self, target: str) -> ProcessResult:
        if self._running(target) is True:
            pids = tuple(self.pids(target))
            return ProcessResult(target, "start", pids, pids, outcome="already")
        return self._act(target, "start")

    def wait_ready(self, target: str, timeout: float) -> str | None:
        if self.spec.command(target, "ready") is None:
            return None  # the file gives no readiness query: the start command's success is all we know
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            done = self._run(target, "ready", check=False)
            if done.returncode == 0:
                return None
            last = (done.stderr or done.stdout).strip()[-200:]
            if time.monotonic() >= deadline:
                return f"{target} not ready within {timeout:g}s: {last or f'exit {done.returncode}'}"
            time.sleep(0.25)

    def problems(self, targets: Iterable[str]) -> list[str]:
        out = []
        for target in targets:
            running = self._running(target)
            if running is False:
                out.append(f"process {target} is not running (or paused) according to its 'running' command")
        return out

    def lease_entry(self, target: str, need: str) -> dict[str, Any]:
        argv = self._render(target, need)
        if argv is None:
            raise ProcessActionError(f"{target}: {self.description} names no '{need}' command")
        return {"target": target, "need": need, "do": "command", "argv": argv, "cwd": self.cwd,
                "timeout": self.spec.timeout_seconds}
