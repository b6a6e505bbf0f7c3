"""Process fault kinds: kill, pause and restart a process target on the timeline.

Same vocabulary and schedule as the link faults (`at`, `for`, an id, params), with a
process target instead of a link (`process: redis | sidecar@X | app@X`, selectors like
`app@*`). Every fault ends with its target running and not stopped: the heal is `start`
(kill, restart) or `resume` (pause), idempotent like a link heal.

| kind | apply | heal | parameters |
|---|---|---|---|
| `kill` | SIGKILL (a crash: no shutdown code runs) | start again | `restart` = after (when the fault ends) / immediately; `every` (s): kill again every N s; `uptime` (s): kill again once the restarted process has answered for N s — each restarted at once |
| `pause` | SIGSTOP (a long GC pause, a frozen VM: sockets stay open, nothing answers) | SIGCONT | – |
| `restart` | SIGTERM, SIGKILL after `grace` | start again | `restart` = immediately / after; `grace` (s) = 10; `every` / `uptime` (s) |

`every` is a fixed period; `uptime` follows the process: on a slow machine a start may
take longer than a fixed period, and the process would be killed before it ever served.
With `uptime` every life of the process serves for the same time, and the kill lands
while it works through what queued up while it was down.

What clients see (the stand-in, Kugelpos, Dapr):

* `kill`/`restart` of `redis`: connections reset, then refused until it is back; without
  persistence (`stack.redis_persistence: none`) every idempotency marker, stream entry,
  pending list and consumer group is gone — sidecars get NOGROUP and re-create their
  groups from 0, the publishers' outbox republish must bring back the events;
* `pause` of `redis`: every command hangs until the client's timeout, for every sidecar;
* `sidecar@X`: X's Dapr calls are refused (kill) or time out (pause); deliveries to X
  read but not acknowledged stay pending and are redelivered after processingTimeout;
* `app@X`: deliveries to X fail (refused / timeout); a kill between X's business effect
  and its idempotency mark is the duplicate the seed's order (check → apply → mark) allows.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.chaos.faults import FaultKind, Param, ProcessStep, _register
from kugeldrill.ground.errors import ConfigError

RESTART_CHOICES = ("after", "immediately")
MIN_EVERY = 0.5  # seconds between repeated kills: a start must be possible in between
DEFAULT_GRACE = 10.0


def _every_offsets(every: float | None, duration: float) -> list[float]:
    """Offsets of the repeated actions after the first (strictly inside the fault)."""
    if not every:
        return []
    out, t = [], every
    while t < duration - 1e-9:
        out.append(round(t, 6))
        t += every
    return out


def _check_restart(p: dict[str, Any], duration: float, where: str) -> None:
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


def _defaults(default_restart: str):
    def check(p: dict[str, Any], duration: float, where: str) -> None:
        repeated = p.get("every") is not None or p.get("uptime") is not None
        p.setdefault("restart", "immediately" if repeated else default_restart)
        _check_restart(p, duration, where)
    return check


def _plan_kill(kind: FaultKind, params: dict[str, Any], duration: float, target: str, fault_id: str) -> list[Any]:
    if params["restart"] == "after":
        return [ProcessStep(0.0, "apply", (("kill", {}),)),
                ProcessStep(duration, "heal", (("start", {}),))]
    steps = [ProcessStep(0.0, "apply", (("kill", {}), ("start", {})))]
    steps += [ProcessStep(t, "kill", (("kill", {}), ("start", {}))) for t in _every_offsets(params.get("every"), duration)]
    steps.append(ProcessStep(duration, "heal", (("start", {}),)))
    return steps


def _plan_pause(kind: FaultKind, params: dict[str, Any], duration: float, target: str, fault_id: str) -> list[Any]:
    return [ProcessStep(0.0, "apply", (("pause", {}),)), ProcessStep(duration, "heal", (("resume", {}),))]


def _plan_restart(kind: FaultKind, params: dict[str, Any], duration: float, target: str, fault_id: str) -> list[Any]:
    stop = ("stop", {"grace": params["grace"]})
    if params["restart"] == "after":
        return [ProcessStep(0.0, "apply", (stop,)), ProcessStep(duration, "heal", (("start", {}),))]
    steps = [ProcessStep(0.0, "apply", (stop, ("start", {})))]
    steps += [ProcessStep(t, "restart", (stop, ("start", {}))) for t in _every_offsets(params.get("every"), duration)]
    steps.append(ProcessStep(duration, "heal", (("start", {}),)))
    return steps


_RESTART = Param("restart", choices=RESTART_CHOICES, doc="start again when the fault ends (after) or at once")
_EVERY = Param("every", float, minimum=MIN_EVERY, unit="s", doc="repeat within the fault every N seconds")
_UPTIME = Param("uptime", float, minimum=0.1, unit="s",
                doc="repeat within the fault once the restarted process has answered for N seconds")

_register(FaultKind(
    "kill", "SIGKILL the process (a crash); start it again when the fault ends or at once",
    redis_effect="redis: connections reset, then refused until restarted; without persistence all markers, "
                 "stream entries, pending lists and consumer groups are lost (NOGROUP)",
    http_effect="connection refused until restarted; requests in flight get a reset (outcome unknown)",
    params=(_RESTART, _EVERY, _UPTIME), extra_check=_defaults("after"), planner=_plan_kill,
    acts_on="process", heal_actions=("start",),
    needs=lambda p: ("kill", "start"),
))
_register(FaultKind(
    "pause", "SIGSTOP the process for the duration, then SIGCONT (a long GC pause, a frozen VM)",
    redis_effect="redis: connections stay open but nothing answers; every command times out on the client",
    http_effect="connect succeeds (the kernel accepts), requests hang until the client's timeout",
    planner=_plan_pause, acts_on="process", heal_actions=("resume",),
    needs=lambda p: ("pause", "resume"),
))
_register(FaultKind(
    "restart", "graceful stop (SIGTERM, SIGKILL after `grace`) and start again, at once or when the fault ends",
    redis_effect="redis: clean shutdown (an AOF is fsynced); without persistence the data is lost as with kill",
    http_effect="in-flight requests finish (graceful shutdown), then refused until started again",
    params=(_RESTART, Param("grace", float, default=DEFAULT_GRACE, minimum=0.1, unit="s",
                            doc="seconds between SIGTERM and SIGKILL"), _EVERY, _UPTIME),
    extra_check=_defaults("immediately"), planner=_plan_restart,
    acts_on="process", heal_actions=("start",),
    needs=lambda p: ("stop", "start"),
))
