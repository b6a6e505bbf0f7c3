"""Business keys: how an event, an application and a load operation are matched.

Kugelpos never returns an event id to its clients and drops it from subscriber documents
(docs/kugelpos-facts.md §5, Surprise 11), so the only join between the load history and what the
subscribers did is the business key of the log the event carries:

* tranlog:      (tenant, store, terminal_no, transaction_no)
* cashlog:      (tenant, store, terminal_no, generate_date_time, description); the load puts
                a unique `cash_token` into the description, found again with `cash_tokens`
* opencloselog: (tenant, store, terminal_no, business_date, open_counter, operation)

Keys are plain strings (joined with `|`). They are not interned here: sys.intern's table
lives for the whole process, so adapters share equal strings through their own
`StringPool`, which is dropped once the records are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG

#: Load operation `f` -> the topic its event is published to (contracts §4).
OP_TOPIC: dict[str, str] = {
    "sale": TOPIC_TRANLOG,
    "cancel": TOPIC_TRANLOG,  # a cancelled cart is a tranlog too (Surprise 9)
    "void": TOPIC_TRANLOG,
    "return": TOPIC_TRANLOG,
    "cash_in": TOPIC_CASHLOG,
    "cash_out": TOPIC_CASHLOG,
    "open": TOPIC_OPENCLOSELOG,
    "close": TOPIC_OPENCLOSELOG,
}

_WORD_SPLIT = re.compile(r"[\s,;:()\[\]{}\"'=]+")


def _norm(value: Any) -> str:
    """Terminal numbers arrive as 1, "1" or 1.0 depending on the source; compare as text."""
    t = type(value)
    if t is int:
        return str(value)
    if t is str:
        return value
    if value is None:
        return ""
    if t is float and value.is_integer():
        return str(int(value))
    return str(value).strip()


def tran_key(tenant: Any, store: Any, terminal_no: Any, transaction_no: Any) -> str:
    return f"tran|{_norm(tenant)}|{_norm(store)}|{_norm(terminal_no)}|{_norm(transaction_no)}"


def cash_key(tenant: Any, store: Any, terminal_no: Any, generate_date_time: Any, description: Any) -> str:
    return f"cash|{_norm(tenant)}|{_norm(store)}|{_norm(terminal_no)}|{_norm(generate_date_time)}|{_norm(description)}"


def openclose_key(tenant: Any, store: Any, terminal_no: Any, business_date: Any, open_counter: Any, operation: Any) -> str:
    return (f"oc|{_norm(tenant)}|{_norm(store)}|{_norm(terminal_no)}|{_norm(business_date)}|"
            f"{_norm(open_counter)}|{_norm(operation)}")


def topic_of_log_type(log_type: str) -> str | None:
    """Kugelpos handler log types (`tranlog`, `cashlog`, `opencloselog`) -> topic."""
    lt = log_type.lower().replace("_", "").replace("-", "")
    if lt.startswith("tran"):
        return TOPIC_TRANLOG
    if lt.startswith("cash"):
        return TOPIC_CASHLOG
    if lt.startswith("openclose"):
        return TOPIC_OPENCLOSELOG
    return None


def event_key(topic: str, fields: Mapping[str, Any]) -> str:
    """The business key of an event from its payload fields (`payload_keys`, contracts §3).

    Returns "" when the fields needed are absent, which callers count, never ignore.
    """
    t, s, n = fields.get("tenant_id"), fields.get("store_code"), fields.get("terminal_no")
    if t is None or s is None or n is None:
        return ""
    if topic == TOPIC_TRANLOG:
        txno = fields.get("transaction_no")
        if txno is None:
            return ""
        if type(t) is str and type(s) is str and type(n) is int and type(txno) is int:
            return f"tran|{t}|{s}|{n}|{txno}"  # as tran_key formats them, without its per-value calls
        return tran_key(t, s, n, txno)
    if topic == TOPIC_CASHLOG:
        return cash_key(t, s, n, fields.get("generate_date_time"), fields.get("description"))
    if topic == TOPIC_OPENCLOSELOG:
        operation = fields.get("operation") or fields.get("event_type")
        return openclose_key(t, s, n, fields.get("business_date"), fields.get("open_counter"), operation)
    return ""


def cash_tokens(key: str) -> list[str]:
    """Candidate load tokens inside a cashlog key's description (whole text and its words)."""
    parts = key.split("|", 5)
    if len(parts) < 6 or not parts[5]:
        return []
    desc = parts[5]
    words = [w for w in _WORD_SPLIT.split(desc) if w]
    return [desc, *words] if desc not in words else words


def scoped_cash_tokens(key: str) -> list[str]:
    """`cash_scope(key) + "|" + token` for each of `cash_tokens(key)`, in one call: fan-out
    hashes three of them per cash event of a run."""
    parts = key.split("|", 5)
    if len(parts) < 6 or not parts[5]:
        return []
    return _scoped("|".join(parts[1:4]) + "|", parts[5])


def _scoped(scope: str, desc: str) -> list[str]:
    words = [w for w in _WORD_SPLIT.split(desc) if w]
    return [scope + t for t in ([desc, *words] if desc not in words else words)]


def cash_scope(key: str) -> str:
    """tenant|store|terminal of a cashlog key: tokens are looked up within one terminal."""
    parts = key.split("|", 4)
    return "|".join(parts[1:4]) if len(parts) >= 4 else ""


def op_topic(f: str) -> str | None:
    return OP_TOPIC.get(f)


def op_key(f: str, value: Mapping[str, Any]) -> str:
    """The exact event key of a load operation, or "" when it cannot be known exactly.

    Cash operations return "" here: their event key holds a server timestamp the client
    never sees; they are matched by `op_cash_token` instead.
    """
    topic = OP_TOPIC.get(f)
    if topic is None:
        return ""
    t, s, n = value.get("tenant_id"), value.get("store_code"), value.get("terminal_no")
    if t is None or s is None or n is None:
        return ""
    if topic == TOPIC_TRANLOG:
        txno = value.get("transaction_no")
        if txno is None:
            return ""
        # Not interned: a lookup key, dropped after the match. f-strings format int and str
        # exactly as _norm does; floats (1.0) and others take the slow path.
        if type(n) is float or type(txno) is float or type(t) is float or type(s) is float:
            return f"tran|{_norm(t)}|{_norm(s)}|{_norm(n)}|{_norm(txno)}"
        return f"tran|{t}|{s}|{n}|{txno}"
    if topic == TOPIC_OPENCLOSELOG:
        if value.get("business_date") is None or value.get("open_counter") is None:
            return ""
        return openclose_key(t, s, n, value["business_date"], value["open_counter"], f)
    return ""


def op_cash_token(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """(tenant|store|terminal, cash_token) of a cash operation, or None if unknown."""
    token = value.get("cash_token")
    t, s, n = value.get("tenant_id"), value.get("store_code"), value.get("terminal_no")
    if not token or t is None or s is None or n is None:
        return None
    return f"{_norm(t)}|{_norm(s)}|{_norm(n)}", str(token)


def plain_tran_keys(ids: Iterable[Any]) -> list[str]:
    """`tran_key` of each of many records (structs) whose tenant and store are text and
    whose terminal and transaction numbers are integers, as a typed msgspec decode
    guarantees: formatted in one comprehension, without `_norm`'s call per value (text and
    integers format as `_norm` gives them)."""
    return [f"tran|{v.tenant_id}|{v.store_code}|{v.terminal_no}|{v.transaction_no}" for v in ids]


def plain_event_keys(topics: list[str], ids: list[Any]) -> tuple[list[str], list[str]]:
    """(`event_key`, and the scoped cash tokens of every cash key, as `scoped_cash_tokens`
    gives them) of many publications whose business ids were decoded typed (tenant and store
    text, terminal an integer; the others typed or None): a cash key and its tokens are
    formatted from the fields rather than through a dict and `_norm` per value, and taken
    apart again (a tenth of a run's events, ~6 s of CPU at ten million operations)."""
    keys: list[str] = []
    tokens: list[str] = []
    for topic, v in zip(topics, ids):
        if v is None:
            keys.append("")
        elif topic == TOPIC_TRANLOG and v.transaction_no is not None:  # (a cart's block: plain_tran_keys)
            keys.extend(plain_tran_keys((v,)))
        elif (topic == TOPIC_CASHLOG and v.generate_date_time is not None and v.description is not None
              and "|" not in v.tenant_id and "|" not in v.store_code and "|" not in v.generate_date_time):
            scope = f"{v.tenant_id}|{v.store_code}|{v.terminal_no}|"  # (a "|" in them: the key's own split)
            keys.append(f"cash|{scope}{v.generate_date_time}|{v.description}")
            if v.description:
                tokens.extend(_scoped(scope, v.description))
        else:
            key = event_key(topic, msgspec.structs.asdict(v))
            keys.append(key)
            if topic == TOPIC_CASHLOG and key.startswith("cash|"):
                tokens.extend(scoped_cash_tokens(key))
    return keys, tokens


def plain_cash_tokens(ids: Iterable[Any]) -> list[str]:
    """`scope|token` of `op_cash_token` for many such records with a text `cash_token`."""
    return [f"{v.tenant_id}|{v.store_code}|{v.terminal_no}|{v.cash_token}" for v in ids]


class StringPool:
    """Shares equal strings among the records one adapter builds (event ids, keys, names).

    A plain dict, so it is freed with the adapter, unlike sys.intern's process-wide table.
    """

    __slots__ = ("_pool",)

    def __init__(self) -> None:
        self._pool: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        return self._pool.setdefault(value, value)
