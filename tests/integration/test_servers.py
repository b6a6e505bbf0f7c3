"""The real servers start on free loopback ports, answer, and stop without leftovers."""

import httpx
import redis


def test_redis_server_answers_and_stops(redis_server):
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    assert client.ping() is True
    pid = redis_server.process.pid
    redis_server.stop()
    assert not redis_server.process.alive(), f"redis-server pid {pid} still running"


def test_toxiproxy_server_answers(toxiproxy_server):
    resp = httpx.get(f"{toxiproxy_server.api}/proxies", timeout=2)
    assert resp.status_code == 200
    assert resp.json() == {}


def test_a_redis_whose_port_another_server_answers_on_is_not_taken_for_ours(redis_server, tmp_path):
    """Someone else's Redis took the port between choice and bind: its PONG must not make ours
    look started (a deployment wired to another one's Redis shares its streams)."""
    import pytest

    from kugeldrill.ground.errors import DrillError
    from kugeldrill.stack.launch.failures import port_taken
    from kugeldrill.stack.launch.servers import RedisServer

    second = RedisServer(workdir=tmp_path, port=redis_server.port)
    with pytest.raises(DrillError) as caught:
        second.start(timeout=5.0)
    assert port_taken(caught.value), caught.value
    assert not second.process.alive()
