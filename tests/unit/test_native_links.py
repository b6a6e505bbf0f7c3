"""The native runner's MongoDB and service-to-service links (stack/native/links.py)."""

from __future__ import annotations

from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.stack.launch.plan import APPS
from kugeldrill.stack.native.links import (CALLEES, http_link, link_url, mongo_link, native_link_names,
                                           native_proxy_specs, service_link_env)


def test_every_service_has_a_mongodb_link_and_one_per_service_it_can_call() -> None:
    names = native_link_names()
    assert [n for n in names if n.startswith("mongo@")] == [f"mongo@{a}" for a in APPS]
    http = [n for n in names if n.startswith("http@")]
    assert "http@report>cart" in http and "http@cart>terminal" in http and "http@terminal>cart" in http
    assert "http@cart>cart" not in http and not any(n.endswith(">account") for n in http)
    assert len(http) == len(APPS) * len(CALLEES) - len(CALLEES)
    assert len(set(names)) == len(names)


def test_proxies_forward_to_mongodb_and_to_the_callee() -> None:
    services = {app: 40000 + i for i, app in enumerate(APPS)}
    names = native_link_names()
    specs = {s["name"]: s for s in native_proxy_specs(27017, services, list(range(50000, 50000 + len(names))))}
    assert specs["kugeldrill.mongo@journal"]["upstream"] == "127.0.0.1:27017"
    assert specs["kugeldrill.http@report>cart"]["upstream"] == f"127.0.0.1:{services['cart']}"
    assert len({s["listen"] for s in specs.values()}) == len(names)


def test_a_service_is_given_its_own_links() -> None:
    links = {name: {"url": link_url(name, f"127.0.0.1:{5000 + i}")} for i, name in enumerate(native_link_names())}
    env = service_link_env("report", links)
    assert env["MONGODB_URI"] == links[mongo_link("report")]["url"]
    assert env["MONGODB_URI"].endswith("/?replicaSet=rs0&directConnection=true")
    assert env["BASE_URL_CART"] == links[http_link("report", "cart")]["url"] and env["BASE_URL_CART"].endswith("/api/v1")
    assert "BASE_URL_REPORT" not in env  # its own URL stays direct


def test_the_names_fit_the_link_grammar_and_its_selectors() -> None:
    links = LinkMap([Link(n, f"127.0.0.1:{6000 + i}", "127.0.0.1:1") for i, n in enumerate(native_link_names())])
    assert [l.name for l in links.select("http@*>cart")] == [f"http@{a}>cart" for a in APPS if a != "cart"]
    assert [l.name for l in links.select("http@report>*")] == [f"http@report>{c}" for c in CALLEES if c != "report"]
    assert len(links.select("mongo@*")) == len(APPS)
