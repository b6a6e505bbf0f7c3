"""A drill's shape as explore draws it and shrink reduces it: load, users, faults.

The faults are chaos' own `PlannedFault` records (what a scenario file's `faults:` reads into).

Everything else of the scenario (stack options, expectations, the target) comes from a base
and is carried through unchanged, so a schedule written out is an ordinary scenario file
that `kugeldrill run` re-runs as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from kugeldrill.chaos.record import PlannedFault

#: The simplest fault kinds first: shrinking a kind moves it toward the front.
KIND_ORDER = ("down", "kill", "restart", "pause", "blackhole", "reset_peer", "timeout", "latency", "flap")


@dataclass(frozen=True)
class Schedule:
    """The drawn part of a drill; `base` is the rest of the scenario document."""

    name: str
    load_seconds: float
    users: dict[str, int]
    faults: tuple[PlannedFault, ...]
    base: dict[str, Any] = field(default_factory=dict, compare=False)
    origin: dict[str, Any] = field(default_factory=dict, compare=False)  # generator, version, seed, index

    def size(self) -> tuple[int, float, int, float, int]:
        """What shrinking makes smaller, most important first."""
        return (len(self.faults), self.load_seconds, sum(self.users.values()),
                sum(f.duration for f in self.faults), sum(KIND_ORDER.index(f.kind) if f.kind in KIND_ORDER else 9
                                                      for f in self.faults))

    def with_(self, **changes: Any) -> "Schedule":
        return replace(self, **changes)

    def describe(self) -> str:
        users = ", ".join(f"{k} {v}" for k, v in self.users.items() if v)
        faults = "; ".join(f.describe() for f in self.faults) or "no fault"
        return f"load {self.load_seconds:g}s ({users}); {faults}"

    def document(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.base)
        doc["name"] = self.name
        load = dict(doc.get("load") or {})
        load.pop("stages", None)
        load["users"] = {k: v for k, v in self.users.items() if v}
        load["duration"] = f"{self.load_seconds:g}s"
        load.setdefault("spawn_rate", max(1, sum(self.users.values())))
        doc["load"] = load
        doc["faults"] = [f.to_entry() for f in self.faults]
        return doc

    def to_yaml(self) -> str:
        header = ""
        if self.origin:
            header = "# " + ", ".join(f"{k} {v}" for k, v in self.origin.items()) + "\n"
        return header + yaml.safe_dump(self.document(), sort_keys=False)
