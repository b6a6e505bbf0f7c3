"""The outcome checker on synthetic business states: what report, journal and stock must show
for a history, and every way they can disagree (wrong figure, missing or extra entry, stock
moved the wrong way, unreadable part)."""

from __future__ import annotations

import copy
import time
import itertools

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import BusinessSnapshot, Figure, JournalEntry, Op, SalesReport
from kugeldrill.checkers.outcomes import check_outcomes, expected_report, reason_text, snapshot_dates
from kugeldrill.checkers.params import OutcomePolicy

DATE = "20261202"
_ids = itertools.count(1)


def _op(f: str, outcome: str | None = "ok", **value) -> Op:
    value.setdefault("terminal_no", 1)
    value.setdefault("business_date", DATE)
    return Op(op_id=f"o{next(_ids)}", f=f, outcome=outcome, worker="w", user="u", invoke_mono=0.0, invoke_wall=0.0,
              value=value)


def _sale(txn: int | None, amount: float = 110.0, tax: float = 10.0, items=(("ITEM1", 1),), f: str = "sale",
          outcome: str | None = "ok", terminal_no: int = 1) -> Op:
    qty = float(sum(q for _, q in items))
    return _op(f, outcome, terminal_no=terminal_no, transaction_no=txn, amount=amount, tax=tax, quantity=qty,
               amount_without_tax=amount - tax,
               taxes=[{"tax_code": "01", "tax_amount": tax, "target_amount": amount - tax, "target_quantity": qty}],
               payments=[{"payment_code": "01", "amount": amount}],
               items=[{"item_code": c, "quantity": q} for c, q in items])


def _before() -> BusinessSnapshot:
    snap = BusinessSnapshot(taken_wall=1.0, journal=[
        JournalEntry(1, 301, None, None, 0.0, 0.0, DATE, "t0"),
        JournalEntry(1, 401, None, None, 500000.0, 0.0, DATE, "t0")],
        stock={"ITEM1": 100.0, "ITEM2": 50.0}, terminal_dates={1: DATE, 2: DATE})
    snap.reports[f"1/{DATE}"] = SalesReport(1, DATE, cash_in=Figure(500000.0, 0.0, 1.0))
    snap.reports[f"2/{DATE}"] = SalesReport(2, DATE)
    return snap


def _apply(before: BusinessSnapshot, ops: list[Op], *, skip: set[str] = frozenset()) -> BusinessSnapshot:
    """A correct system: every ok (and the given info) operation applied once, by Kugelpos' rules."""
    after = copy.deepcopy(before)
    after.taken_wall = 2.0
    clock = itertools.count(1)
    for op in ops:
        if op.outcome == "fail" or op.op_id in skip:
            continue
        v = op.value
        no = v["terminal_no"]
        rep = after.reports.setdefault(f"{no}/{DATE}", SalesReport(no, DATE))
        ttype = {"sale": 101, "cancel": -101, "void": 201, "return": 102, "cash_in": 401, "cash_out": 402,
                 "open": 301, "close": 302}[op.f]
        amount = v.get("amount")
        if op.f == "cash_out":
            amount = -amount
        after.journal.append(JournalEntry(no, ttype, v.get("transaction_no") or 900 + next(clock), None, amount,
                                          v.get("quantity"), DATE, f"t{next(clock)}"))
        if op.f in ("cash_in", "cash_out"):
            block = rep.cash_in if op.f == "cash_in" else rep.cash_out
            block.count += 1
            block.amount += amount
        if op.f in ("sale", "void", "return"):
            factor = {"sale": 1, "void": -1, "return": -1}[op.f]
            block = rep.returns if op.f == "return" else rep.gross
            sign = -1 if op.f == "void" else 1
            block.count += sign
            block.amount += sign * v["amount"]
            block.quantity += sign * v["quantity"]
            rep.net.count += factor
            rep.net.quantity += factor * v["quantity"]
            rep.net.amount += factor * (v["amount"] - v["tax"])
            for t in v["taxes"]:
                entry = rep.taxes.setdefault(t["tax_code"], {"tax_amount": 0.0, "target_amount": 0.0,
                                                             "target_quantity": 0.0})
                for k in entry:
                    entry[k] += factor * t[k]
            for p in v["payments"]:
                entry = rep.payments.setdefault(p["payment_code"], {"amount": 0.0, "count": 0.0})
                entry["amount"] += factor * p["amount"]
                entry["count"] += factor
            for it in v["items"]:
                after.stock[it["item_code"]] = after.stock.get(it["item_code"], 0.0) + (
                    -1 if op.f == "sale" else 1) * it["quantity"]
    return after


def _inputs(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot) -> CheckInputs:
    inputs = CheckInputs(ops=ops, business_before=before, business_after=after)
    inputs.mark("ops", "synthetic")
    inputs.mark("business", "synthetic")
    return inputs


def _history() -> list[Op]:
    return [_sale(1), _sale(2, amount=220.0, tax=20.0, items=(("ITEM1", 1), ("ITEM2", 1))),
            _sale(3, amount=330.0, tax=30.0, items=(("ITEM2", 3),), terminal_no=2),
            _sale(4, amount=110.0, f="void"), _sale(5, amount=220.0, tax=20.0, f="return", items=(("ITEM2", 1),)),
            _op("cancel", transaction_no=6, amount=55.0, quantity=1.0),
            _op("cash_in", amount=1000), _op("cash_out", amount=300), _op("open"), _op("close")]


def test_a_correct_system_passes_with_every_part_compared() -> None:
    ops = _history()
    before = _before()
    res = check_outcomes(_inputs(ops, before, _apply(before, ops)))
    assert res.valid is True, res.summary
    assert {p: res.counts[p]["mismatches"] for p in ("report", "journal", "stock")} == {
        "report": 0, "journal": 0, "stock": 0}
    rows = {r["key"]: r for r in res.details["tables"]["report"]}
    assert rows[f"1/{DATE}/gross.count"]["expected"] == "1"  # two sales, one void
    assert rows[f"1/{DATE}/returns.amount"]["expected"] == "220"
    assert rows[f"1/{DATE}/net.amount"]["expected"] == str(int(100 + 200 - 100 - 200))
    assert rows[f"1/{DATE}/cash_out.amount"]["expected"] == "-300"
    stock = {r["key"]: r for r in res.details["tables"]["stock"]}
    assert stock["ITEM2"]["expected"] == "-3"  # −1 −3 +1


def test_a_report_figure_counted_twice_fails_with_key_expected_observed() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.reports[f"1/{DATE}"].gross.amount += 110.0  # one sale's amount applied twice
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is False and res.counts["violations"] == {"report_mismatch": 1}
    assert res.details["mismatches"][0] == {"key": f"report 1/{DATE} gross.amount", "expected": "220",
                                            "observed": "330"}


def test_journal_missing_duplicated_and_unexplained_entries_fail() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    sale1 = next(e for e in after.journal if e.transaction_no == 1)
    after.journal.remove(sale1)
    res = check_outcomes(_inputs(ops, before, after))
    assert res.counts["violations"] == {"journal_missing": 1}
    after.journal.append(sale1)
    after.journal.append(JournalEntry(1, 101, 2, None, 220.0, 2.0, DATE, "again"))  # sale 2 twice
    after.journal.append(JournalEntry(1, 401, None, None, 777.0, 0.0, DATE, "ghost"))  # nobody did this
    res = check_outcomes(_inputs(ops, before, after))
    assert res.counts["violations"] == {"journal_extra": 2}, res.details["mismatches"]


def test_a_journal_entry_with_the_wrong_amount_fails() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    entry = next(e for e in after.journal if e.transaction_no == 2)
    entry.amount = 200.0
    res = check_outcomes(_inputs(ops, before, after))
    assert res.counts["violations"] == {"journal_amount": 1}


def test_stock_moved_the_wrong_way_fails() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.stock["ITEM1"] += 2  # a sale added instead of subtracting
    res = check_outcomes(_inputs(ops, before, after))
    assert res.counts["violations"] == {"stock_mismatch": 1}
    assert res.details["mismatches"][0]["key"] == "stock ITEM1"


def test_info_operations_may_or_may_not_have_happened() -> None:
    ops = _history() + [_sale(None, amount=440.0, tax=40.0, outcome="info"), _op("cash_in", outcome="info", amount=5)]
    before = _before()
    info = {op.op_id for op in ops if op.outcome == "info"}
    assert check_outcomes(_inputs(ops, before, _apply(before, ops))).valid is True  # both happened
    assert check_outcomes(_inputs(ops, before, _apply(before, ops, skip=info))).valid is True  # neither
    twice = _apply(before, ops)
    twice.journal.append(JournalEntry(1, 101, 977, None, 440.0, 1.0, DATE, "dup"))  # the info sale applied twice
    assert check_outcomes(_inputs(ops, before, twice)).counts["violations"] == {"journal_extra": 1}


def test_an_info_cancel_without_number_or_amount_may_explain_one_cancel_entry() -> None:
    """Seen on the real Kugelpos: the load stopped while a cancel was in flight (info, neither
    its transaction number nor its amount known) and the journal shows the -101 entry."""
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    cancel = _op("cancel", outcome="info", items=[{"item_code": "ITEM1", "quantity": 2}])
    after.journal.append(JournalEntry(1, -101, 2, 111112, 457.0, 4.0, DATE, "c"))
    assert check_outcomes(_inputs(ops + [cancel], before, after)).valid is True
    # Without that info operation the entry is extra.
    assert check_outcomes(_inputs(ops, before, after)).counts["violations"] == {"journal_extra": 1}


def test_a_failed_operation_that_took_effect_fails() -> None:
    ops = _history() + [_op("cash_in", outcome="fail", amount=50)]
    before = _before()
    after = _apply(before, ops)
    after.journal.append(JournalEntry(1, 401, None, None, 50.0, 0.0, DATE, "x"))
    rep = after.reports[f"1/{DATE}"]
    rep.cash_in.count += 1
    rep.cash_in.amount += 50
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is False and set(res.counts["violations"]) == {"journal_extra", "report_mismatch"}


def test_unreadable_parts_and_missing_baselines_are_unknown_never_a_pass() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.errors["stock"] = "GET stock: ConnectError"
    after.stock = None
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and "stock unreadable after the drill" in res.summary
    res = check_outcomes(_inputs(ops, before, after), OutcomePolicy(parts=("report", "journal")))
    assert res.valid is True
    no_baseline = copy.deepcopy(before)
    del no_baseline.reports[f"2/{DATE}"]  # the terminal had that date already, but its report was not read
    res = check_outcomes(_inputs(ops, no_baseline, _apply(before, ops)), OutcomePolicy(parts=("report",)))
    assert res.valid is None and "before the load for terminal 2" in res.summary
    assert check_outcomes(CheckInputs(ops=ops)).valid is None


def test_a_new_business_date_starts_from_zero() -> None:
    later = "20261203"
    op = _sale(1)
    op.value["business_date"] = later
    before = _before()
    bands, notes = expected_report([op], before, before)
    assert (1, later) in bands and not notes
    assert snapshot_dates([op]) == {1: {later}}


def test_a_duplicate_the_seed_tolerates_may_move_stock_again_but_not_in_strict_mode() -> None:
    from kugeldrill.checkers.keys import op_key
    from kugeldrill.checkers.model import TOPIC_TRANLOG, Application
    from kugeldrill.checkers.synthetic import fault
    from kugeldrill.checkers.params import DuplicatePolicy

    ops = _history()
    for op in ops:
        op.value.update(tenant_id="T1", store_code="5678")
    before = _before()
    after = _apply(before, ops)
    after.stock["ITEM1"] -= 1  # stock applied sale 1 twice while its Redis link was down
    key = op_key("sale", ops[0].value)
    inputs = _inputs(ops, before, after)
    # The second delivery's idempotency check could not reach the store (its own record says so).
    inputs.applications = [Application("stock", "e1", TOPIC_TRANLOG, key, 10.0, 10.0, 1, "miss"),
                           Application("stock", "e1", TOPIC_TRANLOG, key, 12.0, 12.0, 2, "error")]
    inputs.faults = [fault("f1", "redis@stock", "down", 9.0, 13.0)]
    tolerant = check_outcomes(inputs, duplicates=DuplicatePolicy())
    assert tolerant.valid is True, tolerant.details["mismatches"]
    row = next(r for r in tolerant.details["tables"]["stock"] if r["key"] == "ITEM1")
    assert row["expected"] == "-2 … -1" and "tolerated duplicate" in row["note"]  # −1 −1 +1, and sale 1 again
    strict = check_outcomes(inputs, duplicates=DuplicatePolicy(strict=True))
    assert strict.counts["violations"] == {"stock_mismatch": 1}
    inputs.applications[1].dedup = "miss"  # its check worked: the same double movement is a real defect
    inputs.mark("mark_writes", "test")
    inputs.cache.clear()
    assert check_outcomes(inputs, duplicates=DuplicatePolicy()).valid is False


def test_effects_still_due_for_republish_are_pending_not_wrong() -> None:
    from kugeldrill.checkers.pending import Pending

    ops = _history()
    before = _before()
    owed = Pending(ops={ops[0].op_id}, source="test", next_due_wall=time.time() + 300)
    absent = check_outcomes(_inputs(ops, before, _apply(before, ops, skip={ops[0].op_id})), pending=owed)
    assert absent.valid is None and "due for republish" in absent.summary, absent.details["mismatches"]
    row = next(r for r in absent.details["tables"]["report"] if r["key"] == f"1/{DATE}/gross.count")
    assert row["ok"] is None and row["expected"].startswith("1 (or 0 … 1")
    landed = check_outcomes(_inputs(ops, before, _apply(before, ops)), pending=owed)
    assert landed.valid is True
    # Pending widens nothing else: a sale counted twice is still wrong.
    twice = _apply(before, ops)
    twice.reports[f"1/{DATE}"].gross.count += 1
    assert check_outcomes(_inputs(ops, before, twice), pending=owed).valid is False


def test_a_first_reading_taken_while_events_still_landed_is_not_judged() -> None:
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.journal.append(JournalEntry(1, 301, None, None, 0.0, 0.0, DATE, "late set-up open"))
    assert check_outcomes(_inputs(ops, before, after)).valid is False  # an extra entry
    before.unsettled = "not quiescent after 20.0 s: still busy"
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and "still landing" in res.summary
    assert res.counts["violations"] == {"journal_extra": 1}  # the table still shows what differed


def _sessions(swapped: bool) -> tuple[list[Op], BusinessSnapshot, BusinessSnapshot]:
    """Two open/close sessions on terminal 2; the journal has them as 301/302 at the right times
    (or, `swapped`, every open journalled as a close and every close as an open)."""
    ops = []
    for i, f in enumerate(("open", "close", "open", "close")):
        op = _op(f, terminal_no=2)
        op.invoke_wall = 1000.0 + 10 * i
        ops.append(op)
    before = _before()
    after = copy.deepcopy(before)
    for i, op in enumerate(ops):
        ttype = {"open": 301, "close": 302}[op.f]
        if swapped:
            ttype = 603 - ttype
        after.journal.append(JournalEntry(2, ttype, None, None, 0.0, 0.0, DATE,
                                          f"2026-12-02T10:00:{10 * i + 1:02d}.250000+09:00"))
    return ops, before, after


def test_opens_and_closes_journalled_as_each_other_fail_on_their_order() -> None:
    ops, before, after = _sessions(swapped=False)
    res = check_outcomes(_inputs(ops, before, after), OutcomePolicy(parts=("journal",)))
    assert res.valid is True, res.summary
    order = {r["key"]: r for r in res.details["tables"]["journal"]}["terminal 2 open/close order"]
    assert order == {"key": "terminal 2 open/close order", "expected": "301 302 301 302",
                     "observed": "301 302 301 302", "ok": True}

    ops, before, after = _sessions(swapped=True)
    res = check_outcomes(_inputs(ops, before, after), OutcomePolicy(parts=("journal",)))
    assert res.valid is False  # the counts agree (two of each); only the order tells
    assert res.counts["violations"] == {"journal_order": 1}
    assert res.examples["journal_order"][0]["observed"] == "302 301 302 301"


def test_an_open_with_unknown_outcome_leaves_the_order_unjudged() -> None:
    ops, before, after = _sessions(swapped=False)
    ops[1].outcome = "info"
    res = check_outcomes(_inputs(ops, before, after), OutcomePolicy(parts=("journal",)))
    assert res.valid is True
    assert not [r for r in res.details["tables"]["journal"] if r["key"].endswith("order")]


def test_an_ok_sale_recorded_without_its_amount_is_unknown_never_a_pass():
    """The load never saw the amount; the report shows 1,220 where one 110-yen sale moved it:
    the row is unknown (in the evidence), the record's gap is named, and nothing passes."""
    ops = [_sale(1)]
    before = _before()
    after = _apply(before, ops)
    after.reports[f"1/{DATE}"].gross.amount = 1220.0
    ops[0].value["amount"] = None
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None, res.summary
    assert "lack figures they should carry: amount (1)" in res.summary and ops[0].op_id in res.summary
    assert res.details["load_records"][0]["missing"] == ["amount"]
    rows = {r["key"] for r in res.details["unknown_rows"]["report"]}
    assert f"1/{DATE}/gross.amount" in rows and f"1/{DATE}/net.amount" in rows
    assert any("could not be compared" in reason_text(u) for u in res.details["unknown"])


def test_a_payment_without_its_amount_or_a_record_the_load_marked_missing_is_unknown():
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    ops[0].value["payments"] = [{"payment_code": "01", "amount": None}]
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and res.details["load_records"][0]["missing"] == ["payments[0].amount"]
    assert any(r["key"] == f"1/{DATE}/payment[01].amount" for r in res.details["unknown_rows"]["report"])
    ops = _history()
    ops[1].value["missing"] = ["receipt_no"]  # the load's own note: the answer did not carry it
    res = check_outcomes(_inputs(ops, before, _apply(before, ops)))
    assert res.valid is None and res.counts["load_records_missing_figures"] == 1


def test_a_report_figure_the_answer_did_not_carry_is_unknown_not_zero():
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.reports[f"1/{DATE}"].returns.amount = None
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None
    assert res.details["unknown_rows"]["report"][0]["key"] == f"1/{DATE}/returns.amount"


def test_a_half_applied_info_sale_fails_as_a_whole():
    """Each figure alone is inside its band (the info sale may or may not have happened), but
    its count moved and its amount did not: no whole choice explains that."""
    ops = _history() + [_sale(7, amount=440.0, tax=40.0, outcome="info")]
    info = ops[-1]
    before = _before()
    after = _apply(before, ops, skip={info.op_id})
    after.reports[f"1/{DATE}"].gross.count += 1  # only the count of the info sale moved
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is False and res.counts["violations"] == {"info_half_applied": 1}, res.summary
    case = res.examples["info_half_applied"][0]
    assert case["operations"] == [info.op_id]
    assert {f["key"] for f in case["figures"]} >= {f"1/{DATE}/gross.count", f"1/{DATE}/gross.amount"}
    assert res.details["info_operations"][0]["resolved"] == "inconsistent"


def test_each_info_operation_is_shown_resolved_one_way():
    ops = _history() + [_sale(7, amount=440.0, tax=40.0, outcome="info"),
                        _op("cash_in", outcome="info", amount=5, terminal_no=2)]
    sale, cash = ops[-2], ops[-1]
    before = _before()
    res = check_outcomes(_inputs(ops, before, _apply(before, ops, skip={cash.op_id})))
    assert res.valid is True, res.summary
    resolved = {i["op"]: i["resolved"] for i in res.details["info_operations"]}
    assert resolved == {sale.op_id: "applied", cash.op_id: "not applied"}
    assert res.counts["info_resolution"] == {"applied": 1, "not applied": 1}


def test_an_info_sale_without_a_number_is_resolved_through_its_journal_entry():
    """The bill's answer was lost (no transaction number): the journal entry of its amount,
    no operation names, is that sale — and then its report figures must be there too."""
    ops = _history() + [_sale(None, amount=440.0, tax=40.0, outcome="info")]
    info = ops[-1]
    before = _before()
    after = _apply(before, ops)  # applied: the journal has an entry for it (number 9xx)
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is True and res.details["info_operations"][0]["resolved"] == "applied", res.summary
    # The journal has it, the report does not: half applied.
    half = _apply(before, ops, skip={info.op_id})
    half.journal.append(JournalEntry(1, 101, 977, None, 440.0, 1.0, DATE, "t"))
    res = check_outcomes(_inputs(ops, before, half))
    assert res.valid is False and "info_half_applied" in res.counts["violations"], res.summary


def test_one_unreadable_terminal_report_leaves_the_rest_judged():
    """Terminal 2's report answers 422 (a closed terminal, on the real code): only terminal 2 is
    unknown, with the request, status and body as structured evidence; the rest is judged."""
    from kugeldrill.checkers.model import Unreadable

    ops = _history()
    before = _before()
    after = _apply(before, ops)
    del after.reports[f"2/{DATE}"]
    after.unreadable.append(Unreadable("report", "GET /api/v1/tenants/T/stores/S/terminals/2/reports",
                                       "HTTPStatusError: 422", 422, '{"success":false,"code":422}', 2, DATE))
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and "terminal 2" in res.summary and "HTTP 422" in res.summary
    record = res.details["unknown"][0]  # one record for that terminal alone (contracts §9)
    assert (record["part"], record["terminal_no"], record["business_date"], record["status"]) == ("report", 2, DATE, 422)
    assert len(res.details["unknown"]) == 1
    assert res.details["unreadable"] == [{"phase": "after", "part": "report", "terminal_no": 2, "business_date": DATE,
                                          "request": "GET /api/v1/tenants/T/stores/S/terminals/2/reports",
                                          "status": 422, "body": '{"success":false,"code":422}',
                                          "error": "HTTPStatusError: 422"}]
    assert {"journal", "stock", "report"} <= set(res.details["tables"])
    assert any(r["key"].startswith("1/") for r in res.details["tables"]["report"])
    # A readable part that disagrees still fails the drill.
    after.stock["ITEM1"] += 5
    assert check_outcomes(_inputs(ops, before, after)).counts["violations"] == {"stock_mismatch": 1}


def test_an_unreadable_report_of_a_terminal_the_load_did_not_move_is_unknown():
    """A terminal the load never sold on, whose report answers 422 after the drill (a closed
    terminal on the real code): its figures were expected to stay put, and nobody saw that
    they did — unknown for that terminal, never a silent pass."""
    from kugeldrill.checkers.model import Unreadable

    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.unreadable.append(Unreadable("report", "GET /api/v1/tenants/T/stores/S/terminals/7/reports",
                                       "HTTPStatusError: 422", 422, '{"success":false,"code":422}', 7, DATE))
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and "terminal 7" in res.summary and "HTTP 422" in res.summary, res.summary
    assert [(r["part"], r["terminal_no"]) for r in res.details["unknown"]] == [("report", 7)]
    # Without a date in the failed read, the terminal's date of that moment stands for it.
    after.unreadable[-1] = Unreadable("terminal", "GET /api/v1/terminals/T-S-7", "HTTPStatusError: 500", 500, "", 7)
    after.terminal_dates[7] = DATE
    assert check_outcomes(_inputs(ops, before, after)).valid is None


def test_many_interchangeable_info_operations_are_weighed_as_counts():
    """Forty info sales with the same figures and no numbers (a load cut off mid-bill): the
    figures tell how many took effect, not which; they are resolved as a count."""
    ops = _history() + [_sale(None, amount=110.0, tax=10.0, outcome="info") for _ in range(40)]
    before = _before()
    applied = {op.op_id for op in ops[-40:][:25]}
    after = _apply(before, ops, skip={op.op_id for op in ops[-40:]} - applied)
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is True, res.summary
    assert res.counts["info_resolution"] == {"25 of 40 identical applied": 40}


def test_figures_the_load_marked_missing_are_unknown_whatever_the_record_holds():
    """The bill's answer lacked a line's `isCancelled` and a tax line's `taxCode` (the load
    names the paths, contracts §4): the item was counted as sold and the tax filed under
    "None" — guesses. Stock and tax rows are unknown, never a mismatch, never a pass."""
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.stock["ITEM1"] += 1  # the line was in fact cancelled: the stock never moved for it
    ops[0].value["missing"] = ["lineItems[0].isCancelled", "taxes[0].taxCode"]
    ops[0].value["taxes"][0]["tax_code"] = "None"
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None, res.summary
    assert "lineItems[0].isCancelled" in res.summary
    stock_rows = {r["key"]: r for r in res.details["tables"]["stock"]}
    assert stock_rows["ITEM1"]["ok"] is None and "never saw" in stock_rows["ITEM1"]["note"]
    assert all(r["ok"] is not False for rows in res.details["tables"].values() for r in rows)
    assert any(r["key"] == f"1/{DATE}/tax[01].tax_amount" for r in res.details["unknown_rows"]["report"])


def test_an_open_whose_answer_lacked_its_counter_is_named():
    ops = _history()
    ops[8].value["missing"] = ["openCounter"]  # the open's answer did not carry it
    before = _before()
    res = check_outcomes(_inputs(ops, before, _apply(before, ops)))
    assert res.valid is None and res.details["load_records"][0]["missing"] == ["openCounter"], res.summary
    assert res.details["load_records"][0]["f"] == "open"


def test_an_ok_sale_without_its_number_makes_its_journal_entry_unknown_not_extra():
    ops = _history()
    ops[0].value["missing"] = ["transactionNo"]  # the bill's answer did not carry it
    before = _before()
    res = check_outcomes(_inputs(ops, before, _apply(before, ops)))
    assert res.valid is None and not res.counts["violations"], res.summary
    assert any("carries no transaction number" in reason_text(u) for u in res.details["unknown"])


def test_journal_entries_without_terminal_or_type_leave_missing_entries_unknown():
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    entry = next(e for e in after.journal if e.transaction_type == 101 and e.transaction_no == 1)
    entry.transaction_type = None  # the journal answer did not carry it
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and not res.counts["violations"], res.summary
    row = next(r for r in res.details["tables"]["journal"] if r["key"] == "terminal 1 type 101 transaction 1")
    assert row["ok"] is None and row["observed"] == "0"


def test_report_lines_that_cannot_be_told_apart_are_unknown_not_zero():
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    after.reports[f"1/{DATE}"].payments["?"] = {"amount": None, "count": None}  # a line without its name
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and not res.counts["violations"], res.summary
    unknown = {r["key"] for r in res.details["unknown_rows"]["report"]}
    assert {f"1/{DATE}/payment[01].amount", f"1/{DATE}/payment[?].amount"} <= unknown
    assert not any(k.startswith(f"1/{DATE}/tax[") for k in unknown)  # the tax lines were named: still judged


def test_a_stock_row_read_before_and_gone_after_is_unknown_not_zero():
    ops = _history()
    before = _before()
    after = _apply(before, ops)
    del after.stock["ITEM2"]
    res = check_outcomes(_inputs(ops, before, after))
    assert res.valid is None and not res.counts["violations"], res.summary
    assert [r["key"] for r in res.details["unknown_rows"]["stock"]] == ["ITEM2"]
