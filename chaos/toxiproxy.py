"""A complete, typed Toxiproxy 2.x client over httpx, with a timeout on every call.

Why our own client: toxiproxy-python has no timeouts, no toxic update, no server-side
populate, and returns 500/503 answers as if they succeeded. A chaos tool whose heal
step can hang or silently fail leaves faults behind, so every call here

* is bounded by `timeout` seconds (a hung toxic removal becomes `ToxiproxyTimeout`);
* turns every non-success status into a typed error (400 `BadRequest`, 404 `NotFound`,
  409 `Conflict`, 500 `ServerError`, 503 `Unavailable`), parsing the JSON error body
  even though the server labels it text/plain;
* refuses a non-loopback API URL unless `allow_hosts` lists the host.

Updates use PATCH (servers >= 2.6.0) and fall back to POST for older servers, which
answer PATCH with the router's 404/405 (no JSON body). `/version` is parsed in all three
formats the server has used (plain text, the broken 2.6.0 JSON, valid JSON).

The protocol logic is written once as generators that yield requests and receive
responses ("sans-io"), driven by `ToxiproxyClient` (sync) and `AsyncToxiproxyClient`.
"""

from __future__ import annotations

import json
from urllib.parse import quote
import re
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from kugeldrill import __version__
from kugeldrill.ground.errors import DrillError, TargetUnreachableError
from kugeldrill.ground.netguard import require_loopback

USER_AGENT = f"kugeldrill/{__version__} (toxiproxy client)"
STREAMS = ("upstream", "downstream")
TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop")


# --------------------------------------------------------------------------- errors


class ToxiproxyError(DrillError):
    """A Toxiproxy API call failed; carries the HTTP status and the server's message."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", path: str = "",
                 server_message: str = "", body: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.path = path
        self.server_message = server_message
        self.body = body
        self.created: list[Proxy] = []  # a failed /populate: the proxies it did create


class BadRequest(ToxiproxyError):
    """400: malformed body, missing field, invalid stream or toxic type."""


class NotFound(ToxiproxyError):
    """404: proxy or toxic does not exist."""


class Conflict(ToxiproxyError):
    """409: a proxy or toxic with that name exists already."""


class ServerError(ToxiproxyError):
    """500: e.g. the listen address is taken (`bind: address already in use`)."""


class Unavailable(ToxiproxyError):
    """503: the server's 25 s handler timeout expired (e.g. a toxic removal hung)."""


class ToxiproxyTimeout(ToxiproxyError):
    """The call did not complete within the client's timeout."""


class ToxiproxyUnreachable(ToxiproxyError, TargetUnreachableError):
    """The API did not accept a connection (server not running, wrong port)."""


class UnexpectedResponse(ToxiproxyError):
    """A status or body the API never sends (e.g. 403 for a browser User-Agent)."""


_STATUS_ERRORS: dict[int, type[ToxiproxyError]] = {
    400: BadRequest, 404: NotFound, 409: Conflict, 500: ServerError, 503: Unavailable,
}


# --------------------------------------------------------------------------- records


@dataclass
class Toxic:
    """One toxic on one stream of a proxy (`stream` upstream = client→server bytes)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Toxic":
        return cls(
            name=str(data.get("name", "")),
            type=str(data.get("type", "")),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity, "attributes": dict(self.attributes)}


@dataclass
class Proxy:
    """A proxy as the server reports it (`listen` in resolved form once started)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: list[Toxic] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Proxy":
        # Unknown keys (the server also sends a meaningless "Logger": {}) are ignored.
        return cls(
            name=str(data.get("name", "")),
            listen=str(data.get("listen", "")),
            upstream=str(data.get("upstream", "")),
            enabled=bool(data.get("enabled", True)),
            toxics=[Toxic.from_json(t) for t in data.get("toxics") or []],
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled}

    @property
    def port(self) -> int:
        """The port the proxy listens on (after the server resolved port 0)."""
        return int(self.listen.rsplit(":", 1)[1])


def parse_version(body: bytes | str) -> str:
    """The server version from any of the three `/version` bodies.

    <= 2.5.0: plain text `2.5.0`; 2.6.0: `{"version": "2.6.0"}` with a literal
    backslash-n (invalid JSON); >= 2.7.0: valid JSON plus newline.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    for candidate in (text, text.replace("\\n", "").strip()):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and "version" in data:
            return str(data["version"]).strip()
        if isinstance(data, str):
            return data.strip()
    match = re.search(r'"version"\s*:\s*"([^"]*)"', text)
    if match:
        return match.group(1).strip()
    return text


def version_tuple(version: str) -> tuple[int, ...]:
    """`"v2.12.0"` → (2, 12, 0); anything unparsable (e.g. `git` dev builds) → ()."""
    match = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version.strip())
    if not match:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


# --------------------------------------------------------------------------- protocol (sans-io)


@dataclass
class _Request:
    method: str
    path: str
    body: Any = None


@dataclass
class _Response:
    status: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content) if self.content.strip() else None


T = TypeVar("T")
_Op = Generator[_Request, _Response, T]


def _server_message(resp: _Response) -> tuple[str, Any]:
    """(message, parsed body) of an error; the body is JSON labelled text/plain."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.content.decode("utf-8", "replace").strip()
        return text, None
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]), body
    return resp.content.decode("utf-8", "replace").strip(), body


def _is_router_miss(resp: _Response) -> bool:
    """404/405 from the router (no JSON body): the route/method does not exist on this server."""
    if resp.status == 405:
        return True
    if resp.status != 404:
        return False
    _, body = _server_message(resp)
    return not (isinstance(body, dict) and "error" in body)


def _raise(req: _Request, resp: _Response, api: str) -> None:
    message, body = _server_message(resp)
    cls = _STATUS_ERRORS.get(resp.status, UnexpectedResponse)
    shown = message or ("empty body; the server's handler timeout expired" if resp.status == 503 else "empty body")
    hint = None
    if resp.status == 503:
        hint = "the server may still be finishing the call; re-check with GET before retrying"
    elif resp.status == 500 and "address already in use" in message:
        hint = "another process took that listen port; choose another port or free it"
    raise cls(
        f"Toxiproxy {req.method} {req.path} at {api} failed with HTTP {resp.status}: {shown}",
        status=resp.status, method=req.method, path=req.path, server_message=message, body=body, hint=hint,
    )


def _q(name: str) -> str:
    """Quote a proxy/toxic name for a path segment (names contain `@` and `.`)."""
    return quote(name, safe="@.-_~")


class _Protocol:
    """Every endpoint as a generator: yields requests, receives responses, returns a value."""

    api: str
    _use_post_updates: bool = False

    def _call(self, method: str, path: str, body: Any = None, ok: Iterable[int] = (200,)) -> _Op[_Response]:
        req = _Request(method, path, body)
        resp = yield req
        if resp.status not in tuple(ok):
            _raise(req, resp, self.api)
        return resp

    def _update(self, path: str, body: dict[str, Any]) -> _Op[_Response]:
        """PATCH (>= 2.6.0), falling back to POST on servers without the PATCH route."""
        if not self._use_post_updates:
            req = _Request("PATCH", path, body)
            resp = yield req
            if resp.status == 200:
                return resp
            if not _is_router_miss(resp):
                _raise(req, resp, self.api)
            self._use_post_updates = True
        return (yield from self._call("POST", path, body))

    # -- server

    def _op_version(self) -> _Op[str]:
        resp = yield from self._call("GET", "/version")
        return parse_version(resp.content)

    def _op_reset(self) -> _Op[None]:
        yield from self._call("POST", "/reset", None, ok=(204, 200))

    def _op_metrics(self) -> _Op[str]:
        resp = yield from self._call("GET", "/metrics")
        return resp.content.decode("utf-8", "replace")

    # -- proxies

    def _op_proxies(self) -> _Op[dict[str, Proxy]]:
        resp = yield from self._call("GET", "/proxies")
        data = resp.json() or {}
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def _op_get_proxy(self, name: str) -> _Op[Proxy]:
        resp = yield from self._call("GET", f"/proxies/{_q(name)}")
        return Proxy.from_json(resp.json())

    def _op_create_proxy(self, name: str, upstream: str, listen: str, enabled: bool) -> _Op[Proxy]:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        resp = yield from self._call("POST", "/proxies", body, ok=(201, 200))
        return Proxy.from_json(resp.json())

    def _op_update_proxy(self, name: str, fields: dict[str, Any]) -> _Op[Proxy]:
        resp = yield from self._update(f"/proxies/{_q(name)}", fields)
        return Proxy.from_json(resp.json())

    def _op_delete_proxy(self, name: str) -> _Op[None]:
        yield from self._call("DELETE", f"/proxies/{_q(name)}", ok=(204, 200))

    def _op_populate(self, proxies: list[dict[str, Any]]) -> _Op[list[Proxy]]:
        req = _Request("POST", "/populate", proxies)
        resp = yield req
        if resp.status not in (201, 200):
            try:
                _raise(req, resp, self.api)
            except ToxiproxyError as err:
                created = (err.body or {}).get("proxies") if isinstance(err.body, dict) else None
                err.created = [Proxy.from_json(p) for p in created or []]
                raise
        data = resp.json() or {}
        return [Proxy.from_json(p) for p in data.get("proxies") or []]

    # -- toxics

    def _op_toxics(self, proxy: str) -> _Op[list[Toxic]]:
        resp = yield from self._call("GET", f"/proxies/{_q(proxy)}/toxics")
        return [Toxic.from_json(t) for t in resp.json() or []]

    def _op_get_toxic(self, proxy: str, name: str) -> _Op[Toxic]:
        resp = yield from self._call("GET", f"/proxies/{_q(proxy)}/toxics/{_q(name)}")
        return Toxic.from_json(resp.json())

    def _op_add_toxic(self, proxy: str, body: dict[str, Any]) -> _Op[Toxic]:
        resp = yield from self._call("POST", f"/proxies/{_q(proxy)}/toxics", body, ok=(200, 201))
        return Toxic.from_json(resp.json())

    def _op_update_toxic(self, proxy: str, name: str, body: dict[str, Any]) -> _Op[Toxic]:
        resp = yield from self._update(f"/proxies/{_q(proxy)}/toxics/{_q(name)}", body)
        return Toxic.from_json(resp.json())

    def _op_remove_toxic(self, proxy: str, name: str) -> _Op[None]:
        yield from self._call("DELETE", f"/proxies/{_q(proxy)}/toxics/{_q(name)}", ok=(204, 200))


def _toxic_body(type: str, stream: str, toxicity: float, attributes: Mapping[str, Any] | None,
                name: str | None) -> dict[str, Any]:
    if stream not in STREAMS:
        raise BadRequest(f"toxic stream {stream!r} is invalid: use 'upstream' or 'downstream'")
    if not 0.0 <= float(toxicity) <= 1.0:
        raise BadRequest(f"toxic toxicity {toxicity!r} is invalid: use a number from 0.0 to 1.0")
    body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": float(toxicity),
                            "attributes": dict(attributes or {})}
    if name:
        body["name"] = name
    return body


def _update_toxic_body(attributes: Mapping[str, Any] | None, toxicity: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if attributes is not None:
        body["attributes"] = dict(attributes)
    if toxicity is not None:
        if not 0.0 <= float(toxicity) <= 1.0:
            raise BadRequest(f"toxic toxicity {toxicity!r} is invalid: use a number from 0.0 to 1.0")
        body["toxicity"] = float(toxicity)
    return body


def _proxy_fields(listen: str | None, upstream: str | None, enabled: bool | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if listen is not None:
        fields["listen"] = listen
    if upstream is not None:
        fields["upstream"] = upstream
    if enabled is not None:
        fields["enabled"] = bool(enabled)
    if not fields:
        raise BadRequest("update_proxy needs at least one of listen, upstream, enabled")
    return fields


def _check_api(api_url: str, allow_hosts: Iterable[str]) -> str:
    if "://" not in api_url:
        raise DrillError(f"Toxiproxy API URL {api_url!r} needs a scheme, e.g. http://127.0.0.1:8474")
    require_loopback(api_url, allow_hosts=allow_hosts, what="Toxiproxy API")
    return api_url.rstrip("/")


def _transport_error(req: _Request, api: str, exc: Exception, timeout: float) -> ToxiproxyError:
    if isinstance(exc, httpx.TimeoutException):
        return ToxiproxyTimeout(
            f"Toxiproxy {req.method} {req.path} at {api} did not answer within {timeout:g}s",
            method=req.method, path=req.path,
            hint="the server may be stuck removing a toxic under load; it answers 503 after 25 s",
        )
    return ToxiproxyUnreachable(
        f"Toxiproxy API {api} is unreachable ({req.method} {req.path}): {exc}",
        method=req.method, path=req.path,
        hint="is toxiproxy-server running? 'kugeldrill stack up' starts one",
    )


# --------------------------------------------------------------------------- sync client


class ToxiproxyClient(_Protocol):
    """Synchronous client. Thread-safe for concurrent calls (httpx.Client is)."""

    def __init__(self, api_url: str, timeout: float = 5.0, allow_hosts: Iterable[str] = (),
                 *, transport: httpx.BaseTransport | None = None) -> None:
        """`transport` exists for unit tests (httpx.MockTransport); leave it None."""
        self.api = _check_api(api_url, allow_hosts)
        self.timeout = float(timeout)
        self._http = httpx.Client(
            base_url=self.api, timeout=httpx.Timeout(self.timeout), transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            trust_env=False,  # never route loopback calls through a proxy from the environment
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ToxiproxyClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, req: _Request) -> _Response:
        try:
            kwargs: dict[str, Any] = {}
            if req.body is not None:
                kwargs["json"] = req.body
            resp = self._http.request(req.method, req.path, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(req, self.api, exc, self.timeout) from exc
        return _Response(resp.status_code, resp.content)

    def _run(self, op: _Op[T]) -> T:
        try:
            req = next(op)
            while True:
                req = op.send(self._send(req))
        except StopIteration as stop:
            return stop.value

    # server
    def version(self) -> str:
        """Server version string, e.g. `2.12.0` (all three body formats handled)."""
        return self._run(self._op_version())

    def version_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.version())

    def reset(self) -> None:
        """POST /reset: re-enable every proxy and remove every toxic on the server.

        Touches proxies kugeldrill does not own; heal uses `chaos.heal` instead.
        """
        self._run(self._op_reset())

    def metrics(self) -> str:
        """Prometheus text (only if the server runs with -proxy-metrics/-runtime-metrics)."""
        return self._run(self._op_metrics())

    # proxies
    def proxies(self) -> dict[str, Proxy]:
        return self._run(self._op_proxies())

    def get_proxy(self, name: str) -> Proxy:
        return self._run(self._op_get_proxy(name))

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        return self._run(self._op_create_proxy(name, upstream, listen, enabled))

    def update_proxy(self, name: str, *, listen: str | None = None, upstream: str | None = None,
                     enabled: bool | None = None) -> Proxy:
        """Change listen/upstream/enabled (PATCH, POST on servers < 2.6.0)."""
        return self._run(self._op_update_proxy(name, _proxy_fields(listen, upstream, enabled)))

    def enable(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._run(self._op_delete_proxy(name))

    def populate(self, proxies: Iterable[Mapping[str, Any] | Proxy]) -> list[Proxy]:
        """Server-side POST /populate: create missing proxies, replace changed ones.

        On failure the raised error has `.created`, the proxies made before it stopped.
        """
        body = [p.to_json() if isinstance(p, Proxy) else dict(p) for p in proxies]
        return self._run(self._op_populate(body))

    # toxics
    def toxics(self, proxy: str) -> list[Toxic]:
        return self._run(self._op_toxics(proxy))

    def get_toxic(self, proxy: str, name: str) -> Toxic:
        return self._run(self._op_get_toxic(proxy, name))

    def add_toxic(self, proxy: str, *, type: str, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: Mapping[str, Any] | None = None, name: str | None = None) -> Toxic:
        """Add a toxic; returns the server's view (resolved default name and attributes)."""
        return self._run(self._op_add_toxic(proxy, _toxic_body(type, stream, toxicity, attributes, name)))

    def update_toxic(self, proxy: str, name: str, *, attributes: Mapping[str, Any] | None = None,
                     toxicity: float | None = None) -> Toxic:
        """Merge attributes / set toxicity in place (no delete+add, so no re-roll or disconnect)."""
        return self._run(self._op_update_toxic(proxy, name, _update_toxic_body(attributes, toxicity)))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._run(self._op_remove_toxic(proxy, name))


# --------------------------------------------------------------------------- async client


class AsyncToxiproxyClient(_Protocol):
    """The same API for asyncio code (every method is a coroutine)."""

    def __init__(self, api_url: str, timeout: float = 5.0, allow_hosts: Iterable[str] = (),
                 *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.api = _check_api(api_url, allow_hosts)
        self.timeout = float(timeout)
        self._http = httpx.AsyncClient(
            base_url=self.api, timeout=httpx.Timeout(self.timeout), transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncToxiproxyClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, req: _Request) -> _Response:
        try:
            kwargs: dict[str, Any] = {}
            if req.body is not None:
                kwargs["json"] = req.body
            resp = await self._http.request(req.method, req.path, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(req, self.api, exc, self.timeout) from exc
        return _Response(resp.status_code, resp.content)

    async def _run(self, op: _Op[T]) -> T:
        try:
            req = next(op)
            while True:
                req = op.send(await self._send(req))
        except StopIteration as stop:
            return stop.value

    async def version(self) -> str:
        return await self._run(self._op_version())

    async def reset(self) -> None:
        await self._run(self._op_reset())

    async def metrics(self) -> str:
        return await self._run(self._op_metrics())

    async def proxies(self) -> dict[str, Proxy]:
        return await self._run(self._op_proxies())

    async def get_proxy(self, name: str) -> Proxy:
        return await self._run(self._op_get_proxy(name))

    async def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                           enabled: bool = True) -> Proxy:
        return await self._run(self._op_create_proxy(name, upstream, listen, enabled))

    async def update_proxy(self, name: str, *, listen: str | None = None, upstream: str | None = None,
                           enabled: bool | None = None) -> Proxy:
        return await self._run(self._op_update_proxy(name, _proxy_fields(listen, upstream, enabled)))

    async def delete_proxy(self, name: str) -> None:
        await self._run(self._op_delete_proxy(name))

    async def populate(self, proxies: Iterable[Mapping[str, Any] | Proxy]) -> list[Proxy]:
        body = [p.to_json() if isinstance(p, Proxy) else dict(p) for p in proxies]
        return await self._run(self._op_populate(body))

    async def toxics(self, proxy: str) -> list[Toxic]:
        return await self._run(self._op_toxics(proxy))

    async def get_toxic(self, proxy: str, name: str) -> Toxic:
        return await self._run(self._op_get_toxic(proxy, name))

    async def add_toxic(self, proxy: str, *, type: str, stream: str = "downstream", toxicity: float = 1.0,
                        attributes: Mapping[str, Any] | None = None, name: str | None = None) -> Toxic:
        return await self._run(self._op_add_toxic(proxy, _toxic_body(type, stream, toxicity, attributes, name)))

    async def update_toxic(self, proxy: str, name: str, *, attributes: Mapping[str, Any] | None = None,
                           toxicity: float | None = None) -> Toxic:
        return await self._run(self._op_update_toxic(proxy, name, _update_toxic_body(attributes, toxicity)))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._run(self._op_remove_toxic(proxy, name))
