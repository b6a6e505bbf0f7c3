"""The Dapr HTTP API of the sidecar (`/v1.0/...`, `/metrics`) as a Starlette app.

Why Starlette without FastAPI: the sidecar sits on every publish and state call of the
stand-in, and validation layers would add latency the bench forbids (≤ 1 ms at p50). The
statuses and error codes follow dapr.md §1.2–1.4 and §4.7 (including the 409 quirks).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kugeldrill.stack.sidecar import daprerrors as E
from kugeldrill.stack.sidecar.cloudevent import CloudEventError, PublishMetadataError, build_envelope
from kugeldrill.stack.sidecar.gojson import dumps_jsoniter_fastest
from kugeldrill.stack.sidecar.pubsub import PublishError
from kugeldrill.stack.sidecar.resiliency import DeadlineExceeded, PermanentError
from kugeldrill.stack.sidecar.runtime import ComponentInitError, Sidecar
from kugeldrill.stack.sidecar.state import ETagInvalid, ETagMismatch, SetRequest

_NO_CONTENT = 204


def _metadata_params(request: Request) -> dict[str, str]:
    """`metadata.<k>` query parameters → {k: first value} (prefix is case-sensitive)."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata.") and key[9:] not in out:
            out[key[9:]] = value
    return out


def _err_text(exc: BaseException) -> str:
    if isinstance(exc, PermanentError):
        exc = exc.cause
    return str(exc)


def build_app(sidecar: Sidecar) -> "SidecarASGI":
    """The ASGI app; its lifespan starts and stops `sidecar`."""
    app_id = sidecar.app_id
    metrics = sidecar.metrics

    # -- publish -----------------------------------------------------------------
    async def publish(request: Request) -> Response:
        name = request.path_params.get("pubsub", "")
        topic = request.path_params.get("topic", "")
        if not sidecar.pubsubs and not sidecar.resources.pubsubs:
            return E.rich(400, "ERR_PUBSUB_NOT_CONFIGURED", f"{app_id} is not configured with a pubsub",
                          reason="DAPR_PUBSUB_NOT_CONFIGURED", metadata={"appID": app_id})
        if not name:
            return E.rich(404, "ERR_PUBSUB_EMPTY", "pubsub name is empty", reason="DAPR_PUBSUB_NAME_EMPTY",
                          metadata={"appID": app_id})
        ps = sidecar.pubsubs.get(name)
        if ps is None:
            return E.rich(404, "ERR_PUBSUB_NOT_FOUND", f"pubsub {name} is not found", reason="DAPR_PUBSUB_NOT_FOUND",
                          metadata={"appID": app_id})
        if not topic:
            return _no_route()  # daprd's router has no publish route without a topic
        scopes = ps.comp.publishing_scopes
        if scopes is not None and app_id in scopes and topic not in scopes[app_id]:
            return E.rich(403, "ERR_PUBSUB_FORBIDDEN", f"topic {topic} is not allowed for app id {app_id}",
                          reason="DAPR_PUBSUB_FORBIDDEN", resource=("pubsub", name),
                          metadata={"appID": app_id, "topic": topic})
        metadata = _metadata_params(request)
        body = await request.body()
        try:
            data = build_envelope(body, request.headers.get("content-type"), app_id=app_id, pubsub=name,
                                  topic=topic, metadata=metadata)
        except PublishMetadataError as exc:
            return E.rich(400, "ERR_PUBSUB_REQUEST_METADATA", f"failed deserializing metadata. {exc}",
                          reason="DAPR_PUBSUB_METADATA_DESERIALIZATION", resource=("pubsub", name),
                          metadata={"appID": app_id, "pubsubName": name})
        except CloudEventError as exc:
            return E.rich(500, "ERR_PUBSUB_CLOUD_EVENTS_SER",
                          f"error when publishing to topic {topic} in pubsub {name}: {exc}",
                          reason="DAPR_PUBSUB_CLOUD_EVENT_CREATION", resource=("pubsub", name),
                          metadata={"appID": app_id, "pubsubName": name, "topic": topic})
        policy = sidecar.outbound_policies[name]
        started = time.monotonic()
        try:
            if policy.empty:
                await ps.publish(topic, data, metadata)
            else:
                await policy.run(lambda: ps.publish(topic, data, metadata),
                                 lambda kind: metrics.resiliency_activation("", kind, "outbound", policy.target))
        except (PublishError, DeadlineExceeded, Exception) as exc:  # noqa: BLE001
            metrics.pubsub_egress(name, topic, False, (time.monotonic() - started) * 1000)
            text = _err_text(exc)
            message = f"error when publishing to topic {topic} in pubsub {name}: {text}"
            return E.rich(500, "ERR_PUBSUB_PUBLISH_MESSAGE", message, reason="DAPR_PUBSUB_PUBLISH_MESSAGE",
                          resource=("pubsub", name), metadata={"topic": topic, "error": text})
        metrics.pubsub_egress(name, topic, True, (time.monotonic() - started) * 1000)
        return Response(status_code=_NO_CONTENT)

    # -- state ---------------------------------------------------------------------
    def _store(name: str, key: str | None = None):
        if not sidecar.states and not sidecar.resources.states:
            return None, E.rich(500, "ERR_STATE_STORE_NOT_CONFIGURED", "state store is not configured",
                                reason="DAPR_STATE_NOT_CONFIGURED", metadata={"appID": app_id})
        store = sidecar.states.get(name)
        if store is None:
            return None, E.rich(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found",
                                reason="DAPR_STATE_NOT_FOUND", metadata={"appID": app_id})
        if key is not None and "||" in key:
            return None, _illegal_key(key)
        return store, None

    def _illegal_key(key: str) -> Response:
        return E.rich(400, "ERR_MALFORMED_REQUEST", f"input key/keyPrefix '{key}' can't contain '||'",
                      reason="DAPR_STATE_ILLEGAL_KEY", metadata={"appID": app_id},
                      violations=[{"field": key, "description": "input key/keyPrefix can't contain '||'"}])

    async def _run(store_name: str, call):
        policy = sidecar.outbound_policies[store_name]
        if policy.empty:
            return await call()
        return await policy.run(call, lambda kind: metrics.resiliency_activation("", kind, "outbound", policy.target))

    async def get_state(request: Request) -> Response:
        name, key = request.path_params["store"], request.path_params["key"]
        store, err = _store(name, key)
        if err:
            return err
        started = time.monotonic()
        try:
            result = await _run(name, lambda: store.get(key))
        except Exception as exc:  # noqa: BLE001
            metrics.state(name, "get", False, (time.monotonic() - started) * 1000)
            return E.legacy(500, "ERR_STATE_GET", f"fail to get {key} from state store {name}: {_err_text(exc)}")
        metrics.state(name, "get", True, (time.monotonic() - started) * 1000)
        if result.data is None:
            return Response(status_code=_NO_CONTENT)
        headers = {"ETag": result.etag} if result.etag is not None else {}
        return Response(result.data, status_code=200, media_type="application/json", headers=headers)

    async def save_state(request: Request) -> Response:
        name = request.path_params["store"]
        store, err = _store(name)
        if err:
            return err
        try:
            items = json.loads(await request.body())
        except ValueError as exc:
            return E.legacy(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}")
        if not isinstance(items, list):
            return E.legacy(400, "ERR_MALFORMED_REQUEST",
                            "failed deserializing HTTP body: json: cannot unmarshal object into Go value of type []v1.SetRequest")
        query_meta = _metadata_params(request)
        reqs: list[SetRequest] = []
        for item in items:
            parsed = _parse_set_item(item, query_meta)
            if isinstance(parsed, Response):
                return parsed
            if "||" in parsed.key:
                return _illegal_key(parsed.key)
            reqs.append(parsed)
        if not reqs:
            return Response(status_code=_NO_CONTENT)
        started = time.monotonic()

        async def one(req: SetRequest) -> None:
            try:
                await _run(name, lambda: _permanent_etag(store.set(req)))
            except PermanentError as exc:
                raise exc.cause from None

        results = await asyncio.gather(*(one(r) for r in reqs), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        metrics.state(name, "set", not failures, (time.monotonic() - started) * 1000)
        if not failures:
            return Response(status_code=_NO_CONTENT)
        message = "failed saving state in state store " + name + ": " + "\n".join(str(f) for f in failures)
        for failure in failures:
            if isinstance(failure, ETagMismatch):
                return E.legacy(409, "ERR_STATE_SAVE", message)
            if isinstance(failure, ETagInvalid):
                return E.legacy(400, "ERR_STATE_SAVE", message)
        return E.legacy(500, "ERR_STATE_SAVE", message)

    async def delete_state(request: Request) -> Response:
        name, key = request.path_params["store"], request.path_params["key"]
        store, err = _store(name, key)
        if err:
            return err
        etag = request.headers.get("if-match")
        started = time.monotonic()
        try:
            await _run(name, lambda: store.delete(key, etag))
        except Exception as exc:  # noqa: BLE001 - the Redis store reports every delete error as 409
            metrics.state(name, "delete", False, (time.monotonic() - started) * 1000)
            return E.legacy(409, "ERR_STATE_DELETE", f"failed deleting state with key {key}: {_err_text(exc)}")
        metrics.state(name, "delete", True, (time.monotonic() - started) * 1000)
        return Response(status_code=_NO_CONTENT)

    async def bulk_get(request: Request) -> Response:
        name = request.path_params["store"]
        store, err = _store(name)
        if err:
            return err
        try:
            body = json.loads(await request.body() or b"{}")
            keys = body.get("keys") or []
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ValueError("keys must be a list of strings")
        except (ValueError, AttributeError) as exc:
            return E.legacy(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}")
        for key in keys:
            if "||" in key:
                return _illegal_key(key)
        started = time.monotonic()
        async def one(key: str) -> str:
            try:
                result = await _run(name, lambda: store.get(key))
            except Exception as exc:  # noqa: BLE001 - a per-key failure is still a 200
                return json.dumps({"key": key, "error": _err_text(exc)})
            if result.data is None:
                return json.dumps({"key": key})
            try:
                json.loads(result.data)
                data = result.data.decode("utf-8")
            except ValueError:
                data = json.dumps(result.data.decode("utf-8", errors="replace"))
            etag = f',"etag":{json.dumps(result.etag)}' if result.etag is not None else ""
            return f'{{"key":{json.dumps(key)},"data":{data}{etag}}}'

        parts = await asyncio.gather(*(one(k) for k in keys))
        metrics.state(name, "bulk_get", True, (time.monotonic() - started) * 1000)
        return Response("[" + ",".join(parts) + "]", status_code=200, media_type="application/json")

    async def transaction(request: Request) -> Response:
        name = request.path_params["store"]
        store, err = _store(name)
        if err:
            return err
        try:
            body = json.loads(await request.body())
            operations = body.get("operations") or []
        except (ValueError, AttributeError) as exc:
            return E.legacy(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}")
        query_meta = _metadata_params(request)
        ops: list[tuple[str, Any]] = []
        for op in operations:
            kind = (op or {}).get("operation")
            req = (op or {}).get("request") or {}
            if kind == "upsert":
                parsed = _parse_set_item(req, query_meta)
                if isinstance(parsed, Response):
                    return parsed
                ops.append(("upsert", parsed))
            elif kind == "delete":
                if not req.get("key"):
                    return E.legacy(400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
                ops.append(("delete", (str(req["key"]), req.get("etag"))))
            else:
                return E.legacy(400, "ERR_NOT_SUPPORTED_STATE_OPERATION", f"operation type {kind} not supported")
        started = time.monotonic()
        try:
            await _run(name, lambda: store.transaction(ops))
        except Exception as exc:  # noqa: BLE001 - ETag mismatch included: 500, not 409
            metrics.state(name, "transaction", False, (time.monotonic() - started) * 1000)
            return E.legacy(500, "ERR_STATE_TRANSACTION", f"error while executing state transaction: {_err_text(exc)}")
        metrics.state(name, "transaction", True, (time.monotonic() - started) * 1000)
        return Response(status_code=_NO_CONTENT)

    # -- health, metadata, metrics ---------------------------------------------------
    async def healthz(request: Request) -> Response:
        wanted = request.query_params.get("appid")
        if wanted and wanted != app_id:
            return E.legacy(500, "ERR_HEALTH_APPID_NOT_MATCH", "dapr app-id does not match")
        if not sidecar.ready:
            # daprd names the component not ready yet: the runtime, until it has initialised.
            return E.legacy(500, "ERR_HEALTH_NOT_READY", "dapr is not ready: [runtime]")
        return Response(status_code=_NO_CONTENT)

    async def healthz_outbound(request: Request) -> Response:
        if not sidecar.outbound_ready:
            return E.legacy(500, "ERR_OUTBOUND_HEALTH_NOT_READY", "dapr outbound is not ready")
        return Response(status_code=_NO_CONTENT)

    async def metadata(request: Request) -> Response:
        return JSONResponse(sidecar.metadata())

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def fallback(request: Request) -> Response:
        return _no_route()

    routes = [
        Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST", "PUT"]),
        Route("/v1.0/state/{store}/bulk", bulk_get, methods=["POST", "PUT"]),
        Route("/v1.0/state/{store}/transaction", transaction, methods=["POST", "PUT"]),
        Route("/v1.0/state/{store}", save_state, methods=["POST", "PUT"]),
        Route("/v1.0/state/{store}/{key}", get_state, methods=["GET"]),
        Route("/v1.0/state/{store}/{key}", delete_state, methods=["DELETE"]),
        Route("/v1.0/healthz", healthz, methods=["GET"]),
        Route("/v1.0/healthz/outbound", healthz_outbound, methods=["GET"]),
        Route("/v1.0/metadata", metadata, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        # Anything else (unknown path, or a known path with another method): daprd hands it to
        # service invocation, which finds no app id in it.
        Route("/{path:path}", fallback, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]
    return SidecarASGI(sidecar, Starlette(routes=routes))


def _no_route() -> Response:
    return E.legacy(404, "ERR_DIRECT_INVOKE", "failed getting app id either from the URL path or the header dapr-app-id")


class SidecarASGI:
    """The routes plus a lifespan that starts/stops the runtime.

    Why not Starlette's lifespan: a component that cannot reach Redis at start-up must end
    the process with one clear line (as daprd's "daprd will exit gracefully"), not with
    the traceback Starlette would hand to uvicorn.
    """

    def __init__(self, sidecar: Sidecar, app: Starlette) -> None:
        self.sidecar = sidecar
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            path = scope.get("path", "")
            if len(path) > 1 and path.endswith("/"):
                # daprd's router strips trailing slashes (no redirects): /v1.0/healthz/ is healthz.
                scope = {**scope, "path": path.rstrip("/") or "/"}
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.sidecar.start()
                except ComponentInitError as exc:
                    await self.sidecar.stop()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.sidecar.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _permanent_etag(coro):
    """ETag errors are never retried by an outbound policy (dapr.md §5.1)."""
    try:
        return await coro
    except (ETagMismatch, ETagInvalid) as exc:
        raise PermanentError(exc) from None


def _parse_set_item(item: Any, query_meta: dict[str, str]) -> SetRequest | Response:
    if not isinstance(item, dict):
        return E.legacy(400, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: each item must be an object")
    key = item.get("key")
    if not isinstance(key, str) or not key:
        return E.legacy(400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
    meta = item.get("metadata") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        return E.legacy(400, "ERR_MALFORMED_REQUEST",
                        "failed deserializing HTTP body: json: cannot unmarshal number into Go struct field "
                        "SetRequest.metadata of type string")
    merged = {**meta, **query_meta}
    etag = item.get("etag")
    if etag is not None and not isinstance(etag, str):
        return E.legacy(400, "ERR_MALFORMED_REQUEST",
                        "failed deserializing HTTP body: json: cannot unmarshal number into Go struct field "
                        "SetRequest.etag of type string")
    options = item.get("options") or {}
    concurrency = options.get("concurrency", "") if isinstance(options, dict) else ""
    try:
        value = dumps_jsoniter_fastest(item.get("value")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        return E.legacy(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}")
    return SetRequest(
        key=key,
        value=value,
        etag=etag or None,
        ttl=merged.get("ttlInSeconds"),
        first_write=concurrency == "first-write",
        last_write=concurrency == "last-write",
    )
