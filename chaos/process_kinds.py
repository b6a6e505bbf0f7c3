"""The process fault kinds: kill, pause and restart, each registered once.

Same vocabulary and schedule as the link faults (`at`, `for`, an id, params), with a
process target instead of a link (`process: redis | sidecar@X | app@X`, selectors like
`app@*`). Every fault ends with its target running and not stopped: the heal is `start`
(kill, restart) or `resume` (pause), idempotent like a link heal.

| kind | apply | heal | parameters |
|---|---|---|---|
| `kill` | SIGKILL (a crash: no shutdown code runs) | start again | `restart` = after (when the fault ends) / immediately; `every` (s): kill again every N s; `uptime` (s): kill again once the restarted process has answered for N s — each restarted at once |
| `pause` | SIGSTOP (a long GC pause, a frozen VM: sockets stay open, nothing answers) | SIGCONT | – |
| `restart` | SIGTERM, SIGKILL after `grace` | start again | `restart` = immediately / after; `grace` (s) = 10; `every` / `uptime` (s) |
| `throttle` | SIGSTOP for `stopped` s of every `period` s (a process starved of CPU) | SIGCONT | `period` (s), `stopped` (s, < period, ≤ 2) |

`every` is a fixed period; `uptime` follows the process: on a slow machine a start may
take longer than a fixed period, and the process would be killed before it ever served.
With `uptime` every life of the process serves for the same time, and the kill lands
while it works through what queued up while it was down.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.chaos.fault import APPLY, HEAL, Step
from kugeldrill.chaos.kinds import FaultKind, Param, register
from kugeldrill.chaos.process_faults import Action, ProcessFault
from kugeldrill.ground.errors import ConfigError

RESTART_CHOICES = ("after", "immediately")
MIN_EVERY = 0.5  # seconds between repeated kills: a start must be possible in between
DEFAULT_GRACE = 10.0
MAX_STOPPED = 2.0  # a throttle's freezes stay below clients' timeouts: calls are slowed, not failed (that is `pause`)
MAX_CYCLES = 2000


def _check_repeats(p: dict[str, Any], duration: float, where: str) -> None:
    if p.get("every") is not None and p.get("uptime") is not None:
        raise ConfigError(f"{where}: give 'every' (a fixed period) or 'uptime' (after each restart answers), not both")
    for name in ("every", "uptime"):
        value = p.get(name)
        if value is None:
            continue
        if p.get("restart") == "after":
            raise ConfigError(f"{where}.{name}: a repeated fault restarts at once; drop 'restart: after' "
                              f"or '{name}'")
        p["restart"] = "immediately"
        if value >= duration:
            raise ConfigError(f"{where}.{name} ({value:g}s) must be shorter than the fault ({duration:g}s)")


def _restart_default(default: str):
    def check(p: dict[str, Any], duration: float, where: str) -> None:
        repeated = p.get("every") is not None or p.get("uptime") is not None
        p.setdefault("restart", "immediately" if repeated else default)
        _check_repeats(p, duration, where)
    return check


class Kill(ProcessFault):
    """SIGKILL; started again when the fault ends, or at once (and again with every / uptime)."""

    heal_action = "start"
    repeat_label = "kill"

    def apply_actions(self) -> list[Action]:
        again: list[Action] = [("start", {})] if self.planned.params.get("restart") == "immediately" else []
        return [("kill", {}), *again]


class Pause(ProcessFault):
    """SIGSTOP for the fault's length, SIGCONT at its end."""

    heal_action = "resume"

    def apply_actions(self) -> list[Action]:
        return [("pause", {})]


class Restart(Kill):
    """A graceful stop (SIGTERM, SIGKILL after `grace`), started again at once or when it ends."""

    repeat_label = "restart"

    def apply_actions(self) -> list[Action]:
        again: list[Action] = [("start", {})] if self.planned.params.get("restart") == "immediately" else []
        return [("stop", {"grace": self.planned.params["grace"]}), *again]


_RESTART = Param("restart", choices=RESTART_CHOICES, doc="start again when the fault ends (after) or at once")
_EVERY = Param("every", float, minimum=MIN_EVERY, unit="s", doc="repeat within the fault every N seconds")
_UPTIME = Param("uptime", float, minimum=0.1, unit="s",
                doc="repeat within the fault once the restarted process has answered for N seconds")

register(FaultKind(
    "kill", "SIGKILL the process (a crash); start it again when the fault ends or at once",
    redis_effect="redis: connections reset, then refused until restarted; without persistence all markers, "
                 "stream entries, pending lists and consumer groups are lost (NOGROUP)",
    http_effect="connection refused until restarted; requests in flight get a reset (outcome unknown)",
    params=(_RESTART, _EVERY, _UPTIME), extra_check=_restart_default("after"), fault=Kill,
    acts_on="process", needs=lambda p: ("kill", "start"),
))
register(FaultKind(
    "pause", "SIGSTOP the process for the duration, then SIGCONT (a long GC pause, a frozen VM)",
    redis_effect="redis: connections stay open but nothing answers; every command times out on the client",
    http_effect="connect succeeds (the kernel accepts), requests hang until the client's timeout",
    fault=Pause, acts_on="process", needs=lambda p: ("pause", "resume"),
))
register(FaultKind(
    "restart", "graceful stop (SIGTERM, SIGKILL after `grace`) and start again, at once or when the fault ends",
    redis_effect="redis: clean shutdown (an AOF is fsynced); without persistence the data is lost as with kill",
    http_effect="in-flight requests finish (graceful shutdown), then refused until started again",
    params=(_RESTART, Param("grace", float, default=DEFAULT_GRACE, minimum=0.1, unit="s",
                            doc="seconds between SIGTERM and SIGKILL"), _EVERY, _UPTIME),
    extra_check=_restart_default("immediately"), fault=Restart,
    acts_on="process", needs=lambda p: ("stop", "start"),
))


class Throttle(ProcessFault):
    """Frozen for `stopped` seconds of every `period`, continued in between: a process starved of
    CPU (a cgroup quota, a noisy neighbour, a GC storm). It keeps its sockets and answers, late."""

    heal_action = "resume"

    def apply_actions(self) -> list[Action]:
        return [("pause", {})]

    def steps(self) -> list[Step]:
        period, stopped = self.planned.params["period"], self.planned.params["stopped"]
        duration, steps, start = self.planned.duration, [Step(0.0, APPLY)], 0.0
        while start + stopped < duration - 1e-9:
            steps.append(Step(round(start + stopped, 6), "run"))
            start += period
            if start >= duration - 1e-9:
                break
            steps.append(Step(round(start, 6), "freeze"))
        return [*steps, Step(duration, HEAL)]

    def act(self, label: str) -> None:
        event = self._action("resume" if label == "run" else "pause", {})
        if event.error is not None:
            self.note_error(label, f"{event.action} {self.target}: {event.error}")


def _check_throttle(p: dict[str, Any], duration: float, where: str) -> None:
    if p["stopped"] >= p["period"]:
        raise ConfigError(f"{where}.stopped ({p['stopped']:g}s) must be shorter than {where}.period ({p['period']:g}s)",
                          hint="a process frozen the whole time is kind 'pause'")
    if duration / p["period"] > MAX_CYCLES:
        raise ConfigError(f"{where}.period: {duration / p['period']:.0f} cycles in {duration:g}s; at most {MAX_CYCLES}")


register(FaultKind(
    "throttle", "SIGSTOP for `stopped` s of every `period` s, SIGCONT in between (a process starved of CPU)",
    redis_effect="redis: every command waits up to `stopped` s now and then; latency spikes, no errors while "
                 "the freezes stay below the client's timeout",
    http_effect="requests are answered late (up to `stopped` s more) in bursts; connections stay open",
    params=(Param("period", float, required=True, minimum=0.2, unit="s", doc="one frozen + running cycle"),
            Param("stopped", float, required=True, minimum=0.01, maximum=MAX_STOPPED, unit="s",
                  doc="frozen part of each cycle")),
    extra_check=_check_throttle, fault=Throttle, acts_on="process", needs=lambda p: ("pause", "resume"),
))
