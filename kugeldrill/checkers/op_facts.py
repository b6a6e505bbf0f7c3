"""What the checkers need of every operation's value, computed once as the history is read.

An operation's value (its business ids and figures, hundreds of bytes) stays in the history
file (checkers.columnar.OpColumns). Two facts of it are needed for every operation of a
run: its event key (checkers.keys: `op_key`, else for a cash operation its cash token),
which fan-out matches against the publications, and the figures its record lacks
(checkers.load_figures), which the drill's notes name. Reading the values again for each
checker cost more than reading the history, so both are computed here, a block of lines
at a time, while the values are at hand.

The common case is checked in C: a block's values are decoded by msgspec once into the few
ids a key needs, and the values of one kind and outcome once more into a strict type that
only a complete record satisfies (every figure a JSON number, every line list non-empty
and its lines complete, no `missing` paths). A value that does not fit goes through
`load_figures.lacking` itself, and a key that is not plain text and integers through
`keys.op_key` itself, so the facts are theirs exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Union

import msgspec

from kugeldrill.checkers.keys import OP_TOPIC, op_cash_token, op_key
from kugeldrill.checkers.load_figures import REQUIRED, lacking
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_TRANLOG

#: How an operation is matched to its event: by its exact key, by its cash token, or not at all.
NO_KEY, BY_KEY, BY_CASH_TOKEN = 0, 1, 2


class _Ids(msgspec.Struct, gc=False, kw_only=True):
    """The fields of a value `keys.op_key` and `keys.op_cash_token` read (absent: None, as `.get`)."""

    tenant_id: Any = None
    store_code: Any = None
    terminal_no: Any = None
    transaction_no: Any = None
    business_date: Any = None
    open_counter: Any = None
    cash_token: Any = None


_ID_FIELDS = _Ids.__struct_fields__
_IDS = msgspec.json.Decoder(_Ids)
_DICT = msgspec.json.Decoder()

# A JSON number: what `number_or_none` turns into a float (bools and numeric strings, which
# it takes too, fall to the exact path).
Num = Union[int, float]
Present = Union[int, float, str, bool, list, dict]  # anything but null: a transaction number is only required to exist


class _TaxLine(msgspec.Struct, gc=False):
    tax_amount: Num
    target_amount: Num
    target_quantity: Num


class _Payment(msgspec.Struct, gc=False):
    amount: Num


class _Item(msgspec.Struct, gc=False):
    quantity: Num


# The strict types: a value's ids (for its key) and, required, the figures its kind and
# outcome must carry (`load_figures.REQUIRED`); the load's own `missing` paths kept to look at.
class _Note(_Ids, gc=False, kw_only=True):
    missing: Any = None


class _Amount(_Note, gc=False, kw_only=True):
    amount: Num


class _Numbered(_Note, gc=False, kw_only=True):
    transaction_no: Present  # type: ignore[assignment]


class _Figures(_Note, gc=False, kw_only=True):
    """A sale's, void's or return's figures, complete (without its number)."""

    amount: Num
    tax: Num
    quantity: Num
    taxes: Annotated[list[_TaxLine], msgspec.Meta(min_length=1)]
    payments: Annotated[list[_Payment], msgspec.Meta(min_length=1)]
    items: Annotated[list[_Item], msgspec.Meta(min_length=1)]


class _NumberedFigures(_Figures, gc=False, kw_only=True):
    transaction_no: Present  # type: ignore[assignment]


def _strict_type(f: str, outcome: str | None) -> type:
    """The type only a complete value of this kind and outcome decodes into (`_Ids`: nothing required)."""
    if outcome == "fail":
        return _Ids
    wanted = REQUIRED.get(f)
    if wanted is None:
        return _Note
    if outcome != "ok":
        wanted = tuple(k for k in wanted if k != "transaction_no")
    if not wanted:
        return _Note
    if wanted == ("transaction_no",):
        return _Numbered
    if wanted == ("amount",):
        return _Amount
    return _NumberedFigures if "transaction_no" in wanted else _Figures


_STRICT: dict[type, msgspec.json.Decoder] = {}
_TYPE_OF: dict[tuple[str, str | None], type] = {}  # (kind, outcome) -> its strict type


def _decoder(t: type) -> msgspec.json.Decoder:
    d = _STRICT.get(t)
    if d is None:
        d = _STRICT[t] = msgspec.json.Decoder(t)
    return d


class BlockFacts:
    """The facts of a block of values: per value its match kind and hash, and what it lacks."""

    __slots__ = ("kind", "hash", "lacking")

    def __init__(self, n: int) -> None:
        self.kind = bytearray(n)  # NO_KEY / BY_KEY / BY_CASH_TOKEN
        self.hash = [0] * n  # hash() of the key, or of "scope|token"
        self.lacking: dict[int, list[str]] = {}  # position in the block -> figures lacking (non-empty)


def _match(f: str, ids: Any) -> tuple[int, int]:
    """(kind, hash) of one operation's event match (fan-out's `op_key`, else its cash token)."""
    topic = OP_TOPIC.get(f)
    if topic is None:
        return NO_KEY, 0
    t, s, n, x = ids.tenant_id, ids.store_code, ids.terminal_no, ids.transaction_no
    if topic == TOPIC_TRANLOG and type(t) is str and type(s) is str and type(n) is int and type(x) is int:
        return BY_KEY, hash(f"tran|{t}|{s}|{n}|{x}")  # as op_key formats them
    value = {name: getattr(ids, name) for name in _ID_FIELDS}
    k = op_key(f, value)
    if k:
        return BY_KEY, hash(k)
    if topic == TOPIC_CASHLOG:
        ct = op_cash_token(value)
        if ct:
            return BY_CASH_TOKEN, hash(ct[0] + "|" + ct[1])
    return NO_KEY, 0


def block_facts(fs: Sequence[str], outcomes: Sequence[str | None], raws: Sequence[bytes]) -> BlockFacts:
    """The facts of each value (raw JSON objects of a history's lines; the caller gives only
    objects) with its operation's kind and outcome: one strict decode per (kind, outcome)
    group of the block gives the ids and says the figures are complete; a group that does
    not decode is judged value by value."""
    n = len(raws)
    out = BlockFacts(n)
    groups: dict[type, list[int]] = {}
    type_of = _TYPE_OF
    for i, key in enumerate(zip(fs, outcomes)):
        t = type_of.get(key)
        if t is None:
            t = type_of[key] = _strict_type(*key)
        groups.setdefault(t, []).append(i)
    kind, hashes = out.kind, out.hash
    for t, members in groups.items():
        try:
            decoded = _decoder(t).decode_lines(b"\n".join([raws[i] for i in members]))
        except msgspec.DecodeError:
            decoded = None
        if decoded is not None and len(decoded) == len(members):
            unsure = [i for i, v in zip(members, decoded) if t is not _Ids and v.missing]
        else:
            decoded = [_IDS.decode(raws[i]) for i in members]
            unsure = members if t is not _Ids else []
        for i, v in zip(members, decoded):
            kind[i], hashes[i] = _match(fs[i], v)
        for i in unsure:
            missing = lacking(fs[i], outcomes[i], _DICT.decode(raws[i]))
            if missing:
                out.lacking[i] = missing
    return out


def value_facts(f: str, outcome: str | None, value: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(match kind, hash, figures lacking) of one operation from its value as a dict."""
    ids = _Ids(**{k: value.get(k) for k in _ID_FIELDS})
    kind, h = _match(f, ids)
    return kind, h, lacking(f, outcome, value)
