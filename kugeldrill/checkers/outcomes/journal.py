"""The electronic journal's part of the outcome check: one entry per operation, in order.

Transactions are matched by terminal, type and transaction number; cash movements by
terminal, type and signed amount; opens and closes by terminal and type, and their order
by `generate_date_time` (a close journalled as an open keeps the counts right).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.keys import op_key
from kugeldrill.checkers.model import BusinessSnapshot, JournalEntry, Op
from kugeldrill.checkers.outcomes.bands import Band, Table, certainty, fmt
from kugeldrill.checkers.params import OutcomePolicy
from kugeldrill.checkers.wholes import Row
from kugeldrill.ground.numbers import number_or_none

JOURNAL_TYPE = {"sale": 101, "cancel": -101, "void": 201, "return": 102, "cash_in": 401, "cash_out": 402,
                "open": 301, "close": 302}
TRAN_TYPES = {101, -101, 102, 201, 202}
REPORT_JOURNAL_TYPES = {501, 502}  # flash/daily reports a reader may have journalled: not the load's



def _journal_key(terminal: int, ttype: int, txn: Any, amount: Any) -> tuple[Any, ...]:
    if ttype in TRAN_TYPES:
        return ("tran", terminal, ttype, None if txn is None else int(txn))
    if ttype in (401, 402):
        return ("cash", terminal, ttype, None if amount is None else round(float(amount), 2))
    return ("oc", terminal, ttype)


def _delta(before: list[JournalEntry], after: list[JournalEntry]) -> list[JournalEntry]:
    """Entries after the drill that were not there before (a multiset difference)."""
    seen = Counter(e.identity() for e in before)
    out = []
    for e in after:
        if seen[e.identity()] > 0:
            seen[e.identity()] -= 1
        else:
            out.append(e)
    return [e for e in out if e.transaction_type not in REPORT_JOURNAL_TYPES]


def judge_journal(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot, p: OutcomePolicy,
                  ex: Examples, tolerated: Mapping[str, Counter[str]], pending: set[str]) -> Table:
    table = Table("journal")
    assert before.journal is not None and after.journal is not None
    new = _delta(before.journal, after.journal)
    unplaced = [e for e in new if e.terminal_no is None or e.transaction_type is None]
    if unplaced:
        # An entry the answer did not say the terminal or type of could be any missing one.
        table.unknown.append(f"{len(unplaced)} new journal entr(y/ies) without terminalNo or transactionType "
                             "(the answer did not carry them): a missing entry may be among them")
    new = [e for e in new if e.terminal_no is not None and e.transaction_type is not None]
    observed: Counter[tuple[Any, ...]] = Counter()
    amounts: dict[tuple[Any, ...], list[float | None]] = defaultdict(list)
    for e in new:
        key = _journal_key(e.terminal_no, e.transaction_type, e.transaction_no, e.amount)
        observed[key] += 1
        amounts[key].append(e.amount)
    must: Counter[tuple[Any, ...]] = Counter()
    may: Counter[tuple[Any, ...]] = Counter()
    owed: Counter[tuple[Any, ...]] = Counter()  # ok operations whose events are still due for republish
    loose: Counter[tuple[Any, ...]] = Counter()  # info transactions without a number: (terminal, type, amount)
    want_amount: dict[tuple[Any, ...], float] = {}
    amount_unseen: set[tuple[Any, ...]] = set()  # ok transactions whose amount the load never saw
    info_of: dict[tuple[Any, ...], list[str]] = defaultdict(list)  # entry key -> info operations (weighed whole)
    loose_ops: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for op in ops:
        certain = certainty(op)
        ttype = JOURNAL_TYPE.get(op.f)
        if certain is False or ttype is None or op.value.get("terminal_no") is None:
            continue
        no = int(op.value["terminal_no"])
        amount = number_or_none(op.value.get("amount"))
        if op.f == "cash_out" and amount is not None:
            amount = -abs(amount)
        txn = op.value.get("transaction_no")
        whole = certain is None and op.op_id not in pending
        if ttype in TRAN_TYPES and txn is None:
            lk = ("tran-amount", no, ttype, None if amount is None else round(amount, 2))
            loose[lk] += 1  # it explains one entry of its kind and amount that no operation names
            if certain:
                table.unknown.append(f"ok {op.f} {op.op_id} carries no transaction number")
            elif whole:
                loose_ops[lk].append(op.op_id)
            continue
        key = _journal_key(no, ttype, txn, amount)
        (owed if certain and op.op_id in pending else must if certain else may)[key] += 1
        may[key] += tolerated.get("journal", Counter()).get(op_key(op.f, op.value), 0)
        if whole:
            info_of[key].append(op.op_id)
        if ttype in TRAN_TYPES and amount is not None:
            want_amount[key] = amount
        elif ttype in TRAN_TYPES and certain:
            amount_unseen.add(key)
    loose_at_start = Counter(loose)
    for key in sorted(set(must) | set(may) | set(owed) | set(observed), key=str):
        n, lo, hi = observed[key], must[key], must[key] + may[key] + owed[key]
        if n > hi and key[0] == "tran":
            # An info transaction whose number the load never learnt explains one entry of its
            # kind and amount that no operation names.
            # One whose amount the load never learnt either (a cancel interrupted before its
            # answer) explains one entry of its kind with any amount.
            for amount in amounts[key]:
                lk = ("tran-amount", key[1], key[2], None if amount is None else round(amount, 2))
                unknown_amount = ("tran-amount", key[1], key[2], None)
                for candidate in (lk, unknown_amount):
                    if n > hi and loose[candidate] > 0:
                        loose[candidate] -= 1
                        hi += 1
                        break
        band, label = Band(lo, hi, lo + owed[key], hi), _journal_label(key)
        band.info = dict.fromkeys(info_of.get(key, ()), 1.0)
        if unplaced and n < lo:
            band.unknown = "entries without terminal or type may be these"
        if table.add(label, band, n, 0) is False:
            ex.add("journal_missing" if n < lo else "journal_extra",
                   {"key": f"journal {label}", "expected": band.text(), "observed": str(n)})
        if key in want_amount:
            for got in amounts.get(key, []):
                if got is None or abs(got - want_amount[key]) > p.amount_tolerance:
                    if table.add(f"{label} amount", Band(want_amount[key], want_amount[key]), got,
                                 p.amount_tolerance) is False:
                        ex.add("journal_amount", {"key": f"journal {label} amount",
                                                  "expected": fmt(want_amount[key]), "observed": fmt(got)})  # type: ignore[arg-type]
        elif key in amount_unseen and amounts.get(key):
            table.add(f"{label} amount", Band(unknown="the load never saw this transaction's amount"),
                      amounts[key][0], p.amount_tolerance)
    # Entries explained by info transactions without a number: as many of them took effect.
    for lk, op_ids in loose_ops.items():
        taken = loose_at_start[lk] - loose[lk]
        table.wholes.append(Row("journal", f"terminal {lk[1]} type {lk[2]} amount {lk[3]} (no transaction number)",
                                float(taken), 0.0, float(loose_at_start[lk] - len(op_ids)), 0.0,
                                dict.fromkeys(op_ids, 1.0)))
    judge_open_close_order(ops, new, ex, table, tolerated, pending)
    return table


def _entry_time(e: JournalEntry) -> datetime | None:
    try:
        return datetime.fromisoformat(e.generate_date_time)
    except (TypeError, ValueError):
        return None


def judge_open_close_order(ops: list[Op], new: list[JournalEntry], ex: Examples, table: Table,
                           tolerated: Mapping[str, Counter[str]], pending: set[str]) -> None:
    """Opens and closes are journalled as what they were, in the order they happened.

    Counting 301s and 302s cannot tell an open journalled as a close from the real thing:
    a terminal's sessions come in pairs, so the counts agree either way. The order can: per
    terminal, the new entries' types by their `generate_date_time` must be the load's open
    and close operations by the time they were invoked (one terminal's operations never
    overlap). Judged only where the outcome of every such operation is known and the
    entries are exactly as many: an `info` operation, a pending or tolerated repeat would
    make the sequence itself uncertain, and the counts above judge those."""
    wanted: dict[int, list[tuple[float, int]]] = defaultdict(list)
    uncertain: set[int] = set()
    for op in ops:
        if op.f not in ("open", "close") or op.value.get("terminal_no") is None:
            continue
        no = int(op.value["terminal_no"])
        certain = certainty(op)
        if certain is None or op.op_id in pending or tolerated.get("journal", Counter()).get(op_key(op.f, op.value)):
            uncertain.add(no)
        if certain:
            wanted[no].append((op.invoke_wall, JOURNAL_TYPE[op.f]))
    seen: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for e in new:
        if e.transaction_type in (301, 302):
            when = _entry_time(e)
            if when is None:
                uncertain.add(e.terminal_no)
            else:
                seen[e.terminal_no].append((when, e.transaction_type))
    for no in sorted(set(wanted) - uncertain):
        expected = [t for _, t in sorted(wanted[no])]
        try:
            observed = [t for _, t in sorted(seen.get(no, []))]
        except TypeError:  # naive and aware times mixed: no order to judge
            continue
        if len(observed) != len(expected) or len(expected) < 2:
            continue
        label = f"terminal {no} open/close order"
        ok = observed == expected
        table.rows.append({"key": label, "expected": " ".join(map(str, expected)),
                           "observed": " ".join(map(str, observed)), "ok": ok})
        if not ok:
            ex.add("journal_order", {"key": f"journal {label}", "expected": " ".join(map(str, expected)),
                                     "observed": " ".join(map(str, observed))})


def _journal_label(key: tuple[Any, ...]) -> str:
    kind, terminal, ttype = key[0], key[1], key[2]
    if kind == "tran":
        return f"terminal {terminal} type {ttype} transaction {key[3]}"
    if kind == "cash":
        return f"terminal {terminal} type {ttype} amount {key[3]}"
    return f"terminal {terminal} type {ttype}"
