"""What a target file takes alike from the state file of either launcher (the stand-in's
stack.json, the native runner's kugelpos.json): the services' URLs, JWT auth, the Toxiproxy
API with the links the launcher already created, and the per-service log files."""

from __future__ import annotations

from typing import Any

from kugeldrill.target import AuthSpec, LinkSpec, LogSource, ToxiproxySpec


def reach_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """`TargetFile` fields `services`, `auth`, `toxiproxy` and `links` for a launched deployment."""
    return {
        "services": {app: svc["url"] for app, svc in state["services"].items()},
        "auth": AuthSpec(),
        "toxiproxy": ToxiproxySpec(api=state["toxiproxy"]["api"], manage_links="existing"),
        "links": {link: LinkSpec(listen=spec["listen"], upstream=spec["upstream"])
                  for link, spec in state.get("links", {}).items()},
    }


def service_logs(state: dict[str, Any], key: str) -> LogSource:
    """Each service's log file recorded under `key` (services without one are left out)."""
    return LogSource(files={app: svc[key] for app, svc in state["services"].items() if svc.get(key)})
