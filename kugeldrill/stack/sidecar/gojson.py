"""JSON encoders that reproduce the bytes Dapr's Go code writes.

Why: subscribers and checkers see the exact bytes the sidecar stored, so the stand-in must
write what daprd writes, not what Python's `json` writes:

* CloudEvents (publish) are written by Go `encoding/json` from a map decoded with
  `UseNumber`: keys sorted, `<`, `>`, `&`, U+2028, U+2029 escaped as `\\u003c` etc.,
  non-ASCII as raw UTF-8, and number literals kept as the publisher wrote them.
* State values are written by json-iterator `ConfigFastest` after a plain (float64)
  decode: map keys in no particular order, no HTML escaping, floats with at most six
  decimals below 83,886,079 (dapr.md §4.4).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_encode_str = json.encoder.encode_basestring  # ensure_ascii=False variant, C-accelerated

_GO_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class GoNumber(str):
    """A JSON number kept as its literal text (Go `json.Number`)."""

    __slots__ = ()


def loads_use_number(text: str | bytes) -> Any:
    """Decode JSON keeping every number literal verbatim (Go `Decoder.UseNumber`)."""
    return json.loads(text, parse_int=GoNumber, parse_float=GoNumber, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    # Go rejects NaN/Infinity literals; Python would accept them.
    raise ValueError(f"invalid JSON literal {name}")


def go_string(value: str) -> str:
    """A JSON string as Go `encoding/json` writes it (HTML-safe escaping)."""
    return _encode_str(value).translate(_GO_HTML_ESCAPES)


def dumps_go(value: Any) -> str:
    """Serialise like Go `json.Marshal` of a `map[string]interface{}` tree."""
    parts: list[str] = []
    _encode(value, parts.append, _GO)
    return "".join(parts)


@dataclass(frozen=True)
class _Dialect:
    """What differs between Go's encoding/json and json-iterator's ConfigFastest."""

    string: Callable[[str], str]  # key and string escaping
    number: Callable[[Any], str]  # int/float formatting
    sort_keys: bool  # Go sorts map keys; json-iterator keeps (random) map order
    go_numbers: bool  # GoNumber literals (UseNumber decode) are written verbatim


def _go_number(value: Any) -> str:
    return str(value) if isinstance(value, int) else _go_float(value)


def _encode(value: Any, out: Callable[[str], Any], d: "_Dialect") -> None:
    if d.go_numbers and isinstance(value, GoNumber):
        out(str.__str__(value))
    elif isinstance(value, str):
        out(d.string(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, dict):
        out("{")
        for i, key in enumerate(sorted(value) if d.sort_keys else value):
            if i:
                out(",")
            out(d.string(key))
            out(":")
            _encode(value[key], out, d)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for i, item in enumerate(value):
            if i:
                out(",")
            _encode(item, out, d)
        out("]")
    elif isinstance(value, (int, float)):
        out(d.number(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _go_float(value: float) -> str:
    """Go `encoding/json` float64: shortest round-trip, exponent form only at 1e21+ / <1e-6."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError("unsupported value: NaN or Inf")
    abs_v = abs(value)
    if abs_v != 0 and (abs_v < 1e-6 or abs_v >= 1e21):
        text = repr(value)
        mantissa, _, exp = text.partition("e")
        sign = exp[0] if exp[:1] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:  # Go writes e+21 but cleans e-07 to e-7
            digits = "0" + digits
        return f"{mantissa}e{sign}{digits}"
    if value == int(value) and abs_v < 1e17:
        return str(int(value))
    return _plain_decimal(repr(value))


def _plain_decimal(text: str) -> str:
    """Rewrite Python's shortest repr without an exponent (Go 'f' with precision -1)."""
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    from decimal import Decimal

    return format(Decimal(text), "f")


# --- json-iterator ConfigFastest (state values) -------------------------------------

def dumps_jsoniter_fastest(value: Any) -> str:
    """Serialise a plainly-decoded value the way Dapr's Redis state store stores it."""
    parts: list[str] = []
    _encode(value, parts.append, _JSONITER)
    return "".join(parts)


_POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000]


def _jsoniter_float(value: float) -> str:
    """json-iterator `WriteFloat64Lossy`: six decimals, rounded half up, trailing zeros cut."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError("unsupported value: NaN or Inf")
    sign = ""
    if value < 0:
        sign, value = "-", -value
    if value > 0x4FFFFFF:
        return sign + _go_float(value)
    lval = int(value * 1000000.0 + 0.5)
    whole, frac = divmod(lval, 1000000)
    if frac == 0:
        return f"{sign}{whole}"
    frac_text = str(frac).rjust(6, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}"


_GO = _Dialect(string=go_string, number=_go_number, sort_keys=True, go_numbers=True)
# encoding/json decoded every number to float64 before json-iterator wrote it.
_JSONITER = _Dialect(string=_encode_str, number=lambda v: _jsoniter_float(float(v)), sort_keys=False,
                     go_numbers=False)


# --- fast path for publish ----------------------------------------------------------

import re as _re
import secrets as _secrets

_PLACEHOLDER = _re.compile(r'"\\u0000([0-9a-f]{16})([-+.eE0-9]+)\\u0000"')


class NumberPreservingCodec:
    """`UseNumber` decode + Go encode using the C-accelerated `json` module.

    Why: the publish path runs for every event, and the recursive encoder above costs
    more than the Redis round trip. Numbers are decoded to placeholder strings carrying a
    per-call random nonce (so no user string can forge one), the tree is dumped with
    sorted keys in C, and the placeholders are swapped back to their literal text.
    """

    __slots__ = ("_tag",)

    def __init__(self) -> None:
        self._tag = _secrets.token_hex(8)

    def _number(self, literal: str) -> str:
        return f"\x00{self._tag}{literal}\x00"

    def loads_first(self, text: str) -> Any:
        """The first JSON value in `text` (Go `Decoder.Decode`), numbers as placeholders."""
        decoder = json.JSONDecoder(parse_int=self._number, parse_float=self._number,
                                   parse_constant=_reject_constant)
        value, _ = decoder.raw_decode(text.lstrip(" \t\r\n"))
        return value

    def dumps(self, value: Any) -> str:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if "\\u0000" in text:
            tag = self._tag
            text = _PLACEHOLDER.sub(lambda m: m.group(2) if m.group(1) == tag else m.group(0), text)
        return text.translate(_GO_HTML_ESCAPES)
