"""The native runner's links beyond the Dapr ones: each service's MongoDB connection and each
HTTP call between services, every one behind its own Toxiproxy proxy.

The defects that live in these hops (a subscriber whose MongoDB write or delivery-status
callback fails answers HTTP 200 with a JSON array, and Dapr never redelivers; docs/findings.md
§7) can only be drilled if a fault can reach them. Names follow the `<kind>@<app>` grammar
of the other links, the app being the one that opens the connection:

* `mongo@<app>` — that service → MongoDB (its `MONGODB_URI` names the proxy);
* `http@<caller>><callee>` — caller → callee, for every service's `BASE_URL_<CALLEE>` (the
  subscribers' delivery-status callbacks `http@report>cart`, cart's API-key checks
  `http@cart>terminal`, terminal's close `http@terminal>cart`, ...). Selectors: `http@*>cart`
  every call to cart, `http@report>*` every call report makes, `mongo@*` the database for all.

Service-to-service calls go straight to the callee here, as Kugelpos' dev override wires them
(not through Dapr service invocation), so one proxy per (caller, callee) is the whole hop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kugeldrill.stack.launch.failures import StartFailure
from kugeldrill.stack.launch.links import listen_ports, populate_links
from kugeldrill.stack.launch.plan import APPS, HOST, proxy_name

MONGO_KIND = "mongo"
HTTP_KIND = "http"
# Services other services call (Kugelpos' BASE_URL_<SERVICE> settings; account is only named
# as the OAuth token URL, never called).
CALLEES: dict[str, str] = {"terminal": "BASE_URL_TERMINAL", "master-data": "BASE_URL_MASTER_DATA",
                           "cart": "BASE_URL_CART", "report": "BASE_URL_REPORT", "journal": "BASE_URL_JOURNAL",
                           "stock": "BASE_URL_STOCK"}
MONGO_OPTIONS = "/?replicaSet=rs0&directConnection=true"


def mongo_link(app: str) -> str:
    return f"{MONGO_KIND}@{app}"


def http_link(caller: str, callee: str) -> str:
    return f"{HTTP_KIND}@{caller}>{callee}"


def native_link_names() -> list[str]:
    """Every MongoDB and service-to-service link, in a stable order."""
    names = [mongo_link(app) for app in APPS]
    names += [http_link(caller, callee) for caller in APPS for callee in CALLEES if callee != caller]
    return names


def native_proxy_specs(mongo_port: int, service_ports: dict[str, int], listen_ports: list[int],
                       host: str = HOST) -> list[dict[str, Any]]:
    """The /populate body for `native_link_names()`, each listening on the next of `listen_ports`."""
    specs = []
    for link, listen in zip(native_link_names(), listen_ports, strict=True):
        kind, _, rest = link.partition("@")
        port = mongo_port if kind == MONGO_KIND else service_ports[rest.split(">", 1)[1]]
        specs.append({"name": proxy_name(link), "listen": f"{host}:{listen}", "upstream": f"{host}:{port}",
                      "enabled": True})
    return specs


def link_url(link: str, listen: str) -> str:
    """The URL a service is given for a link: MongoDB's URI (a one-member replica set reached
    directly, as Kugelpos' dev override has it) or the callee's API base."""
    if link.startswith(MONGO_KIND + "@"):
        return f"mongodb://{listen}{MONGO_OPTIONS}"
    return f"http://{listen}/api/v1"


def create_native_links(api: str, mongo_port: int, service_ports: dict[str, int], avoid: set[int],
                        toxiproxy_log: Path, failure: StartFailure) -> dict[str, dict[str, Any]]:
    """Create the proxies; `{link: {proxy, listen, upstream, url}}` for the state file's `links`."""
    ports = listen_ports(len(native_link_names()), avoid)
    made = populate_links(api, native_proxy_specs(mongo_port, service_ports, ports), avoid, toxiproxy_log,
                          failure=failure)
    return {link: {**entry, "url": link_url(link, entry["listen"])} for link, entry in made.items()}


def service_link_env(app: str, links: dict[str, dict[str, Any]]) -> dict[str, str]:
    """`MONGODB_URI` and `BASE_URL_<CALLEE>` of `app`, each through its own link."""
    env = {"MONGODB_URI": links[mongo_link(app)]["url"]}
    for callee, var in CALLEES.items():
        if callee != app:
            env[var] = links[http_link(app, callee)]["url"]
    return env
