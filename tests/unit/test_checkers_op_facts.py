"""checkers.op_facts: the facts computed as the history is read equal what the checkers' own
functions say of each value (keys.op_key / op_cash_token, load_figures.lacking), whichever
path (strict decode or value by value) a block takes."""

from __future__ import annotations

import itertools
import json

from kugeldrill.checkers.keys import OP_TOPIC, TOPIC_CASHLOG, op_cash_token, op_key
from kugeldrill.checkers.load_figures import lacking
from kugeldrill.checkers.op_facts import BY_CASH_TOKEN, BY_KEY, NO_KEY, block_facts, value_facts

_SALE = {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "transaction_no": 17, "amount": 110,
         "tax": 10, "quantity": 1,
         "taxes": [{"tax_code": "01", "tax_amount": 10, "target_amount": 100, "target_quantity": 1}],
         "payments": [{"payment_code": "01", "amount": 110}], "items": [{"item_code": "i", "quantity": 1}]}


def _variants() -> list[tuple[str, dict]]:
    """Values of every kind: complete, each figure absent / null / a string / a bool, empty and
    malformed lines, ids of other types, the load's own `missing` paths, cash and open/close."""
    out: list[tuple[str, dict]] = [("sale", dict(_SALE)), ("void", dict(_SALE)), ("return", dict(_SALE))]
    for name in ("transaction_no", "amount", "tax", "quantity", "taxes", "payments", "items"):
        for bad in (None, "12.5", "n/a", True, [], [{}], ["x"], 0):
            v = dict(_SALE)
            if bad is None and name == "tax":
                v.pop(name)
            else:
                v[name] = bad
            out.append(("sale", v))
    out.append(("sale", {**_SALE, "taxes": [], "tax": 0}))  # an untaxed sale carries no tax lines
    out.append(("sale", {**_SALE, "taxes": [{"tax_amount": None, "target_amount": 1, "target_quantity": 1}]}))
    out.append(("sale", {**_SALE, "missing": ["totalAmountWithTax"]}))
    out.append(("sale", {**_SALE, "missing": ["amount"], "amount": None}))
    out.append(("sale", {**_SALE, "terminal_no": "3"}))
    out.append(("sale", {**_SALE, "terminal_no": 3.0}))
    out.append(("sale", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3}))
    out.append(("cancel", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "transaction_no": 5}))
    out.append(("cancel", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3}))
    out.append(("cash_in", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "cash_token": "kd1", "amount": 5}))
    out.append(("cash_out", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "cash_token": "kd2"}))
    out.append(("cash_in", {"tenant_id": "T1", "store_code": "S1", "cash_token": "kd3", "amount": "5"}))
    out.append(("open", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "business_date": "20260101",
                         "open_counter": 1}))
    out.append(("close", {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "missing": ["openCounter"]}))
    out.append(("browse", {"tenant_id": "T1"}))
    return out


def _expected(f: str, outcome: str | None, value: dict) -> tuple[int, int, list[str]]:
    k = op_key(f, value)
    if k:
        return BY_KEY, hash(k), lacking(f, outcome, value)
    ct = op_cash_token(value) if OP_TOPIC.get(f) == TOPIC_CASHLOG else None
    if ct:
        return BY_CASH_TOKEN, hash(ct[0] + "|" + ct[1]), lacking(f, outcome, value)
    return NO_KEY, 0, lacking(f, outcome, value)


def test_block_facts_equal_the_checkers_own_functions_for_every_value() -> None:
    cases = [(f, o, v) for (f, v), o in itertools.product(_variants(), ("ok", "info", "fail", None))]
    raws = [json.dumps(v).encode() for _f, _o, v in cases]
    # One block of everything (strict groups fail, values go one by one) and blocks of one
    # value each (every strict decode that can succeed does).
    blocks = [list(range(len(cases)))] + [[i] for i in range(len(cases))]
    for members in blocks:
        facts = block_facts([cases[i][0] for i in members], [cases[i][1] for i in members], [raws[i] for i in members])
        for pos, i in enumerate(members):
            f, o, v = cases[i]
            kind, h, missing = _expected(f, o, v)
            assert (facts.kind[pos], facts.hash[pos] if kind else 0, facts.lacking.get(pos, [])) == (kind, h, missing), (f, o, v)
            assert value_facts(f, o, v) == (kind, h if kind else 0, missing)


def test_a_complete_block_is_judged_without_reading_values_one_by_one(monkeypatch) -> None:
    """The fast path: a block of complete sales decodes strictly; `lacking` is never called."""
    import kugeldrill.checkers.op_facts as op_facts

    def refuse(*_a):  # noqa: ANN002
        raise AssertionError("complete values took the slow path")

    monkeypatch.setattr(op_facts, "lacking", refuse)
    raws = [json.dumps({**_SALE, "transaction_no": n}).encode() for n in range(50)]
    facts = block_facts(["sale"] * 50, ["ok"] * 50, raws)
    assert not facts.lacking and set(facts.kind) == {BY_KEY}
    assert facts.hash[7] == hash("tran|T1|S1|3|7")


def test_values_that_are_not_objects_or_lack_a_number_leave_the_others_their_facts() -> None:
    """A completion without a value, or with a null or non-object one, takes its facts from its
    invoke later (`others`); the complete values of its group keep the typed path's facts."""
    raws = [json.dumps({**_SALE, "transaction_no": 1}).encode(), b"", b"null", b"[1]",
            json.dumps({**_SALE, "transaction_no": 2}).encode()]
    facts = block_facts(["sale"] * 5, ["ok"] * 5, raws)
    assert facts.others == [1, 2, 3] and not facts.lacking
    assert list(facts.kind) == [BY_KEY, NO_KEY, NO_KEY, NO_KEY, BY_KEY]
    assert (facts.hash[0], facts.hash[4]) == (hash("tran|T1|S1|3|1"), hash("tran|T1|S1|3|2"))
    # A failed sale may have no number yet: no key for it, its group's numbered ones keep theirs.
    ids = {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3}
    raws = [json.dumps(v).encode() for v in ({**ids, "transaction_no": 8}, ids, {**ids, "transaction_no": None})]
    facts = block_facts(["sale"] * 3, ["fail"] * 3, raws)
    assert list(facts.kind) == [BY_KEY, NO_KEY, NO_KEY] and list(facts.hash) == [hash("tran|T1|S1|3|8"), 0, 0]
