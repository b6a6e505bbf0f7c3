"""The client against the real toxiproxy-server: every endpoint, status codes and errors."""

from __future__ import annotations

import socket

import pytest

from kugeldrill.chaos.toxiproxy import BadRequest, Conflict, NotFound, ServerError, ToxiproxyClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(toxiproxy_server):
    with ToxiproxyClient(toxiproxy_server.api, timeout=5.0) as c:
        yield c


def test_proxy_lifecycle(client, redis_server):
    assert client.version()  # a dev build says "git", a release "2.12.0"
    p = client.create_proxy("kugeldrill.redis@t", f"127.0.0.1:{redis_server.port}")
    assert p.port > 0 and p.enabled and p.toxics == []
    with pytest.raises(Conflict):
        client.create_proxy("kugeldrill.redis@t", f"127.0.0.1:{redis_server.port}")
    assert set(client.proxies()) == {"kugeldrill.redis@t"}
    assert client.update_proxy(p.name, enabled=False).enabled is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.port), timeout=1).close()
    assert client.update_proxy(p.name, enabled=True).enabled is True
    socket.create_connection(("127.0.0.1", p.port), timeout=1).close()
    client.delete_proxy(p.name)
    with pytest.raises(NotFound, match="proxy not found"):
        client.delete_proxy(p.name)


def test_toxic_lifecycle(client, redis_server):
    p = client.create_proxy("kugeldrill.x", f"127.0.0.1:{redis_server.port}")
    t = client.add_toxic(p.name, type="latency", stream="upstream", attributes={"latency": 50},
                         name="kugeldrill.f1")
    assert (t.name, t.stream, t.attributes["latency"]) == ("kugeldrill.f1", "upstream", 50)
    with pytest.raises(Conflict):  # names are unique across both streams
        client.add_toxic(p.name, type="latency", stream="downstream", name="kugeldrill.f1")
    u = client.update_toxic(p.name, "kugeldrill.f1", attributes={"jitter": 5}, toxicity=0.25)
    assert u.attributes == {"latency": 50, "jitter": 5} and u.toxicity == 0.25
    assert [x.name for x in client.toxics(p.name)] == ["kugeldrill.f1"]
    assert client.get_toxic(p.name, "kugeldrill.f1").toxicity == 0.25
    with pytest.raises(BadRequest, match="invalid toxic type"):
        client.add_toxic(p.name, type="bogus")
    client.remove_toxic(p.name, "kugeldrill.f1")
    with pytest.raises(NotFound, match="toxic not found"):
        client.get_toxic(p.name, "kugeldrill.f1")


def test_populate_and_reset(client, redis_server):
    up = f"127.0.0.1:{redis_server.port}"
    made = client.populate([{"name": "kugeldrill.a", "listen": "127.0.0.1:0", "upstream": up},
                            {"name": "kugeldrill.b", "listen": "127.0.0.1:0", "upstream": up, "enabled": False}])
    assert [(p.name, p.enabled) for p in made] == [("kugeldrill.a", True), ("kugeldrill.b", False)]
    with pytest.raises(BadRequest, match="missing required field: upstream at proxy 1"):
        client.populate([{"name": "kugeldrill.c"}])
    assert "kugeldrill.c" not in client.proxies()
    client.add_toxic("kugeldrill.a", type="timeout", attributes={"timeout": 0}, name="kugeldrill.t")
    client.reset()
    state = client.proxies()
    assert state["kugeldrill.b"].enabled and state["kugeldrill.a"].toxics == []


def test_bind_conflict_is_server_error(client, redis_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServerError, match="address already in use"):
            client.create_proxy("kugeldrill.taken", f"127.0.0.1:{redis_server.port}", listen=f"127.0.0.1:{port}")


def test_async_client_against_real_server(toxiproxy_server, redis_server):
    import asyncio

    from kugeldrill.chaos.toxiproxy import AsyncToxiproxyClient

    async def main():
        async with AsyncToxiproxyClient(toxiproxy_server.api) as c:
            (p,) = await c.populate([{"name": "kugeldrill.a", "listen": "127.0.0.1:0",
                                      "upstream": f"127.0.0.1:{redis_server.port}"}])
            await c.add_toxic(p.name, type="latency", attributes={"latency": 5}, name="kugeldrill.t")
            t = await c.update_toxic(p.name, "kugeldrill.t", attributes={"latency": 7})
            disabled = await c.update_proxy(p.name, enabled=False)
            await c.remove_toxic(p.name, "kugeldrill.t")
            with pytest.raises(NotFound):
                await c.get_toxic(p.name, "kugeldrill.t")
            return t.attributes["latency"], disabled.enabled, await c.version()

    latency, enabled, version = asyncio.run(main())
    assert (latency, enabled) == (7, False) and version
