"""Fan-out checker: did every published event reach every subscriber of its topic exactly once?

Events come from the publishers' records (stand-in `publish` events, or Kugelpos' outbox
documents) and from the load history's operations (matched by business key, checkers.keys).
Per event and expected subscriber (tranlog -> report, journal, stock; cashlog, opencloselog
-> report, journal) the result is one of:

* once / duplicated      -- applied 1 / >1 times (duplicates are judged by the duplicate
                            checker unless FanoutPolicy.fail_on_duplicates)
* missing                -- published, never applied; or never published and never applied
                            once its republish was past due (or there is no republish job):
                            the publisher recorded the event, so it owes every subscriber (fails)
* pending_republish      -- never published, not applied yet, and the publisher's republish
                            job still owes it (checkers.pending): unknown, not missing
* skipped / publish_failed -- why an event was never published: every attempt was rejected
                            while the breaker was OPEN / failed (counted beside missing or
                            pending_republish, which say what became of it)
* recovered              -- first publish failed/skipped but it arrived anyway (republish)
* unexpected             -- applied by a subscriber of another topic, or applied but never
                            published (when publisher records exist)          (fails)

From the history: an ok operation with no publication at all is `missing_publication`
(fails); a `fail` operation whose event exists is `fail_op_applied` (fails: the client was
told it did not happen); `info` operations may be present or absent (counted).

Unknown when there is nothing to judge: no publisher records and no mappable ok operations,
or no application records source at all.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from kugeldrill.checkers.columnar import OpColumns, coded, hashes
from kugeldrill.checkers.columns import rows
from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.hashindex import sorted_search, sorted_unique
from kugeldrill.checkers.index import (
    OK_INITIAL,
    OK_REPUBLISH,
    REJECTED,
    EventTable,
    application_index,
    key_index,
    most,
)
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import OP_TOPIC, op_cash_token, op_key, scoped_cash_tokens
from kugeldrill.checkers.model import TOPIC_CASHLOG, CheckResult
from kugeldrill.checkers.op_facts import BY_CASH_TOKEN, BY_KEY
from kugeldrill.checkers.params import FanoutPolicy
from kugeldrill.checkers.pending import Pending

#: From this many events on, rows and operations that only add to a count are counted column-wise
#: (`_rows_to_judge`, `_applied_outside`, `_matched_in_bulk`); the rest are judged one by one.
BULK_FROM = 1024
_SLICE = 1 << 16
_CELLS = ("expected", "once", "missing", "duplicated", "skipped", "publish_failed", "recovered", "unexpected",
          "pending_republish")


def check_fanout(inputs: CheckInputs, policy: FanoutPolicy | None = None, pending: Pending | None = None
                 ) -> CheckResult:
    """Per event and expected subscriber: once / missing / duplicated / unexpected (contracts §8).

    `pending`: operations whose events are still due for republish (checkers.pending); their
    absence is pending_republish (unknown with the reason), never missing."""
    p = policy or FanoutPolicy()
    pending = pending or Pending()
    expected = p.expected
    ex = Examples(p.max_examples)
    unknown: list[str] = []
    if "applications" in inputs.missing and not inputs.applications:
        reason = inputs.missing["applications"]
        return CheckResult("fanout", None, f"unknown: {reason}", details={"unknown": [reason],
                                                                          "provenance": inputs.provenance()})
    idx = application_index(inputs)
    ev = idx.events
    matrix: dict[str, dict[str, dict[str, int]]] = {
        t: {s: dict.fromkeys(_CELLS, 0) for s in subs} for t, subs in expected.items()}
    other_topics: Counter[str] = Counter()
    n_rows = len(ev.event_id)
    zeros = array("H", bytes(2 * n_rows))

    # 1. Every event a publisher recorded. Per topic, the (cell, per-row counts) pairs are
    #    looked up once, so the loop body is a few list/array reads per subscriber.
    plan = {t: [(sub, matrix[t][sub], idx.counts.get(sub, zeros)) for sub in subs] for t, subs in expected.items()}
    ok_bits = OK_INITIAL | OK_REPUBLISH
    topics, states = ev.topic, ev.state
    for r in _rows_to_judge(ev, plan, n_rows):
        st = states[r]
        t = topics[r]
        targets = plan.get(t)
        if targets is None:
            other_topics[t] += 1
            continue
        published = st & ok_bits
        for sub, cell, applied in targets:
            n = applied[r]
            if published:
                if n == 1:
                    cell["once"] += 1
                    if not st & OK_INITIAL:
                        cell["recovered"] += 1
                    continue
                if n == 0:
                    cell["missing"] += 1
                    ex.add("missing", {"subscriber": sub, "topic": t, "event_id": ev.event_id[r], "key": ev.key[r],
                                       "published_mono": round(ev.mono[r], 3), "published_wall": round(ev.wall[r], 3)})
                else:
                    cell["duplicated"] += 1
                    ex.add("duplicated", {"subscriber": sub, "topic": t, "event_id": ev.event_id[r],
                                          "key": ev.key[r], "applications": n})
                    if not st & OK_INITIAL:
                        cell["recovered"] += 1
            elif n:
                cell["recovered"] += 1
            else:
                cell["skipped" if st & REJECTED else "publish_failed"] += 1
                eid = ev.event_id[r]
                detail = {"subscriber": sub, "topic": t, "event_id": eid, "key": ev.key[r],
                          "first_attempt_wall": round(ev.wall[r], 3),
                          "never_published": "rejected while OPEN" if st & REJECTED else "publish failed"}
                if eid in pending.events:
                    cell["pending_republish"] += 1
                    ex.add("pending_republish", detail)
                else:
                    cell["missing"] += 1
                    ex.add("missing", {**detail, "why": "never published, and its republish is past due"
                                       if pending.source or pending.events else "never published (no republish job owes it)"})
    for targets in plan.values():
        for _sub, cell, _applied in targets:
            cell["expected"] = cell["once"] + cell["missing"] + cell["duplicated"]

    # 2. Applications nobody published, or by a subscriber of another topic.
    if ev.published_records:
        for sub, d in idx.extra.items():
            for eid, n in d.items():
                _unexpected(matrix, ex, sub, idx.extra_topic.get(eid, ""), eid, idx.extra_key.get(eid, ""), n,
                            "applied_not_published")
    all_topics_subs = set.intersection(*(set(x) for x in expected.values())) if expected else set()
    for sub, arr in idx.counts.items():
        if sub in all_topics_subs or most(arr) == 0:
            continue
        for r in _applied_outside(ev, arr, expected, sub):
            n = arr[r]
            if n and topics[r] in expected and sub not in expected[topics[r]]:
                _unexpected(matrix, ex, sub, topics[r], ev.event_id[r], ev.key[r], n, "unexpected_subscriber")

    # 3. The load history: ok operations must have produced an event; fail ones must not.
    hist = Counter()
    if p.use_history and inputs.ops:
        _judge_history(inputs, ev, expected, matrix, ex, hist, idx, pending)

    totals = {c: sum(cell[c] for row in matrix.values() for cell in row.values()) for c in _CELLS}
    judged = totals["expected"] + hist["ok_matched_by_key"]
    if not ev.row and not inputs.ops:
        unknown.append("no publisher records and no load history: no events to check")
    elif judged == 0 and not ex:
        unknown.append("no published event or mappable ok operation to check")
    if hist["ok_unmappable"] and hist["ok_unmappable"] >= max(1, hist["ok"]) // 2:
        unknown.append(f"{hist['ok_unmappable']} of {hist['ok']} ok operations carry no business key")
    if totals["pending_republish"]:
        unknown.append(f"{totals['pending_republish']} deliveries not made yet: " + pending.reason())

    failing = {"missing", "unexpected", "missing_publication", "fail_op_applied"}
    if p.fail_on_duplicates:
        failing.add("duplicated")
    bad = {k: v for k, v in ex.counts.items() if k in failing}
    if bad:
        valid = False
        summary = "fan-out broken: " + ", ".join(f"{k} {v}" for k, v in sorted(bad.items()))
    elif unknown:
        valid, summary = None, "unknown: " + unknown[0]
    else:
        valid = True
        summary = (f"{totals['once']} deliveries exactly once of {totals['expected']} expected"
                   + (f"; {totals['duplicated']} duplicated (see duplicates)" if totals["duplicated"] else "")
                   + (f"; {totals['skipped']} skipped while OPEN" if totals["skipped"] else ""))
    counts: dict[str, Any] = {"events": len(ev.row), "events_source": ev.source or "none",
                              "totals": totals, "matrix": matrix, "history": dict(hist),
                              "failures": dict(bad), "other_topics": dict(other_topics)}
    return CheckResult("fanout", valid, summary, counts=counts, examples=ex.items,
                       details={"unknown": unknown, "fail_on_duplicates": p.fail_on_duplicates,
                                "provenance": inputs.provenance()})


def _rows_to_judge(ev: EventTable, plan: dict[str, list[tuple[str, dict[str, int], Any]]], n_rows: int) -> Any:
    """The rows the per-row judgement must look at, in order. A row published and applied
    exactly once by every expected subscriber only adds to `once` (and `recovered` when
    its first attempt failed): those are counted here at once, column-wise."""
    if n_rows < BULK_FROM:
        return range(n_rows)
    codes, names = coded(ev.topic)
    state = np.frombuffer(bytes(ev.state), dtype=np.uint8)
    clean = np.zeros(n_rows, dtype=np.bool_)
    for t, targets in plan.items():
        if t not in names:
            continue
        once = (codes == names.index(t)) & ((state & (OK_INITIAL | OK_REPUBLISH)) != 0)
        for _sub, _cell, applied in targets:
            once &= np.frombuffer(applied, dtype=np.uint16) == 1
        n_once = int(once.sum())
        n_recovered = int((once & ((state & OK_INITIAL) == 0)).sum())
        for _sub, cell, _applied in targets:
            cell["once"] += n_once
            cell["recovered"] += n_recovered
        clean |= once
    return np.flatnonzero(~clean).tolist()


def _applied_outside(ev: EventTable, arr: Any, expected: dict[str, tuple[str, ...]], sub: str) -> Any:
    """The rows `sub` applied whose topic it does not subscribe to (candidates, in order)."""
    if len(arr) < BULK_FROM:
        return range(len(arr))
    codes, names = coded(ev.topic)
    outside = np.array([name in expected and sub not in expected[name] for name in names], dtype=np.bool_)
    return np.flatnonzero((np.frombuffer(arr, dtype=np.uint16) != 0) & outside[codes]).tolist()


def _unexpected(matrix: dict[str, dict[str, dict[str, int]]], ex: Examples, sub: str, t: str, eid: str, key: str,
                n: int, why: str) -> None:
    if t in matrix and sub in matrix[t]:
        matrix[t][sub]["unexpected"] += 1
    ex.add("unexpected", {"subscriber": sub, "topic": t, "event_id": eid, "key": key, "applications": n,
                          "why": why})


def _judge_history(inputs: CheckInputs, ev: EventTable, expected: dict[str, tuple[str, ...]],
                   matrix: dict[str, dict[str, dict[str, int]]], ex: Examples, hist: Counter,
                   idx: Any, pending: Pending) -> None:
    """Match operations to events by business key; count and flag (see module docstring)."""
    have_events = ev.published_records
    # Business key -> an event id, from publisher records, else from the applications.
    key_to_event: Mapping[str, str] = {}
    if have_events:
        key_to_event = ev.by_key()  # first event wins
    else:
        key_to_event = {}
        for eid, k in idx.extra_key.items():
            if k:
                key_to_event.setdefault(k, eid)  # type: ignore[attr-defined]
    cash = _CashMap(lambda: _cash_keys(key_to_event, ev, have_events))
    by_key = key_index(inputs) if not have_events else None
    op_topic = OP_TOPIC.get
    ops_rows = rows(inputs.ops, "op_id", "f", "outcome", "value", "invoke_mono", "invoke_wall", "error")
    if have_events and isinstance(inputs.ops, OpColumns) and ev.key_index is not None and len(ev.event_id) >= BULK_FROM:
        tokens = ev.cash_token_hashes if ev.cash_token_hashes is not None else cash.token_hashes()
        ops_rows = _matched_in_bulk(inputs.ops, ev, tokens, hist)
    for op_id, f, outcome, value, invoke_mono, invoke_wall, error in ops_rows:
        topic = op_topic(f)
        if topic is None:
            continue
        outcome = outcome or "info"
        hist[outcome] += 1
        k = op_key(f, value)
        if not k and topic == TOPIC_CASHLOG:
            ct = op_cash_token(value)
            if ct:
                k = cash.get(ct[0] + "|" + ct[1], "")
                if not k and outcome == "ok":
                    # Not published under that token: keep a key that matches nothing.
                    k = "cash-token|" + ct[0] + "|" + ct[1]
        if not k:
            hist[f"{outcome}_unmappable"] += 1
            continue
        eid = key_to_event.get(k)
        if outcome == "ok" and have_events:  # the common case at scale: one dict read
            if eid is None:
                ex.add("missing_publication", {"op": op_id, "f": f, "key": k,
                                               "invoke_mono": round(invoke_mono, 3),
                                               "invoke_wall": round(invoke_wall, 3)})
            else:
                hist["ok_with_event"] += 1
            continue
        present = eid is not None or (by_key is not None and
                                      any(by_key.get(s, {}).get(k, 0) for s in expected.get(topic, ())))
        if outcome == "ok":
            hist["ok_matched_by_key"] += 1
            for sub in expected.get(topic, ()):
                n = by_key.get(sub, {}).get(k, 0) if by_key is not None else 0
                cell = matrix[topic][sub]
                cell["expected"] += 1
                if n == 1:
                    cell["once"] += 1
                elif n == 0 and op_id in pending.ops:
                    cell["expected"] -= 1  # owed by the republish job: neither once nor missing yet
                    cell["pending_republish"] += 1
                    ex.add("pending_republish", {"subscriber": sub, "topic": topic, "op": op_id, "f": f, "key": k,
                                                 "invoke_mono": round(invoke_mono, 3)})
                elif n == 0:
                    cell["missing"] += 1
                    ex.add("missing", {"subscriber": sub, "topic": topic, "op": op_id, "f": f, "key": k,
                                       "invoke_mono": round(invoke_mono, 3)})
                else:
                    cell["duplicated"] += 1
                    ex.add("duplicated", {"subscriber": sub, "topic": topic, "op": op_id, "key": k,
                                          "applications": n})
        elif outcome == "fail":
            if present:
                ex.add("fail_op_applied", {"op": op_id, "f": f, "key": k, "event_id": eid,
                                           "invoke_mono": round(invoke_mono, 3), "error": error})
        else:
            hist["info_present" if present else "info_absent"] += 1


def _cash_keys(key_to_event: Mapping[str, str], ev: EventTable, have_events: bool) -> Iterator[str]:
    """The keys of `key_to_event` that may be cashlog keys, in its order. For a streamed table
    (its keys behind a hash index) only the cashlog rows' keys are read: `keys.event_key` makes a
    "cash|" key of a cashlog event only."""
    if not have_events or ev.key_index is None:
        return iter(key_to_event)
    codes, names = coded(ev.topic)
    if TOPIC_CASHLOG not in names:
        return iter(())
    cash_rows = np.flatnonzero(codes == names.index(TOPIC_CASHLOG))
    del codes
    # The first row holding each key, latest first, as `EventTable.by_key` iterates them.
    return _first_keys(ev, cash_rows[::-1])


def _first_keys(ev: EventTable, rows: np.ndarray) -> Iterator[str]:
    """The keys of these rows that are their key's first row, a slice at a time."""
    for start in range(0, len(rows), _SLICE):
        part = rows[start:start + _SLICE].tolist()
        keys = [ev.key[r] for r in part]
        first = ev.key_index.rows_of_hashes(hashes(keys)).tolist()
        yield from (k for k, r, f in zip(keys, part, first) if k and (f == r or f == -2 and ev.key_index.get(k) == r))


class _CashMap:
    """A cash operation's token -> the cashlog key holding it ("scope|token" -> key; the first
    key iterated wins), built from `keys` when first asked. The bulk match needs only the
    tokens' hashes (`token_hashes`), so on a healthy run of millions of cash events the map
    of every token (three per event) is never built."""

    def __init__(self, keys: Callable[[], Iterator[str]]) -> None:
        self._keys = keys
        self._map: dict[str, str] | None = None

    def _tokens(self) -> Iterator[tuple[str, str]]:
        for k in self._keys():
            if k.startswith("cash|"):
                for tok in scoped_cash_tokens(k):
                    yield tok, k

    def get(self, token: str, default: str = "") -> str:
        if self._map is None:
            self._map = {}
            for t, k in self._tokens():
                self._map.setdefault(t, k)
        return self._map.get(token, default)

    def token_hashes(self) -> np.ndarray:
        """The sorted hashes of every token."""
        out = array("q")
        for k in self._keys():
            if k.startswith("cash|"):
                out.extend(map(hash, scoped_cash_tokens(k)))
        return sorted_unique(np.frombuffer(out, dtype=np.int64)) if len(out) else np.zeros(0, np.int64)


def _matched_in_bulk(ops: OpColumns, ev: EventTable, token_hashes: np.ndarray, hist: Counter
                     ) -> Iterator[tuple[Any, ...]]:
    """`ok` operations whose event key (or cash token) the publications hold, counted at once
    from the keys computed as the history was read (checkers.op_facts): each one's per-operation
    judgement would only add `ok` and `ok_with_event`. The rows of every other operation of a
    topic, in history order, for the per-operation judgement. A slice of operations at a
    time, so what it allocates stays a few MB whatever the run's size."""
    n = len(ops)
    topical = np.array([OP_TOPIC.get(name) is not None for name in ops.f.names], dtype=np.bool_)
    ok_code = ops.outcome.names.index("ok") if "ok" in ops.outcome.names else -1
    kind_all = np.frombuffer(ops.match_kind, dtype=np.uint8)
    hashed_all = np.frombuffer(ops.match_hash, dtype=np.int64)
    f_all, outcome_all = ops.f.array(), ops.outcome.array()
    rest = np.zeros(n, dtype=np.bool_)  # in storage order
    n_matched = 0
    for start in range(0, n, _SLICE):
        end = min(n, start + _SLICE)
        has_topic = topical[f_all[start:end]]
        ok = has_topic & (outcome_all[start:end] == ok_code)
        kind, hashed = kind_all[start:end], hashed_all[start:end]
        matched = np.zeros(end - start, dtype=np.bool_)
        by_key = np.flatnonzero(ok & (kind == BY_KEY))
        if len(by_key):
            matched[by_key[ev.key_index.rows_of_hashes(hashed[by_key]) >= 0]] = True
        # Every cashlog key a token maps to is a key of the table's first events: an operation
        # whose token it holds has its event.
        by_token = np.flatnonzero(ok & (kind == BY_CASH_TOKEN))
        if len(by_token):
            wanted = hashed[by_token]
            pos = np.minimum(sorted_search(token_hashes, wanted), max(len(token_hashes) - 1, 0))
            if len(token_hashes):
                matched[by_token[token_hashes[pos] == wanted]] = True
        n_matched += int(matched.sum())
        rest[start:end] = has_topic & ~matched
    if n_matched:
        hist["ok"] += n_matched
        hist["ok_with_event"] += n_matched
    if ops.order is not None:
        rest = rest[ops.order]
    return ((op.op_id, op.f, op.outcome, op.value, op.invoke_mono, op.invoke_wall, op.error)
            for op in map(ops.__getitem__, np.flatnonzero(rest).tolist()))
