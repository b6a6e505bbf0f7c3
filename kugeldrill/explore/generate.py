"""Seeded random fault schedules within safety bounds: the same seed gives the same drills.

Each draw is made from its own generator, seeded with the generator's version, the seed and
the drill's index, so drill 7 of seed 1234 is the same whatever ran before it, on any
machine. Bounds keep every drawn drill judgeable on a healthy system: every fault heals
while load still runs and leaves the breakers time to close before the load ends, every
fault kind has parameters with a known effect, and every user class that the checkers'
expectations need is present.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kugeldrill.chaos.record import PlannedFault
from kugeldrill.explore.schedule import Schedule
from kugeldrill.ground.errors import ConfigError

GENERATOR = "kugeldrill.explore"
GENERATOR_VERSION = "1"

#: Network kinds with parameters whose effect on Kugelpos' calls is known (chaos/README.md).
NETWORK_KINDS: dict[str, list[dict[str, Any]]] = {
    "down": [{}],
    "blackhole": [{}],
    "reset_peer": [{"timeout": 0}],
    "timeout": [{"timeout": 500}, {"timeout": 2000}],
    "latency": [{"latency": 300}, {"latency": 2500}, {"latency": 8000}],
    "flap": [{"period": 1.0, "down": 0.4}, {"period": 2.0, "down": 0.8}],
}
#: Process kinds (a process, not a link): kill and restart come back by themselves, pause for `for`.
PROCESS_KINDS: dict[str, list[dict[str, Any]]] = {"kill": [{}], "restart": [{}], "pause": [{}]}

#: The base of every drawn scenario: short breaker reset and republish, so recovery and
#: redelivery land within a drill; every checker on.
DEFAULT_BASE: dict[str, Any] = {
    "description": "A drill drawn by kugeldrill explore (seeded; re-run it with kugeldrill run).",
    "target": "embedded",
    "load": {"spawn_rate": 6},
    "stack": {"breaker": {"threshold": 3, "reset_seconds": 2}, "republish_interval_seconds": 2,
              "processing_timeout_seconds": 4, "redeliver_interval_ms": 1000},
    "expect": {"duplicates": {"policy": "tolerant"}, "fanout": {"policy": "exactly_once"},
               "outcomes": {"check": True}, "convergence": {"max_seconds": 30}},
}


@dataclass(frozen=True)
class Space:
    """What may be drawn. links: concrete link names; processes: process targets (redis,
    sidecar@X, app@X) when the environment can control processes."""

    links: tuple[str, ...]
    kinds: tuple[str, ...] = tuple(NETWORK_KINDS)
    processes: tuple[str, ...] = ()
    max_faults: int = 2
    load_seconds: tuple[float, float] = (16.0, 28.0)
    fault_seconds: tuple[float, float] = (2.0, 8.0)
    first_at: float = 2.0  # seconds of load before a fault may start
    settle_seconds: float = 8.0  # load after the last heal: breakers close, redeliveries land
    users: dict[str, tuple[int, int]] = field(default_factory=lambda: {
        "CartUser": (2, 5), "TerminalUser": (1, 2), "OpenCloseUser": (1, 1)})

    def check(self) -> None:
        unknown = [k for k in self.kinds if k not in NETWORK_KINDS and k not in PROCESS_KINDS]
        if unknown:
            raise ConfigError(f"explore cannot draw fault kind(s) {unknown}",
                              hint=f"drawable kinds: {', '.join([*NETWORK_KINDS, *PROCESS_KINDS])}")
        if not self.links and not (self.processes and set(self.kinds) & set(PROCESS_KINDS)):
            raise ConfigError("explore has no link (or process) to put faults on", hint="check --links")
        if any(k in PROCESS_KINDS for k in self.kinds) and not self.processes:
            raise ConfigError("process fault kinds need an environment that can stop and start processes",
                              hint="drop kill/pause/restart from --kinds, or name the process commands in the target file")
        lo, hi = self.load_seconds
        if lo > hi or lo < self.first_at + self.fault_seconds[0] + self.settle_seconds:
            raise ConfigError(f"load of {lo:g}–{hi:g} s leaves no room for a fault between "
                              f"{self.first_at:g} s and {self.settle_seconds:g} s before the end")


def draw(seed: int, index: int, space: Space, base: dict[str, Any] | None = None) -> Schedule:
    """Drill `index` of `seed`: a fresh random generator each, so draws never depend on each other."""
    rng = random.Random(f"{GENERATOR}:{GENERATOR_VERSION}:{seed}:{index}")
    load = round(rng.uniform(*space.load_seconds))
    users = {cls: rng.randint(lo, hi) for cls, (lo, hi) in space.users.items()}
    n = rng.randint(1, space.max_faults)
    kinds = list(space.kinds)
    faults = []
    for _ in range(n):
        kind = rng.choice(kinds)
        process = kind in PROCESS_KINDS
        target = rng.choice(space.processes if process else space.links)
        params = dict(rng.choice((PROCESS_KINDS if process else NETWORK_KINDS)[kind]))
        latest_end = load - space.settle_seconds
        length = round(rng.uniform(space.fault_seconds[0], min(space.fault_seconds[1], latest_end - space.first_at)), 1)
        at = round(rng.uniform(space.first_at, latest_end - length), 1)
        if any(f.subject == target and at < f.end and f.at < at + length for f in faults):
            continue  # one fault per link or process at a time (chaos refuses overlaps): drawn one fewer
        faults.append(PlannedFault(kind=kind, at=at, duration=length, params=params,
                                   **{("process" if process else "link"): target}))
    faults.sort(key=lambda f: (f.at, f.subject))
    origin = {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed, "index": index}
    return Schedule(name=f"explore-{seed}-{index}", load_seconds=float(load), users=users, faults=tuple(faults),
                    base=dict(base or DEFAULT_BASE), origin=origin)
