"""Configuration of one stand-in service process (written by the launcher as JSON).

The launcher knows every port and link; a service only reads this file. Defaults mirror
Kugelpos (breaker 3 failures / 60 s, republish every 5 min) so that drills shorten them
on purpose and say so in the scenario.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KNOWN_DEFECTS = frozenset(
    {
        "breaker_per_request",  # a new breaker per HTTP request: it can never open
        "breaker_cumulative_failures",  # successes never reset the failure count
        "breaker_unlimited_half_open",  # HALF_OPEN admits every call, not one trial
        "subscriber_array_body",  # report/journal answer 200 + JSON array (Dapr: SUCCESS)
        "stock_no_idempotency",  # stock applies without checking the event id
        "mark_before_effect",  # idempotency key saved before the business effect
        "shared_consumer_id",  # components: one consumerID for all subscribers
        "database_index",  # components: databaseIndex instead of redisDB
    }
)


@dataclass
class BreakerConfig:
    threshold: int = 3
    reset_seconds: float = 60.0
    half_open_max_calls: int = 1


@dataclass
class ServiceConfig:
    name: str
    port: int
    data_dir: str
    host: str = "127.0.0.1"
    log_file: str | None = None
    events_file: str | None = None
    dapr_url: str | None = None  # http://127.0.0.1:<sidecar@app proxy>/v1.0
    service_urls: dict[str, str] = field(default_factory=dict)
    secret_key: str = "test-secret-key-for-development-only"
    pubsub_notify_api_key: str = "test-api-key-for-development-only"
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    dapr_timeout_seconds: float = 5.0
    dapr_max_attempts: int = 3
    republish_interval_seconds: float = 300.0
    republish_min_age_seconds: float = 300.0
    defects: list[str] = field(default_factory=list)
    crash_before_effect_every: int = 0
    # Knob: every Nth business write of a subscriber fails (a processing error, as Kugelpos'
    # MongoDB write when its database is unreachable); the redelivery's write succeeds.
    fail_effect_every: int = 0
    terminal_cache_seconds: float = 300.0  # API-key terminal lookups cached per process (Kugelpos: 300 s)

    def has_defect(self, name: str) -> bool:
        return name in self.defects

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServiceConfig":
        data = dict(data)
        data["breaker"] = BreakerConfig(**data.get("breaker", {}))
        unknown = set(data.get("defects", [])) - KNOWN_DEFECTS
        if unknown:
            raise ValueError(f"unknown defect switch(es): {sorted(unknown)}; known: {sorted(KNOWN_DEFECTS)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ServiceConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
