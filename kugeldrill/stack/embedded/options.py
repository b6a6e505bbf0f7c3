"""`StackOptions`: everything `kugeldrill stack up` (the embedded stack) can vary, checked before anything starts.

Also the typed `options` block of stack.json (`RecordedOptions`), so the layers that read a
running stack's options (the drill's breaker parameters, `stack status`) get named fields
instead of digging in a dict.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.launch.daprd import ACK_MODELS, DAPRD_PINNED, Daprd, find_daprd
from kugeldrill.stack.services.common.settings import KNOWN_DEFECTS, BreakerConfig

#: Defects that live in the Dapr components (real Dapr behaviour on daprd); the others are
#: switches of the stand-in's services.
COMPONENT_DEFECTS = frozenset({"shared_consumer_id", "database_index"})
REDIS_PERSISTENCE = ("none", "aof")  # none: a restart loses everything; aof: appendonly, fsync every second


@dataclass
class StackOptions:
    """Everything `kugeldrill stack up` can vary. Defaults mirror Kugelpos (breaker 3/60 s)."""

    state_dir: Path = Path(".kugeldrill")
    # Where the services and sidecars write their logs and the services their events; None:
    # `<state_dir>/logs` and `<state_dir>/events`. A drill points them into its run folder,
    # so each file is written once, where the report looks for it, and never copied.
    logs_into: Path | None = None
    events_into: Path | None = None
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 60.0
    breaker_half_open_max_calls: int = 1
    republish_interval_seconds: float = 300.0
    republish_min_age_seconds: float | None = None  # None: same as the interval
    # 1.18: Dapr >= 1.17 acks a failed delivery; 1.16: it stays pending and is redelivered.
    # The daprd binary decides: tools/bin/daprd for 1.18, tools/bin/daprd-1.16 for 1.16.
    ack_model: str = "1.18"
    defects: list[str] = field(default_factory=list)
    crash_before_effect_every: int = 0
    fail_effect_every: int = 0
    resiliency: bool = True
    redis_persistence: str = "none"
    dapr_timeout_seconds: float = 5.0
    dapr_max_attempts: int = 3
    health_timeout: float = 60.0
    # "thread": supervise crashed subscribers from this process; "process": a detached
    # supervisor process (for the CLI, whose process exits after `up`).
    supervisor: Literal["thread", "process"] = "thread"
    # Commands and renderer, replaceable so the launcher itself can be unit-tested without the
    # services and daprd (a tiny HTTP server in their place gets their arguments).
    python: str = sys.executable
    sidecar_cmd: list[str] | None = None  # replaces the daprd binary in each sidecar's command line
    service_cmd: list[str] | None = None  # default [python, "-m", "kugeldrill.stack.services"]
    render_components: Callable[..., Any] | None = None

    def validate(self) -> None:
        """Reject bad values with a message naming the option (before anything starts)."""
        unknown = sorted(set(self.defects) - KNOWN_DEFECTS)
        if unknown:
            raise ConfigError(f"unknown defect switch(es) {unknown}", hint=f"known: {', '.join(sorted(KNOWN_DEFECTS))}")
        if self.ack_model not in ACK_MODELS:
            raise ConfigError(f"ack model {self.ack_model!r} is not one of {', '.join(ACK_MODELS)}")
        if self.breaker_threshold < 1:
            raise ConfigError(f"breaker threshold must be >= 1, got {self.breaker_threshold}")
        if self.breaker_reset_seconds <= 0:
            raise ConfigError(f"breaker reset time must be > 0 s, got {self.breaker_reset_seconds}")
        if self.breaker_half_open_max_calls < 1:
            raise ConfigError(f"half-open trial calls must be >= 1, got {self.breaker_half_open_max_calls}")
        if self.republish_interval_seconds <= 0:
            raise ConfigError(f"republish interval must be > 0 s, got {self.republish_interval_seconds}")
        if self.crash_before_effect_every < 0:
            raise ConfigError(f"crash_before_effect_every must be >= 0, got {self.crash_before_effect_every}")
        if self.fail_effect_every < 0 or self.fail_effect_every == 1:
            raise ConfigError(f"fail_effect_every must be 0 (off) or >= 2, got {self.fail_effect_every}",
                              hint="with 1 every write fails, redeliveries too, and nothing is ever applied")
        if self.health_timeout <= 0:
            raise ConfigError(f"health timeout must be > 0 s, got {self.health_timeout}")
        if self.redis_persistence not in REDIS_PERSISTENCE:
            raise ConfigError(f"redis persistence {self.redis_persistence!r} is not one of {', '.join(REDIS_PERSISTENCE)}")

    def daprd(self) -> Daprd:
        """The daprd for the ack model; MissingBinaryError (naming the command that builds it)
        when it is not installed. With `sidecar_cmd` (launcher unit tests) that command runs in
        daprd's place, with daprd's arguments."""
        if self.sidecar_cmd:
            return Daprd(binary=Path(self.sidecar_cmd[0]), version=DAPRD_PINNED[self.ack_model],
                         program=tuple(self.sidecar_cmd))
        return find_daprd(self.ack_model)

    def output_dirs(self, state_dir: Path) -> tuple[Path, Path]:
        """(logs, events) folders, absolute: the options' own or the state dir's."""
        logs = Path(self.logs_into) if self.logs_into is not None else state_dir / "logs"
        events = Path(self.events_into) if self.events_into is not None else state_dir / "events"
        return logs.resolve(), events.resolve()

    def breaker(self) -> BreakerConfig:
        return BreakerConfig(self.breaker_threshold, self.breaker_reset_seconds, self.breaker_half_open_max_calls)

    def min_age(self) -> float:
        return self.republish_interval_seconds if self.republish_min_age_seconds is None else self.republish_min_age_seconds

    def component_defects(self) -> list[str]:
        return [d for d in self.defects if d in COMPONENT_DEFECTS]

    def recorded(self) -> "RecordedOptions":
        return RecordedOptions(
            breaker=self.breaker(), ack_model=self.ack_model, defects=list(self.defects),
            republish_interval_seconds=self.republish_interval_seconds,
            republish_min_age_seconds=self.min_age(), crash_before_effect_every=self.crash_before_effect_every,
            fail_effect_every=self.fail_effect_every, resiliency=self.resiliency,
            redis_persistence=self.redis_persistence,
        )

    def summary(self) -> dict[str, Any]:
        """The `options` block of stack.json."""
        return self.recorded().to_json()


@dataclass(frozen=True)
class RecordedOptions:
    """The `options` block of stack.json, read back with names and defaults."""

    breaker: BreakerConfig = field(default_factory=lambda: BreakerConfig(3, 60.0, 1))
    ack_model: str = "1.18"
    defects: list[str] = field(default_factory=list)
    republish_interval_seconds: float = 300.0
    republish_min_age_seconds: float = 300.0
    crash_before_effect_every: int = 0
    fail_effect_every: int = 0
    resiliency: bool = True
    redis_persistence: str = "none"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["breaker"] = asdict(self.breaker)
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "RecordedOptions":
        raw = state.get("options") or {}
        b = raw.get("breaker") or {}
        defaults = cls()
        return cls(
            breaker=BreakerConfig(int(b.get("threshold", 3)), float(b.get("reset_seconds", 60.0)),
                                  int(b.get("half_open_max_calls", 1))),
            ack_model=str(raw.get("ack_model", defaults.ack_model)),
            defects=list(raw.get("defects") or []),
            republish_interval_seconds=float(raw.get("republish_interval_seconds", defaults.republish_interval_seconds)),
            republish_min_age_seconds=float(raw.get("republish_min_age_seconds",
                                                    raw.get("republish_interval_seconds", defaults.republish_min_age_seconds))),
            crash_before_effect_every=int(raw.get("crash_before_effect_every", 0)),
            fail_effect_every=int(raw.get("fail_effect_every", 0)),
            resiliency=bool(raw.get("resiliency", True)),
            redis_persistence=str(raw.get("redis_persistence", "none")),
        )
