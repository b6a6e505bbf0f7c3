"""pytest fixtures for users' own fault tests against a kugeldrill Toxiproxy.

`toxiproxy_client` is the user's named client, toxiproxy-python's `Toxiproxy()`,
pointed at our server. That library keeps its host/port in class attributes (one server
per process) and has no timeouts, so the fixture sets the address for the test and puts
it back afterwards, and teardown heals with kugeldrill's own timeout-safe heal path
(never through toxiproxy-python). `kugeldrill_toxiproxy` is our typed client.

Enable in a conftest.py:  `pytest_plugins = ["kugeldrill.chaos.pytest_plugin"]`

Which server: the `kugeldrill_toxiproxy_api` fixture. By default it reads
`--toxiproxy-url`, else env `TOXIPROXY_URL`, else `.kugeldrill/stack.json` (what
`kugeldrill stack up` writes); override the fixture to bind another server, e.g.

    @pytest.fixture
    def kugeldrill_toxiproxy_api(toxiproxy_server):
        return toxiproxy_server.api

Teardown heals every `kugeldrill.*` proxy plus every toxic the test added on a proxy
named `kugeldrill.*` — so a failing test never leaves a link cut.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kugeldrill.chaos.heal import LinkSweep, heal
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.netguard import require_loopback


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kugeldrill")
    group.addoption("--toxiproxy-url", default=None, help="Toxiproxy API for the toxiproxy_client fixture")


@pytest.fixture
def kugeldrill_toxiproxy_api(request: pytest.FixtureRequest) -> str:
    """The Toxiproxy API URL the fixtures talk to (override to bind your own server)."""
    url = request.config.getoption("--toxiproxy-url", default=None) or os.environ.get("TOXIPROXY_URL")
    if not url:
        state = Path(".kugeldrill/stack.json")
        if state.exists():
            url = json.loads(state.read_text()).get("toxiproxy", {}).get("api")
    if not url:
        pytest.skip("no Toxiproxy: pass --toxiproxy-url, set TOXIPROXY_URL or run 'kugeldrill stack up'")
    return require_loopback(str(url), what="Toxiproxy API")


@pytest.fixture
def kugeldrill_toxiproxy(kugeldrill_toxiproxy_api: str) -> Iterator[ToxiproxyClient]:
    """kugeldrill's typed client (timeouts, typed errors); heals kugeldrill.* on teardown."""
    with ToxiproxyClient(kugeldrill_toxiproxy_api) as client:
        try:
            yield client
        finally:
            heal([LinkSweep(client)])


@pytest.fixture
def toxiproxy_client(kugeldrill_toxiproxy_api: str) -> Iterator[object]:
    """toxiproxy-python's `Toxiproxy()` bound to our server; healed by kugeldrill on teardown."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    parts = urlsplit(kugeldrill_toxiproxy_api)
    saved = (APIConsumer.host, APIConsumer.port)
    server = Toxiproxy()
    server.update_api_consumer(parts.hostname, parts.port or 8474)
    try:
        yield server
    finally:
        APIConsumer.host, APIConsumer.port = saved
        heal([LinkSweep(kugeldrill_toxiproxy_api)])
