"""The stand-in's events-file lines (docs/contracts.md §3) decoded a block at a time.

Two ways, one result. A block is first decoded into typed lines (a tagged union on `kind`):
every field a checker reads has the type the stand-in writes (ids and names strings,
times numbers, a publication's business ids as their own struct), so the code that folds
them (adapters.standin_stream) needs no per-line conversion or type check, and a
publication's key is formatted without a dictionary. A block with any line that does not
fit (an unknown kind, a value of another type, a torn line) is decoded again into loose
lines (`LooseLine`: every field `Any`), which that code converts exactly as before. A typed
publication answers every attribute a loose one does, with the value the loose path would
compute; a typed application only what counting it reads (`AppliedLine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import msgspec

from kugeldrill.ground.jsonl import decode_block


class _Fields(msgspec.Struct, gc=False, rename={"from_": "from", "to_": "to"}):
    """Every field any kind of line carries but its kind, untyped (`Any`) so that no value of
    an unexpected type sends a block to the line-by-line path; payload_keys stays raw JSON
    until a key is needed."""

    service: Any = ""
    mono: Any = 0.0
    ts: Any = None
    wall: Any = None
    event_id: Any = None
    topic: Any = ""
    subscriber: Any = None
    attempt: Any = None
    dedup: Any = None
    outcome: Any = None
    payload_keys: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    breaker: Any = None
    from_: Any = None
    to_: Any = None
    failures: Any = None
    reason: Any = None
    state: Any = None
    op: Any = None
    admitted_mono: Any = None
    key: Any = None
    error: Any = None
    ok: Any = None
    started_mono: Any = None


class LooseLine(_Fields, gc=False):
    """One events-file line of any kind, every field loose."""

    kind: Any = None


FIELDS = tuple(LooseLine.__struct_fields__)
NAMES = tuple({"from_": "from", "to_": "to"}.get(f, f) for f in FIELDS)


class Keys(msgspec.Struct, gc=False, kw_only=True):
    """A publication's business ids (`payload_keys`) as the stand-in writes them: the three
    a key always needs present and plain, the others typed or absent."""

    tenant_id: str
    store_code: str
    terminal_no: int
    transaction_no: int | None = None
    generate_date_time: str | None = None
    description: str | None = None
    business_date: str | None = None
    open_counter: int | None = None
    operation: str | None = None
    event_type: str | None = None


class PublishLine(msgspec.Struct, gc=False, kw_only=True, tag_field="kind", tag="publish"):
    service: str
    ts: float
    mono: float = 0.0
    event_id: str
    topic: str
    outcome: str = "ok"
    attempt: str = "initial"
    payload_keys: Keys | None = None

    kind = "publish"

    @property
    def wall(self) -> float:
        return self.ts


class AppliedLine(msgspec.Struct, gc=False, kw_only=True, tag_field="kind", tag="applied"):
    """An application as it is counted: who applied which event, and how it de-duplicated.
    Its time, topic and business ids are skipped by the decoder (a tenth of the decoding,
    ~3 s of CPU at ten million operations); the rare line that needs them (an application
    of an event no publisher recorded, or without an id) is read again, loose, with its
    block (`standin_stream._Applications.add`)."""

    service: str
    event_id: str
    subscriber: str | None = None
    dedup: str | None = None

    kind = "applied"


class _Other(_Fields, gc=False, kw_only=True, tag_field="kind"):
    """A line of another known kind: loose fields, as `LooseLine` (they become records one
    by one through `standin.EventConverter`)."""


def _other(kind: str) -> type:
    return type(f"_{kind}", (_Other,), {"kind": kind}, tag=kind)  # type: ignore[call-arg]


_OTHERS = tuple(_other(k) for k in ("breaker", "breaker_call", "crash", "duplicate_skipped", "marked",
                                    "state_unreachable"))
_TYPED = msgspec.json.Decoder(Union[(PublishLine, AppliedLine, *_OTHERS)])  # type: ignore[valid-type]
_LOOSE = msgspec.json.Decoder(LooseLine)
_PAYLOAD = msgspec.json.Decoder()


def decode_events(block: bytes) -> list[Any]:
    """The lines of a block: typed where every line fits, else loose (torn lines skipped)."""
    try:
        return _TYPED.decode_lines(block)
    except msgspec.DecodeError:
        return decode_block(_LOOSE, block, coerce=as_record)


def decode_loose(block: bytes) -> list[LooseLine]:
    return decode_block(_LOOSE, block, coerce=as_record)


def payload_of(raw: Any) -> Mapping[str, Any]:
    """payload_keys as a mapping ({} when absent or not an object)."""
    if raw is None:
        return {}
    if isinstance(raw, msgspec.Raw):
        if not len(raw):  # absent from the line
            return {}
        value = _PAYLOAD.decode(raw)
        return value if isinstance(value, Mapping) else {}
    if isinstance(raw, Keys):
        return msgspec.structs.asdict(raw)
    return raw if isinstance(raw, Mapping) else {}


def payloads_of(raws: list[Any]) -> list[Mapping[str, Any]]:
    """The payload_keys of a block of lines, decoded in one call where all are raw objects."""
    if all(type(r) is msgspec.Raw and len(r) for r in raws):
        try:
            values = _PAYLOAD.decode_lines(b"\n".join(raws))
        except msgspec.DecodeError:
            values = []
        if len(values) == len(raws) and all(type(v) is dict for v in values):
            return values
    return [payload_of(r) for r in raws]


def as_record(rec: dict[str, Any]) -> LooseLine:
    """A line no decoder type could take, as a plain dict (see decode_block), as a `LooseLine`."""
    d = {f: rec.get(n) for f, n in zip(FIELDS, NAMES) if n in rec}
    d.setdefault("service", "")
    d.setdefault("mono", 0.0)
    d.setdefault("topic", "")
    return LooseLine(**d)


def wall_of(rec: Any) -> float:
    return float((rec.ts if rec.ts is not None else rec.wall) or 0.0)
