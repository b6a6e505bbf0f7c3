"""Go-compatible JSON writers (envelope and json-iterator state values)."""

from __future__ import annotations

from kugeldrill.stack.sidecar.gojson import dumps_go, dumps_jsoniter_fastest, loads_use_number


def test_use_number_round_trip_keeps_literals():
    text = '{"b":[1.0,-0,2e-7],"a":null,"c":true}'
    assert dumps_go(loads_use_number(text)) == '{"a":null,"b":[1.0,-0,2e-7],"c":true}'


def test_go_floats_from_python_values():
    assert dumps_go({"x": 1e21, "y": 1e-7, "z": 2.0, "w": 0.1}) == '{"w":0.1,"x":1e+21,"y":1e-7,"z":2}'


def test_jsoniter_six_decimals_and_integral_floats():
    assert dumps_jsoniter_fastest({"a": 0.1234567, "b": 3, "c": 2.5, "d": -0.0000004}) == '{"a":0.123457,"b":3,"c":2.5,"d":-0}'
    assert dumps_jsoniter_fastest("<x>") == '"<x>"'  # no HTML escaping
    assert dumps_jsoniter_fastest(None) == "null"
    assert dumps_jsoniter_fastest(123456789012.5) == "123456789012.5"
