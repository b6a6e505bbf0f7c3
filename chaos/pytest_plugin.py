"""pytest fixtures for users' own fault tests against a kugeldrill Toxiproxy.

Installing kugeldrill registers them (the `kugeldrill` plugin, kugeldrill.pytest_plugin,
through a `pytest11` entry point): no conftest line is needed; `-p no:kugeldrill` turns
them off.

* `link_fault` — a context manager that applies one fault of chaos' vocabulary to a link
  and heals it on exit (also when the test fails), e.g.
  `with link_fault("redis@cart", "latency", latency=300): ...`;
* `kugeldrill_toxiproxy` — kugeldrill's typed Toxiproxy client (timeouts, typed errors);
* `toxiproxy_client` — toxiproxy-python's `Toxiproxy()`, for tests written against it;
* `kugeldrill_toxiproxy_api` — the server they all talk to: `--toxiproxy-url`, else
  `$TOXIPROXY_URL`, else the `.kugeldrill/stack.json` that `kugeldrill stack up` writes;
  override the fixture to bind another server. Without one the test is skipped.

Every one of them heals on teardown with kugeldrill's own timeout-safe heal path (never
through toxiproxy-python, which has no timeouts): every toxic on a proxy named
`kugeldrill.*` goes and every such proxy is enabled again, so a failing test never leaves
a link cut. Only loopback servers and links are accepted (the loopback rule).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kugeldrill.chaos.heal import LinkSweep, heal
from kugeldrill.chaos.links import PREFIX, Link, LinkMap
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.netguard import require_loopback

STATE_FILE = Path(".kugeldrill/stack.json")
LINK_FAULT_MAX_SECONDS = 300.0  # every fault is bounded: healed after this even if the block never ends
APPLY_TIMEOUT = 10.0


@pytest.fixture
def kugeldrill_toxiproxy_api(request: pytest.FixtureRequest) -> str:
    """The Toxiproxy API URL the fixtures talk to (override to bind your own server)."""
    url = request.config.getoption("--toxiproxy-url", default=None) or os.environ.get("TOXIPROXY_URL")
    if not url and STATE_FILE.exists():
        url = json.loads(STATE_FILE.read_text()).get("toxiproxy", {}).get("api")
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


def links_on(client: ToxiproxyClient) -> LinkMap:
    """The links a server has: its proxies named `kugeldrill.<kind>@<app>`."""
    return LinkMap([Link(name[len(PREFIX):], proxy.listen, proxy.upstream)
                    for name, proxy in sorted(client.proxies().items()) if name.startswith(PREFIX)])


@pytest.fixture
def link_fault(kugeldrill_toxiproxy: ToxiproxyClient) -> Iterator[Callable[..., AbstractContextManager[Timeline]]]:
    """`with link_fault(LINK, KIND, **params):` — one fault on a link (or a selector such as
    `redis@*`) for the duration of the block.

    KIND and its parameters are chaos' fault vocabulary (down, latency, timeout, flap, ...;
    docs/scenarios.md): `link_fault("sidecar@cart", "down")`, `link_fault("redis@*",
    "latency", latency=150, jitter=50)`. The fault is applied before the block runs and
    healed when it ends, however it ends — or after `seconds` (default 300) if it lasts
    longer. A watchdog process heals it even if the test process is killed. The block gets
    the fault's Timeline (its `status()` says what was applied).
    """
    timelines: list[Timeline] = []

    @contextmanager
    def fault(link: str, kind: str, *, seconds: float = LINK_FAULT_MAX_SECONDS, **params: Any) -> Iterator[Timeline]:
        entry = {"at": 0, "for": seconds, "link": link, "kind": kind, "params": params, "id": "pytest"}
        timeline = Timeline([entry], links_on(kugeldrill_toxiproxy), kugeldrill_toxiproxy)
        timelines.append(timeline)
        timeline.start()
        timeline.wait_applied(timeout=APPLY_TIMEOUT)
        not_applied = [f"{f.subject}: {f.error or f.status}" for f in timeline.faults if f.status != "active"]
        if not_applied:
            timeline.stop()
            raise DrillError(f"{kind} on {link} was not applied within {APPLY_TIMEOUT:g}s: {'; '.join(not_applied)}")
        body_failed = True
        try:
            yield timeline
            body_failed = False
        finally:
            report = timeline.stop()
            if not report.ok and not body_failed:
                raise DrillError(f"{kind} on {link} could not be healed: {report.summary()}",
                                 hint="run 'kugeldrill heal'")

    try:
        yield fault
    finally:
        for timeline in timelines:  # a block left by an exception the test swallowed
            timeline.stop()
