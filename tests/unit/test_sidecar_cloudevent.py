"""The publish envelope is byte-compatible with daprd's (dapr.md §1.2)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from kugeldrill.stack.sidecar.cloudevent import CloudEventError, PublishMetadataError, build_envelope

NOW = datetime(2026, 3, 29, 10, 11, 12, 987654, tzinfo=timezone.utc)


def env(body: bytes, ct: str | None = "application/json", **meta: str) -> bytes:
    return build_envelope(body, ct, app_id="cart", pubsub="pubsub-tranlog-report", topic="topic-tranlog",
                          metadata=meta, now=NOW)


def test_sorted_keys_go_escaping_and_number_literals():
    out = env('{"z":1.50,"a":"<b>&\u2028","big":12345678901234567890,"e":1E3,"u":"é"}'.encode())
    text = out.decode()
    assert text.startswith('{"data":{"a":"\\u003cb\\u003e\\u0026\\u2028","big":12345678901234567890,"e":1E3,"u":"é","z":1.50},')
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert '"time":"2026-03-29T10:11:12Z"' in text  # seconds precision, Z
    event = json.loads(text)
    assert event["source"] == "cart" and event["type"] == "com.dapr.event.sent"
    assert event["specversion"] == "1.0" and event["pubsubname"] == "pubsub-tranlog-report"
    assert event["traceid"] == event["traceparent"] == event["tracestate"] == ""
    assert len(event["id"]) == 36


def test_datacontenttype_is_copied_verbatim():
    event = json.loads(env(b'{"a":1}', "application/json; charset=utf-8"))
    assert event["datacontenttype"] == "application/json; charset=utf-8"
    assert event["data"] == {"a": 1}


def test_missing_content_type_makes_json_a_string():
    event = json.loads(env(b'{"a":1}', None))
    assert event["datacontenttype"] == "text/plain"
    assert event["data"] == '{"a":1}'


def test_invalid_json_with_json_type_is_kept_as_text():
    assert json.loads(env(b"{nope", "application/json"))["data"] == "{nope"


def test_trailing_bytes_after_first_json_value_are_ignored_like_go_decoder():
    assert json.loads(env(b'{"a":1} trailing'))["data"] == {"a": 1}


def test_octet_stream_goes_to_data_base64():
    event = json.loads(env(b"\x00\x01", "application/octet-stream"))
    assert base64.b64decode(event["data_base64"]) == b"\x00\x01" and "data" not in event


def test_raw_payload_publishes_body_unchanged_and_bad_flag_is_rejected():
    assert env(b'{"x": 1}', rawPayload="true") == b'{"x": 1}'
    with pytest.raises(PublishMetadataError):
        env(b"{}", rawPayload="maybe")


def test_cloudevent_passthrough_and_invalid_cloudevent():
    out = json.loads(env(b'{"id":"abc","data":{"n":1},"topic":"other"}', "application/cloudevents+json"))
    assert out["id"] == "abc" and out["topic"] == "topic-tranlog" and out["source"] == "Dapr"
    with pytest.raises(CloudEventError):
        env(b"not json", "application/cloudevents+json")


def test_metadata_overrides_and_ttl_expiration():
    event = json.loads(env(b"{}", **{"cloudevent.id": "fixed", "cloudevent.Type": "t", "ttlInSeconds": "60"}))
    assert event["id"] == "fixed" and event["type"] == "t"
    assert event["expiration"] == "2026-03-29T10:12:12Z"
    with pytest.raises(PublishMetadataError):
        env(b"{}", ttlInSeconds="0")


def test_user_strings_cannot_forge_number_placeholders_and_match_slow_encoder():
    from kugeldrill.stack.sidecar.gojson import dumps_go, loads_use_number

    body = '{"s":"\\u0000abcdef0123456789\\u00001\\u0000","n":[1,2.50,-3e2],"o":{"b":"&","a":null}}'
    event = json.loads(env(body.encode()))
    assert event["data"]["s"] == "\x00abcdef0123456789\x001\x00"
    data_text = env(body.encode()).decode().split('"data":', 1)[1].split(',"datacontenttype"', 1)[0]
    assert data_text == dumps_go(loads_use_number(body))


def test_lone_surrogate_escape_becomes_replacement_character():
    assert json.loads(env(b'{"s":"\\ud800x"}'))["data"]["s"] == "\ufffdx"
