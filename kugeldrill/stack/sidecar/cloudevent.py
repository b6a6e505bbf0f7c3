"""The CloudEvent envelope daprd builds on publish (dapr.md §1.2, §8 rule 1).

Why exact: subscribers store and compare these bytes, checkers de-duplicate by `id`, and
kugelpos reads `data` from them; a Python-shaped envelope (unsorted keys, float-rewritten
numbers, microsecond time) would hide or invent bugs that real Dapr does not have.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from kugeldrill.stack.sidecar.durations import DurationError, parse_go_duration
from kugeldrill.stack.sidecar.gojson import NumberPreservingCodec, dumps_go

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_TYPE = "com.dapr.event.sent"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CE_OVERRIDES = ("id", "source", "type", "subject", "traceid", "traceparent", "tracestate")


class CloudEventError(ValueError):
    """The body claimed to be a CloudEvent but is not JSON (→ 500 ERR_PUBSUB_CLOUD_EVENTS_SER)."""


class PublishMetadataError(ValueError):
    """A `metadata.*` publish parameter is invalid (→ 400 ERR_PUBSUB_REQUEST_METADATA)."""


def media_type(content_type: str | None) -> str:
    """The lower-case media type without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_content_type(content_type: str | None) -> bool:
    base = media_type(content_type)
    return base == "application/json" or base.endswith("+json")


def rfc3339_seconds(moment: datetime) -> str:
    """Go `time.RFC3339` of a UTC time: seconds precision, `Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_bool(value: str) -> bool:
    """Go `strconv.ParseBool`."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise PublishMetadataError(f"rawPayload value {value!r} is not a boolean")


def _ttl_seconds(metadata: dict[str, str]) -> int | None:
    raw = metadata.get("ttlInSeconds") or metadata.get("ttl")
    if raw is None or raw == "":
        return None
    try:
        seconds = int(raw)
    except ValueError:
        try:
            seconds = int(parse_go_duration(raw))
        except DurationError as exc:
            raise PublishMetadataError(f"invalid ttl {raw!r}: {exc}") from None
    if seconds <= 0:
        raise PublishMetadataError(f"ttl {raw!r} must be a positive number of seconds")
    return seconds


def build_envelope(
    body: bytes,
    content_type: str | None,
    *,
    app_id: str,
    pubsub: str,
    topic: str,
    metadata: dict[str, str],
    now: datetime | None = None,
) -> bytes:
    """The bytes XADDed as the stream entry's `data` field."""
    now = now or datetime.now(timezone.utc)
    raw_flag = metadata.get("rawPayload")
    if raw_flag is not None and parse_bool(raw_flag):
        return body
    ttl = _ttl_seconds(metadata)
    text = body.decode("utf-8", errors="replace")
    codec = None
    if media_type(content_type) == CLOUDEVENTS_CONTENT_TYPE:
        event = _from_cloudevent(text)
    else:
        codec = NumberPreservingCodec()
        event = _new_envelope(text, body, content_type, app_id=app_id, codec=codec)
        if "time" not in event:
            event["time"] = rfc3339_seconds(now)
    event["topic"] = topic
    event["pubsubname"] = pubsub
    lowered = {k.lower(): v for k, v in metadata.items()}
    for name in _CE_OVERRIDES:
        value = lowered.get(f"cloudevent.{name}")
        if value is not None:
            event[name] = value
    if ttl is not None:
        event["expiration"] = rfc3339_seconds(now + timedelta(seconds=ttl))
    # A new envelope holds only strings, dicts, lists, bools, None and number placeholders:
    # the C encoder writes it as Go would. A passed-through CloudEvent holds float64s.
    text = codec.dumps(event) if codec is not None else dumps_go(event)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone \ud800-style escape: Go decodes it to U+FFFD
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def _from_cloudevent(text: str) -> dict[str, Any]:
    try:
        # Go decodes a passed-through CloudEvent into map[string]interface{}: numbers → float64.
        event = json.loads(text, parse_int=float)
    except ValueError as exc:
        raise CloudEventError(f"cannot create cloudevent: {exc}") from None
    if not isinstance(event, dict):
        raise CloudEventError("cannot create cloudevent: body is not a JSON object")
    event.setdefault("time", rfc3339_seconds(datetime.now(timezone.utc)))
    event.setdefault("traceid", "")
    event.setdefault("traceparent", "")
    event.setdefault("tracestate", "")
    event.setdefault("source", "Dapr")
    event.setdefault("type", DEFAULT_TYPE)
    event.setdefault("specversion", "1.0")
    return event


def _new_envelope(text: str, body: bytes, content_type: str | None, *, app_id: str,
                  codec: NumberPreservingCodec) -> dict[str, Any]:
    datacontenttype = content_type if content_type else "text/plain"
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": app_id,
        "type": DEFAULT_TYPE,
        "specversion": "1.0",
        "datacontenttype": datacontenttype,
        "traceid": "",
        "traceparent": "",
        "tracestate": "",
    }
    if is_json_content_type(content_type) and body:
        try:
            event["data"] = codec.loads_first(text)
        except ValueError:
            event["data"] = text
    elif media_type(content_type) == "application/octet-stream":
        event["data_base64"] = base64.b64encode(body).decode("ascii")
    else:
        event["data"] = text
    return event

