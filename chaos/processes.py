"""Process targets and the interface a timeline needs to kill, pause and restart them.

Toxiproxy can cut and degrade a link but cannot kill or freeze a process; the seed's
idempotency (check → apply → mark) and Kugelpos' outbox republish exist for exactly
that: a subscriber dying between effect and mark, a sidecar dying with unacknowledged
messages, Redis restarting without the markers and stream entries it held in memory.

A process target is named like a link (contracts §1), without a proxy behind it:

* `redis` — the Redis server every sidecar uses;
* `sidecar@<app>` — that app's Dapr sidecar (ours or a real daprd);
* `app@<app>` — the service process itself.

chaos only defines what it needs (`ProcessControl`) and never imports the stack: a deployment
the launcher started implements it in `kugeldrill.stack.launch.control` (it knows its
processes and restarts them from their recorded commands), a target file through command
templates (`kugeldrill.target_processes`), and the drill wires one into the timeline. The
records exchanged (`ProcessResult`) live in `kugeldrill.ground.processes`. `ProcessSweep`
is the heal path's part for process targets, whoever implements the control.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.processes import ProcessResult

TARGET_RE = re.compile(r"^redis$|^(sidecar|app)@[a-z0-9][a-z0-9_.-]*$")
_PATTERN_RE = re.compile(r"^redis$|^(sidecar|app|\*)@[a-z0-9_.*-]+$|^\*$")

# What a lease entry must do to undo a process fault if the drill dies: continue a
# paused process, or run a killed/stopped one again.
HEAL_NEEDS = ("resume", "start")


@runtime_checkable
class ProcessControl(Protocol):
    """Whoever can act on the processes a drill's process faults name.

    Every action is idempotent where it heals (`resume` of a running process and `start`
    of a running one answer outcome `already`), because healing runs on schedule, on stop,
    from signal handlers and after a crash, possibly more than once.
    """

    description: str  # "embedded stand-in", "target kugelpos-compose": for messages

    def targets(self) -> list[str]:
        """Every process target it can act on (e.g. redis, sidecar@cart, app@journal)."""
        ...

    def missing_actions(self, target: str, actions: Iterable[str]) -> list[str]:
        """Which of `actions` it cannot do on `target` ([] = all); checked before a drill starts."""
        ...

    def pids(self, target: str) -> list[int]:
        """The target's current pids ([] when it is not running or the pid is not known)."""
        ...

    def kill(self, target: str) -> ProcessResult:
        """SIGKILL, as a crash would; returns once the process is gone."""
        ...

    def pause(self, target: str) -> ProcessResult:
        """SIGSTOP: frozen, holding its sockets (a long GC pause, a stalled VM)."""
        ...

    def resume(self, target: str) -> ProcessResult:
        """SIGCONT a paused target (outcome `already` when it was not stopped)."""
        ...

    def stop(self, target: str, grace: float) -> ProcessResult:
        """SIGTERM, then SIGKILL after `grace` seconds (outcome `escalated`)."""
        ...

    def start(self, target: str) -> ProcessResult:
        """Run the target again the way it was started (outcome `already` if it runs)."""
        ...

    def wait_ready(self, target: str, timeout: float) -> str | None:
        """Block until the target answers its health probe; None = ready, else the last problem."""
        ...

    def problems(self, targets: Iterable[str]) -> list[str]:
        """What is not healed among `targets`: not running, or stopped (state T)."""
        ...

    def lease_entry(self, target: str, need: str) -> dict[str, Any]:
        """What the watchdog needs, without this object, to `resume` or `start` the target
        (see `chaos.procheal`): pids to SIGCONT, argv/env/cwd/log to spawn, or a command."""
        ...


def check_target_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not TARGET_RE.match(name):
        raise ConfigError(f"{where}: process target {name!r} must be 'redis', 'sidecar@<app>' or 'app@<app>'")
    return name


def select_targets(selector: Any, known: Iterable[str]) -> list[str]:
    """Targets matching a selector: `redis`, `app@journal`, `app@*`, `*@journal`, `*`, or a comma list.

    Like link selectors, every comma part must match at least one target, so a typo fails
    loudly instead of drilling nothing. Result in `known` order, without duplicates.
    """
    names = list(known)
    if not isinstance(selector, str) or not selector.strip():
        raise ConfigError(f"process selector must be a non-empty string, got {selector!r}")
    chosen: set[str] = set()
    for part in (p.strip() for p in selector.split(",")):
        if not part:
            raise ConfigError(f"process selector {selector!r} has an empty entry")
        if not _PATTERN_RE.match(part):
            raise ConfigError(f"process selector part {part!r} must be 'redis', 'sidecar@<app>' or 'app@<app>', "
                              "with optional '*' (e.g. app@*, *@journal)")
        hits = [n for n in names if fnmatch.fnmatchcase(n, part)]
        if not hits:
            raise ConfigError(f"process selector {part!r} matches no process (known: {', '.join(names) or 'none'})")
        chosen.update(hits)
    return [n for n in names if n in chosen]


class ProcessSweep:
    """Process targets back to running and not stopped, as one part of the heal path
    (`chaos.heal.heal`): each target with a problem is continued (a paused one) and, if that
    was not it, started again (a killed one). Targets without a problem are left alone."""

    name = "processes"

    def __init__(self, control: ProcessControl, targets: Iterable[str] | None = None) -> None:
        self.control = control
        self.targets = list(targets) if targets is not None else control.targets()
        self.errors: list[str] = []

    def heal(self) -> list[str]:
        done = []
        for target in self.targets:
            tried: list[str] = []
            for action, said in (("resume", "continued"), ("start", "started again")):
                if not self.control.problems([target]):
                    break
                if self.control.missing_actions(target, [action]):
                    continue
                try:
                    result = getattr(self.control, action)(target)
                except Exception as exc:  # noqa: BLE001 - e.g. resume of a process that is gone: try start
                    tried.append(f"{action} {target}: {type(exc).__name__}: {exc}")
                    continue
                if result.outcome != "already":
                    done.append(f"{said} {target} (pids {list(result.pids_after)})")
            if tried and self.control.problems([target]):
                self.errors += tried  # what failed matters only when nothing healed it
        return done

    def leftovers(self) -> list[str]:
        return self.control.problems(self.targets)
