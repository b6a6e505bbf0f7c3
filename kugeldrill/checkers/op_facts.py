"""What the checkers need of every operation's value, computed once as the history is read.

An operation's value (its business ids and figures, hundreds of bytes) stays in the history
file (checkers.columnar.OpColumns). Two facts of it are needed for every operation of a
run: its event key (checkers.keys: `op_key`, else for a cash operation its cash token),
which fan-out matches against the publications, and the figures its record lacks
(checkers.load_figures), which the drill's notes name. Reading the values again for each
checker cost more than reading the history, so both are computed here, a block of lines
at a time, while the values are at hand.

The common case is checked in C: the values of a block of one kind and outcome are decoded
by msgspec together into a typed form that only a complete record with plain ids satisfies
(every figure a JSON number, every line list non-empty and its lines complete, no `missing`
paths, the key's ids text and integers), whose keys are then one f-string each. A group
that does not fit is decoded into its strict type (figures complete, ids of any type: each
key through `_match`), and a value that does not fit that goes through
`load_figures.lacking` itself, and a key that is not plain text and integers through
`keys.op_key` itself, so the facts are theirs exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Union

import msgspec
import numpy as np

from kugeldrill.checkers.hashindex import sorted_unique
from kugeldrill.checkers.keys import (
    OP_TOPIC,
    op_cash_token,
    op_key,
    plain_cash_tokens,
    plain_tran_keys,
)
from kugeldrill.checkers.load_figures import REQUIRED, lacking
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG

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


def _decoder(t: type) -> msgspec.json.Decoder:
    d = _STRICT.get(t)
    if d is None:
        d = _STRICT[t] = msgspec.json.Decoder(t)
    return d


class BlockFacts:
    """The facts of a block of values: per value its match kind and hash, and what it lacks."""

    __slots__ = ("kind", "hash", "lacking", "others")

    def __init__(self, n: int) -> None:
        self.kind = np.zeros(n, dtype=np.uint8)  # NO_KEY / BY_KEY / BY_CASH_TOKEN
        self.hash = np.zeros(n, dtype=np.int64)  # hash() of the key, or of "scope|token"
        self.lacking: dict[int, list[str]] = {}  # position in the block -> figures lacking (non-empty)
        self.others: list[int] = []  # positions whose value is not a JSON object: no facts here


def _match(f: str, ids: Any) -> tuple[int, int]:
    """(kind, hash) of one operation's event match (fan-out's `op_key`, else its cash token)."""
    topic = OP_TOPIC.get(f)
    if topic is None:
        return NO_KEY, 0
    t, s, n, x = ids.tenant_id, ids.store_code, ids.terminal_no, ids.transaction_no
    if topic == TOPIC_TRANLOG and type(t) is str and type(s) is str and type(n) is int and type(x) is int:
        return BY_KEY, hash(plain_tran_keys((ids,))[0])
    value = {name: getattr(ids, name) for name in _ID_FIELDS}
    k = op_key(f, value)
    if k:
        return BY_KEY, hash(k)
    if topic == TOPIC_CASHLOG:
        ct = op_cash_token(value)
        if ct:
            return BY_CASH_TOKEN, hash(ct[0] + "|" + ct[1])
    return NO_KEY, 0


# The typed form of each strict type: the ids its event key is made of as text and integers
# (present, non-null; a cash token non-empty; a transaction number may be absent where the
# strict type does not require it: then there is no key), and no `missing` paths. A value of
# this form has the key `keys.op_key` (or the cash token `keys.op_cash_token`) would give it,
# formatted in one f-string, and lacks nothing its strict type does not say.
_NoneMissing = Union[Annotated[list, msgspec.Meta(max_length=0)], None]
_Token = Annotated[str, msgspec.Meta(min_length=1)]
_TYPED_IDS: dict[str, tuple[tuple[Any, ...], ...]] = {
    TOPIC_TRANLOG: (("tenant_id", str), ("store_code", str), ("terminal_no", int), ("transaction_no", int)),
    TOPIC_CASHLOG: (("tenant_id", str), ("store_code", str), ("terminal_no", int), ("cash_token", _Token)),
    TOPIC_OPENCLOSELOG: (("tenant_id", str), ("store_code", str), ("terminal_no", int), ("business_date", str),
                         ("open_counter", int)),
}
_NUMBER_OPTIONAL = ("transaction_no", Union[int, None], None)


class _Form:
    """The typed form of one (kind, outcome): its decoder, its key's topic, and whether a
    value may lack its transaction number."""

    __slots__ = ("decoder", "topic", "number_optional")

    def __init__(self, f: str, outcome: str | None) -> None:
        t = _strict_type(f, outcome)
        self.topic = OP_TOPIC.get(f)
        fields: list[Any] = list(_TYPED_IDS.get(self.topic, ())) if self.topic else []
        self.number_optional = self.topic == TOPIC_TRANLOG and t not in (_Numbered, _NumberedFigures)
        if self.number_optional:
            fields[3] = _NUMBER_OPTIONAL
        if t is not _Ids:
            fields.append(("missing", _NoneMissing, None))
        typed = msgspec.defstruct(f"_Typed{t.__name__}", fields, bases=(t,), kw_only=True, gc=False) if fields else t
        self.decoder = msgspec.json.Decoder(typed)


_FORMS: dict[tuple[str, str | None], _Form] = {}


def _typed_facts(f: str, outcome: str | None, joined: bytes, n: int) -> tuple[Any, list[int] | None] | None:
    """(match kind, hashes) of the `n` values of one kind and outcome (`joined`: one a line),
    when every one of them has the typed form (None: they are judged by `_strict_facts`).
    The kind is one for all, or an array (a transaction number absent: no key)."""
    form = _FORMS.get((f, outcome))
    if form is None:
        form = _FORMS[(f, outcome)] = _Form(f, outcome)
    try:
        decoded = form.decoder.decode_lines(joined)
    except msgspec.DecodeError:
        return None
    if len(decoded) != n:  # an empty value (absent) is a blank line, which decodes to nothing
        return None
    topic = form.topic
    if topic == TOPIC_TRANLOG:
        if form.number_optional:
            numbered = [v.transaction_no is not None for v in decoded]
            if not all(numbered):
                hashed = iter(map(hash, plain_tran_keys([v for k, v in zip(numbered, decoded) if k])))
                return (np.array(numbered, dtype=np.uint8) * BY_KEY,
                        [next(hashed) if k else 0 for k in numbered])
        return BY_KEY, list(map(hash, plain_tran_keys(decoded)))
    if topic == TOPIC_CASHLOG:  # op_cash_token's scope, "|", the token
        return BY_CASH_TOKEN, list(map(hash, plain_cash_tokens(decoded)))
    if topic == TOPIC_OPENCLOSELOG:
        return BY_KEY, [hash(f"oc|{v.tenant_id}|{v.store_code}|{v.terminal_no}|{v.business_date}|{v.open_counter}|{f}")
                        for v in decoded]
    return NO_KEY, None


def _codes(values: Sequence[Any], distinct: list[Any]) -> np.ndarray:
    """Each value's position in `distinct`."""
    return np.fromiter(map(dict(zip(distinct, range(len(distinct)))).__getitem__, values), np.intp, len(values))


def _objects(raws: Sequence[Any], joined: bytes) -> np.ndarray:
    """Which of `raws` (joined by newlines in `joined`) are JSON objects (their first byte)."""
    lengths = np.fromiter(map(len, raws), dtype=np.intp, count=len(raws))
    if not len(joined):
        return np.zeros(len(raws), dtype=np.bool_)
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    first = np.take(np.frombuffer(joined, dtype=np.uint8), starts, mode="clip")
    return (lengths > 0) & (first == ord("{"))


def block_facts(fs: Sequence[str], outcomes: Sequence[str | None], raws: Sequence[Any], *,
                coded: tuple[list[Any], np.ndarray] | None = None) -> BlockFacts:
    """The facts of each value (raw JSON of a history's lines, b"" where absent) with its
    operation's kind and outcome (`coded`: the outcomes already coded, the distinct ones and
    each one's position among them). The values of one (kind, outcome) are decoded together:
    into their typed form (`_typed_facts`: the keys in one comprehension, nothing lacking),
    else into their strict type (which says the figures are complete) with each key made by
    `_match`, else one by one. A value that is not an object gets no facts (`others`)."""
    n = len(raws)
    out = BlockFacts(n)
    kinds = list(dict.fromkeys(fs))
    ends = coded[0] if coded is not None else list(dict.fromkeys(outcomes))
    if len(kinds) == 1 and len(ends) == 1:
        groups: list[tuple[str, str | None, np.ndarray]] = [(kinds[0], ends[0], np.arange(n))]
    else:
        end_codes = coded[1] if coded is not None else _codes(outcomes, ends)
        codes = _codes(fs, kinds) * len(ends) + end_codes
        groups = [(kinds[c // len(ends)], ends[c % len(ends)], np.flatnonzero(codes == c))
                  for c in sorted_unique(codes).tolist()]
    for f, outcome, members in groups:
        mine = raws if len(members) == n else list(map(raws.__getitem__, members.tolist()))
        joined = b"\n".join(mine)
        typed = _typed_facts(f, outcome, joined, len(mine))
        if typed is None:
            objects = _objects(mine, joined)
            if not objects.all():  # those are no objects; the others may still have the typed form
                out.others.extend(members[~objects].tolist())
                members = members[objects]
                mine = list(map(raws.__getitem__, members.tolist()))
                joined = b"\n".join(mine)
                typed = _typed_facts(f, outcome, joined, len(mine)) if mine else (NO_KEY, None)
        if typed is not None:
            out.kind[members] = typed[0]
            if typed[1] is not None:
                out.hash[members] = typed[1]
        else:
            _strict_facts(f, outcome, members.tolist(), raws, out)
    return out


def _strict_facts(f: str, outcome: str | None, members: list[int], raws: Sequence[Any], out: BlockFacts) -> None:
    """The facts of values of one kind and outcome (objects) not all of the typed form: one
    strict decode says the figures are complete; a group that does not decode is judged
    value by value (`load_figures.lacking` itself)."""
    t = _strict_type(f, outcome)
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
        out.kind[i], out.hash[i] = _match(f, v)
    for i in unsure:
        missing = lacking(f, outcome, _DICT.decode(raws[i]))
        if missing:
            out.lacking[i] = missing


def value_facts(f: str, outcome: str | None, value: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(match kind, hash, figures lacking) of one operation from its value as a dict."""
    ids = _Ids(**{k: value.get(k) for k in _ID_FIELDS})
    kind, h = _match(f, ids)
    return kind, h, lacking(f, outcome, value)
