"""A target file for a running embedded stand-in, as if it were an external deployment.

This is how the real-deployment path is exercised without Docker: the drill then uses
only what the target file offers (HTTP URLs, the Toxiproxy API, Kugelpos-format log
files, the Redis URL) and none of the stand-in's structured events.
"""

from __future__ import annotations

from typing import Any

from kugeldrill.target import (AuthSpec, BreakerSpec, LinkSpec, LogSource, ObserveSpec, TargetFile,
                               ToxiproxySpec)


def target_from_stack(state: dict[str, Any], name: str = "embedded-as-external") -> TargetFile:
    options = state.get("options", {})
    breaker = options.get("breaker", {})
    return TargetFile(
        name=name,
        description="The embedded stand-in described as an external deployment (observed through "
        "logs and Redis only).",
        services={app: svc["url"] for app, svc in state["services"].items()},
        auth=AuthSpec(mode="jwt"),
        toxiproxy=ToxiproxySpec(api=state["toxiproxy"]["api"], manage_links="existing"),
        links={link: LinkSpec(listen=spec["listen"], upstream=spec["upstream"])
               for link, spec in state.get("links", {}).items()},
        observe=ObserveSpec(
            logs=LogSource(files={app: svc["log"] for app, svc in state["services"].items() if svc.get("log")}),
            redis_url=state["redis"]["url"],
        ),
        breaker=BreakerSpec(
            threshold=int(breaker.get("threshold", 3)),
            reset_seconds=float(breaker.get("reset_seconds", 60.0)),
            half_open="unlimited" if "breaker_unlimited_half_open" in options.get("defects", []) else "single",
            failures="cumulative" if "breaker_cumulative_failures" in options.get("defects", []) else "consecutive",
        ),
    )
