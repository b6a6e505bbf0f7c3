"""What a launched deployment consists of: app ids, links, and the loopback ports they use
(the embedded stack and the native Kugelpos have the same shape).

Kept free of process handling so the shape of the stack (contracts §1) can be checked by
unit tests without starting anything, and so `status`/`down` can rebuild the same view
from a state file.
"""

from __future__ import annotations

from dataclasses import dataclass

from kugeldrill.ground.ports import free_ports

APPS: tuple[str, ...] = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
SIDECAR_APPS: tuple[str, ...] = ("terminal", "cart", "report", "journal", "stock")
SUBSCRIBERS: tuple[str, ...] = ("report", "journal", "stock")
LINK_KINDS: tuple[str, ...] = ("redis", "sidecar", "app")
PROXY_PREFIX = "kugeldrill."
HOST = "127.0.0.1"


def link_names() -> list[str]:
    """Every link, `<kind>@<app>`, in a stable order."""
    return [f"{kind}@{app}" for app in SIDECAR_APPS for kind in LINK_KINDS]


def proxy_name(link: str) -> str:
    return PROXY_PREFIX + link


@dataclass(frozen=True)
class SidecarPorts:
    """A sidecar's own listeners. daprd binds all four (its defaults 3500/50001/9090 would
    collide between five sidecars)."""

    http: int
    grpc: int
    metrics: int
    internal_grpc: int

    def all(self) -> list[int]:
        return [self.http, self.grpc, self.metrics, self.internal_grpc]


@dataclass(frozen=True)
class PortPlan:
    """Ports chosen before anything starts (the proxies get theirs from Toxiproxy: port 0).

    A sidecar's HTTP port is planned here (its `sidecar@` proxy forwards to it); its other
    ports are chosen just before it starts (`sidecar_ports`), so that they stay unbound for as
    short a time as possible — a free port can be taken by anyone until its process binds it.
    """

    redis: int
    toxiproxy: int
    services: dict[str, int]
    sidecars: dict[str, int]

    @classmethod
    def allocate(cls, host: str = HOST) -> "PortPlan":
        ports = free_ports(2 + len(APPS) + len(SIDECAR_APPS), host)
        services = dict(zip(APPS, ports[2 : 2 + len(APPS)]))
        sidecars = dict(zip(SIDECAR_APPS, ports[2 + len(APPS) :]))
        return cls(redis=ports[0], toxiproxy=ports[1], services=services, sidecars=sidecars)

    def all_ports(self) -> list[int]:
        return [self.redis, self.toxiproxy, *self.services.values(), *self.sidecars.values()]

    def sidecar_ports(self, app: str, host: str = HOST) -> SidecarPorts:
        """`app`'s sidecar ports: the planned HTTP port and three free ones none of the plan's."""
        planned = set(self.all_ports())
        for _ in range(20):
            extra = free_ports(3, host)
            if not planned & set(extra):
                return SidecarPorts(self.sidecars[app], *extra)
        raise OSError("no free ports outside the stack's plan (address already in use)")


def link_upstream(link: str, plan: PortPlan, host: str = HOST) -> str:
    """Where a link's proxy forwards to: Redis, the app's sidecar, or the app itself."""
    kind, app = link.split("@", 1)
    if kind == "redis":
        return f"{host}:{plan.redis}"
    if kind == "sidecar":
        return f"{host}:{plan.sidecars[app]}"
    if kind == "app":
        return f"{host}:{plan.services[app]}"
    raise ValueError(f"unknown link kind {kind!r} in {link!r}")


def proxy_specs(plan: PortPlan, host: str = HOST) -> list[dict[str, object]]:
    """The /populate body: one enabled proxy per link, listening on a port Toxiproxy picks."""
    return [
        {"name": proxy_name(link), "listen": f"{host}:0", "upstream": link_upstream(link, plan, host), "enabled": True}
        for link in link_names()
    ]


def link_url(link: str, listen: str) -> str:
    """The URL a client of the link uses (Redis URL for redis@, HTTP for the others)."""
    kind = link.split("@", 1)[0]
    return f"redis://{listen}/0" if kind == "redis" else f"http://{listen}"
