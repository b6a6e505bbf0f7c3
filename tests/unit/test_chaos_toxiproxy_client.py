"""Client behaviours a real v2.12 server cannot show: old /version bodies, POST fallback
for servers < 2.6.0, empty 503 bodies, timeouts. Uses httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from kugeldrill.chaos.toxiproxy import (
    AsyncToxiproxyClient, BadRequest, Conflict, NotFound, ServerError, ToxiproxyClient,
    ToxiproxyTimeout, Unavailable, parse_version, version_tuple,
)
from kugeldrill.ground.errors import NotLoopbackError

API = "http://127.0.0.1:8474"


@pytest.mark.parametrize("body,expected", [
    (b"2.5.0", "2.5.0"),
    (b"2.1.4\n", "2.1.4"),
    (b'{"version": "2.6.0"}\\n', "2.6.0"),
    (b'{"version": "2.12.0"}\n', "2.12.0"),
    (b'{"version": "git"}\n', "git"),
])
def test_version_formats(body, expected):
    assert parse_version(body) == expected


def test_version_tuple():
    assert version_tuple("v2.12.0") == (2, 12, 0)
    assert version_tuple("2.5") == (2, 5)
    assert version_tuple("git") == ()


def _client(handler) -> ToxiproxyClient:
    return ToxiproxyClient(API, transport=httpx.MockTransport(handler))


def test_update_falls_back_to_post_on_old_servers():
    seen = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.method)
        if req.method == "PATCH":
            return httpx.Response(405, text="")  # router: method not allowed
        body = json.loads(req.content)
        return httpx.Response(200, json={"name": "p", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                                         "enabled": body["enabled"], "toxics": [], "Logger": {}})

    client = _client(handler)
    assert client.update_proxy("p", enabled=False).enabled is False
    assert client.update_proxy("p", enabled=True).enabled is True
    assert seen == ["PATCH", "POST", "POST"]  # remembers the server has no PATCH


def test_patch_real_404_is_not_a_fallback():
    def handler(req):
        return httpx.Response(404, text='{"error":"proxy not found","status":404}\n',
                              headers={"content-type": "text/plain; charset=utf-8"})

    with pytest.raises(NotFound) as info:
        _client(handler).update_proxy("gone", enabled=True)
    assert info.value.server_message == "proxy not found"
    assert info.value.status == 404


@pytest.mark.parametrize("status,text,exc", [
    (400, '{"error":"invalid toxic type","status":400}\n', BadRequest),
    (409, '{"error":"toxic already exists","status":409}\n', Conflict),
    (500, '{"error":"listen tcp 127.0.0.1:3310: bind: address already in use","status":500}\n', ServerError),
    (503, "", Unavailable),
])
def test_typed_errors_parse_text_plain_json(status, text, exc):
    def handler(req):
        return httpx.Response(status, text=text, headers={"content-type": "text/plain; charset=utf-8"})

    with pytest.raises(exc) as info:
        _client(handler).add_toxic("p", type="latency", attributes={"latency": 1})
    assert info.value.status == status
    assert f"HTTP {status}" in str(info.value)
    if text:
        assert json.loads(text)["error"] in str(info.value)


def test_timeout_becomes_typed_error():
    def handler(req):
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(ToxiproxyTimeout, match="did not answer within 5s"):
        _client(handler).remove_toxic("p", "t")


def test_non_loopback_api_refused():
    with pytest.raises(NotLoopbackError, match="Toxiproxy API"):
        ToxiproxyClient("http://192.0.2.10:8474")
    assert ToxiproxyClient("http://toxi.test:8474", allow_hosts=["toxi.test"]).api == "http://toxi.test:8474"


def test_bad_arguments_rejected_before_sending():
    client = _client(lambda req: pytest.fail("must not send"))
    with pytest.raises(BadRequest, match="stream"):
        client.add_toxic("p", type="latency", stream="sideways")
    with pytest.raises(BadRequest, match="toxicity"):
        client.add_toxic("p", type="latency", toxicity=1.5)
    with pytest.raises(BadRequest, match="at least one"):
        client.update_proxy("p")


def test_names_with_at_sign_are_path_safe():
    paths = []

    def handler(req):
        paths.append(req.url.raw_path.decode())
        return httpx.Response(204)

    _client(handler).remove_toxic("kugeldrill.redis@cart", "kugeldrill.f1/x")
    assert paths == ["/proxies/kugeldrill.redis@cart/toxics/kugeldrill.f1%2Fx"]


def test_async_client_same_protocol():
    def handler(req):
        return httpx.Response(200, text='{"version": "2.6.0"}\\n')

    async def main():
        async with AsyncToxiproxyClient(API, transport=httpx.MockTransport(handler)) as client:
            return await client.version()

    assert asyncio.run(main()) == "2.6.0"
