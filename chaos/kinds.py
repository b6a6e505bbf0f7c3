"""The fault vocabulary: each kind's parameters, checks and effects, and the registry of kinds.

A kind is declared once, with `register(FaultKind(...))`, next to the `Fault` class that
carries it out (`chaos.link_kinds` for the Toxiproxy kinds, `chaos.process_kinds` for
kill, pause and restart). Everything a scenario says about a kind is checked here before
anything runs, and the ConfigError names the entry and the field
(`faults[2].latency is required for fault kind 'latency' (ms): ...`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kugeldrill.chaos.record import MAX_FAULT_SECONDS
from kugeldrill.ground.durations import parse_duration
from kugeldrill.ground.errors import ConfigError

if TYPE_CHECKING:
    from kugeldrill.chaos.fault import Fault, FaultContext
    from kugeldrill.chaos.record import PlannedFault

DIRECTIONS = ("upstream", "downstream", "both")


@dataclass(frozen=True)
class Param:
    """One parameter of a fault kind, with its unit and bounds (why: error messages name them)."""

    name: str
    kind: type = float  # float or int
    required: bool = False
    default: Any = None
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    unit: str = ""  # "s": a duration, written as a number or like 1m30s
    doc: str = ""
    choices: tuple[str, ...] = ()  # a word parameter (e.g. restart: after|immediately)

    def parse(self, raw: Any, where: str) -> Any:
        if self.choices:
            if raw not in self.choices:
                raise ConfigError(f"{where}.{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
            return raw
        if self.unit == "s" and isinstance(raw, str):
            try:
                raw = parse_duration(raw)
            except ValueError as exc:
                raise ConfigError(f"{where}.{self.name}: {exc}") from None
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"{where}.{self.name} must be a number ({self.unit or self.kind.__name__}), got {raw!r}")
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ConfigError(f"{where}.{self.name} must be finite, got {raw!r}")
        if self.kind is int and float(raw) != int(raw):
            raise ConfigError(f"{where}.{self.name} must be a whole number, got {raw!r}")
        value = self.kind(raw)
        if self.minimum is not None:
            if self.exclusive_min and value <= self.minimum:
                raise ConfigError(f"{where}.{self.name} must be greater than {self.minimum:g}, got {raw!r}")
            if not self.exclusive_min and value < self.minimum:
                raise ConfigError(f"{where}.{self.name} must be at least {self.minimum:g}, got {raw!r}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{where}.{self.name} must be at most {self.maximum:g}, got {raw!r}")
        return value


TOXICITY = Param("toxicity", float, default=1.0, minimum=0.0, maximum=1.0,
                 doc="probability per connection (not per request) that the toxic acts")

FaultFactory = Callable[["PlannedFault", "FaultKind", "FaultContext"], "Fault"]


@dataclass(frozen=True)
class FaultKind:
    """A fault kind: its parameters, what users will see, and the `Fault` that carries it out.

    `acts_on` is "link" (a Toxiproxy proxy) or "process" (a process target); `fault` builds
    the Fault for one planned fault on one subject. A process kind says which process
    actions it `needs` (checked against what the environment can do before anything runs).
    """

    name: str
    summary: str
    redis_effect: str
    http_effect: str
    fault: FaultFactory
    acts_on: Literal["link", "process"] = "link"
    params: tuple[Param, ...] = ()
    direction_default: str | None = None  # None: direction does not apply
    toxicity: bool = False
    extra_check: Callable[[dict[str, Any], float, str], None] | None = None
    needs: Callable[[dict[str, Any]], tuple[str, ...]] | None = None  # process kinds: actions used
    min_server: tuple[int, ...] | None = None  # link kinds: the Toxiproxy version that has the toxic

    def build(self, planned: PlannedFault, ctx: FaultContext) -> Fault:
        """The Fault that carries out `planned` (one subject) through `ctx`."""
        return self.fault(planned, self, ctx)

    def allowed(self) -> list[str]:
        names = [p.name for p in self.params]
        if self.direction_default is not None:
            names.append("direction")
        if self.toxicity:
            names.append("toxicity")
        return names

    def validate(self, raw: Mapping[str, Any], duration: float, where: str) -> dict[str, Any]:
        """Normalised params (defaults filled in); ConfigError naming `<where>.<field>` on anything wrong."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}.params must be a mapping, got {type(raw).__name__}")
        allowed = self.allowed()
        for key in raw:
            if key not in allowed:
                shown = ", ".join(allowed) or "none"
                raise ConfigError(f"{where}.{key} is not a parameter of fault kind {self.name!r} (allowed: {shown})")
        out: dict[str, Any] = {}
        for param in self.params:
            if param.name in raw:
                out[param.name] = param.parse(raw[param.name], where)
            elif param.required:
                unit = f" ({param.unit})" if param.unit else ""
                raise ConfigError(f"{where}.{param.name} is required for fault kind {self.name!r}{unit}: {param.doc}")
            elif param.default is not None:
                out[param.name] = param.default
        if self.direction_default is not None:
            direction = raw.get("direction", self.direction_default)
            if direction not in DIRECTIONS:
                raise ConfigError(f"{where}.direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
            out["direction"] = direction
        if self.toxicity:
            out["toxicity"] = TOXICITY.parse(raw["toxicity"], where) if "toxicity" in raw else 1.0
        if self.extra_check:
            self.extra_check(out, duration, where)
        return out


KINDS: dict[str, FaultKind] = {}


def register(kind: FaultKind) -> FaultKind:
    """Add a kind to the vocabulary (a second kind of the same name is a bug, refused)."""
    if kind.name in KINDS and KINDS[kind.name] is not kind:
        raise ValueError(f"fault kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def _load_vocabulary() -> None:
    """The modules that register kinds; importing them fills KINDS (once)."""
    from kugeldrill.chaos import link_kinds, process_kinds  # noqa: F401


def get_kind(name: Any, where: str) -> FaultKind:
    """The kind named `name`, or ConfigError listing the vocabulary."""
    _load_vocabulary()
    if name not in KINDS:
        raise ConfigError(f"{where}.kind {name!r} is not a fault kind (known: {', '.join(KINDS)})")
    return KINDS[name]


def all_kinds() -> dict[str, FaultKind]:
    _load_vocabulary()
    return dict(KINDS)


def validate_duration(raw: Any, where: str, field_name: str = "for",
                      maximum: float = MAX_FAULT_SECONDS) -> float:
    """Every fault is bounded: `for` is required, positive and at most `maximum` seconds."""
    return Param(field_name, float, required=True, minimum=0.0, exclusive_min=True, maximum=maximum,
                 unit="s").parse(raw, where)
