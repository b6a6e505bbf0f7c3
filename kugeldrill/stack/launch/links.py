"""The Toxiproxy wiring of a launched deployment: one proxy per link, created with one `/populate` call.

The launcher creates the links itself (faults on them are chaos' business, not the stack's), so
it does not import chaos; the records written here are what `chaos.links.LinkMap` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.ports import free_ports
from kugeldrill.stack.launch.failures import STACK_START, StartFailure
from kugeldrill.stack.launch.plan import HOST, PROXY_PREFIX, PortPlan, link_names, link_url, proxy_name, proxy_specs
from kugeldrill.stack.launch.process import log_tail


def create_links(api: str, plan: PortPlan, toxiproxy_log: Path, host: str = HOST, *,
                 failure: StartFailure = STACK_START) -> dict[str, dict[str, Any]]:
    """Create every link's proxy; return `{link: {proxy, listen, upstream, url}}` for stack.json."""
    specs = {spec["name"]: spec for spec in proxy_specs(plan, host)}
    ordered = [specs[proxy_name(link)] for link in link_names()]
    planned = set(plan.all_ports())
    for spec, port in zip(ordered, listen_ports(len(ordered), planned, host)):
        spec["listen"] = f"{host}:{port}"
    made = populate_links(api, ordered, planned, toxiproxy_log, failure=failure)
    return {link: {**made[link], "url": link_url(link, made[link]["listen"])} for link in link_names()}


def listen_ports(count: int, avoid: set[int], host: str = HOST) -> list[int]:
    """`count` free ports, none of `avoid` (ports planned for parts not started yet). Chosen here,
    not by Toxiproxy: proxies on kernel-picked ports now and then take a port planned for a
    service or sidecar that binds it later (the kernel hands recently freed ports out again)."""
    for _ in range(20):
        ports = [p for p in free_ports(count + len(avoid), host) if p not in avoid][:count]
        if len(ports) == count:
            return ports
    raise OSError("no free ports outside the deployment's plan (address already in use)")


def populate_links(api: str, specs: list[dict[str, Any]], planned: set[int], toxiproxy_log: Path, *,
                   failure: StartFailure = STACK_START) -> dict[str, dict[str, Any]]:
    """Create the proxies `specs` (the /populate body: name, listen, upstream, enabled) in one call;
    return `{link: {proxy, listen, upstream}}`. A proxy given one of the `planned` ports (chosen
    for a part not bound yet) is a start failure: the caller starts over."""
    try:
        resp = httpx.post(f"{api}/populate", json=specs, timeout=5.0)
        resp.raise_for_status()
        created = {p["name"]: p for p in resp.json().get("proxies", [])}
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise failure.at("toxiproxy proxies", f"POST {api}/populate: {type(exc).__name__}: {exc}\n"
                                              f"toxiproxy log:\n{log_tail(toxiproxy_log)}") from exc
    links: dict[str, dict[str, Any]] = {}
    for spec in specs:
        proxy = created.get(spec["name"])
        if proxy is None:
            raise failure.at("toxiproxy proxies", f"/populate did not return {spec['name']}")
        listen = proxy["listen"]
        if int(listen.rsplit(":", 1)[1]) in planned:
            # The kernel gave a proxy a port we chose but have not bound yet: start over.
            raise failure.at("toxiproxy proxies", f"{proxy['name']} got port {listen}, "
                                                  "planned for another part (address already in use)")
        links[spec["name"][len(PROXY_PREFIX):]] = {"proxy": proxy["name"], "listen": listen,
                                                   "upstream": proxy["upstream"]}
    return links


def listen_port(link: dict[str, Any]) -> int:
    return int(str(link["listen"]).rsplit(":", 1)[1])
