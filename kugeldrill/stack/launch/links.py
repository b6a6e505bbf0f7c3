"""The Toxiproxy wiring of a launched deployment: one proxy per link, created with one `/populate` call.

The launcher creates the links itself (faults on them are chaos' business, not the stack's), so
it does not import chaos; the records written here are what `chaos.links.LinkMap` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kugeldrill.stack.launch.failures import STACK_START, StartFailure
from kugeldrill.stack.launch.plan import HOST, PortPlan, link_names, link_url, proxy_name, proxy_specs
from kugeldrill.stack.launch.process import log_tail


def create_links(api: str, plan: PortPlan, toxiproxy_log: Path, host: str = HOST, *,
                 failure: StartFailure = STACK_START) -> dict[str, dict[str, Any]]:
    """Create every link's proxy; return `{link: {proxy, listen, upstream, url}}` for stack.json."""
    try:
        resp = httpx.post(f"{api}/populate", json=proxy_specs(plan, host), timeout=5.0)
        resp.raise_for_status()
        created = {p["name"]: p for p in resp.json().get("proxies", [])}
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise failure.at("toxiproxy proxies", f"POST {api}/populate: {type(exc).__name__}: {exc}\n"
                                              f"toxiproxy log:\n{log_tail(toxiproxy_log)}") from exc
    links: dict[str, dict[str, Any]] = {}
    planned = set(plan.all_ports())
    for link in link_names():
        proxy = created.get(proxy_name(link))
        if proxy is None:
            raise failure.at("toxiproxy proxies", f"/populate did not return {proxy_name(link)}")
        listen = proxy["listen"]
        if int(listen.rsplit(":", 1)[1]) in planned:
            # The kernel gave a proxy a port we chose but have not bound yet: start over.
            raise failure.at("toxiproxy proxies", f"{proxy['name']} got port {listen}, "
                                                  "planned for another part (address already in use)")
        links[link] = {"proxy": proxy["name"], "listen": listen, "upstream": proxy["upstream"],
                       "url": link_url(link, listen)}
    return links


def listen_port(link: dict[str, Any]) -> int:
    return int(str(link["listen"]).rsplit(":", 1)[1])
