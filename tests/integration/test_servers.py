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
