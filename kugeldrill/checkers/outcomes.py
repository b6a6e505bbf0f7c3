"""Outcome checker: do report, journal and stock show what the load did?

Jepsen's rule: a verdict comes from what a user can observe. The system's own records
(events, log lines) say what it believes it did; this checker compares the business state a
store manager reads through the public APIs — the sales report, the electronic journal,
the stock levels — with the load's history. It compares *changes*: the state after the
drill minus the state before the load (checkers/adapters/business.py), so data a
deployment already had is not counted.

What each operation must change (Kugelpos' own formulas, docs/kugelpos-facts.md §5.2–5.7):

* sale (NormalSales 101): report gross +1 / +amount / +quantity, net +amount − tax, taxes and
  payments per code +; journal one 101 entry with its transaction number and amount;
  stock − each item's quantity.
* void of a sale (VoidSales 201): the sale's figures back out of gross, net, taxes, payments;
  journal one 201 entry; stock + the items.
* return (ReturnSales 102): report returns +1 / +amount / +quantity, net −amount + tax, taxes
  and payments per code −; journal one 102 entry; stock + the items.
* cancel (NormalSalesCancel): only a journal entry (−101); the report excludes it.
* cash-in / cash-out: report cash in/out +1 and ±amount; journal 401/402 with the signed amount.
* open / close: journal 301 / 302.

An `ok` operation must have its effect exactly once, a `fail` one never, an `info` one
(unknown outcome) may or may not: each figure is a band [low, high] and `info` widens it by
what the operation would have moved. A figure outside its band is a mismatch (fails), with
(key, expected, observed) as evidence. An `info` operation is also weighed as a whole
(checkers.wholes): it took effect in every figure, journal entry and stock line it touches
or in none, and each one's resolution is shown; a combination no choice explains is an
operation half applied (fails).

Unknown, never a pass: a part (report, journal, stock) that could not be read before or
after (a single terminal's unreadable report makes only that terminal unknown, with the
request's status and body; everything readable is still judged), a figure whose starting
value, expected value or observed value is unknown (the row is in the evidence), and a load
record that lacks a figure it should carry (checkers.load_figures: named in the verdict).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kugeldrill.checkers.duplicates import tolerated_extras
from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import op_key
from kugeldrill.checkers.load_figures import describe as describe_load_problems
from kugeldrill.checkers.load_figures import as_seen, load_record_problems
from kugeldrill.checkers.model import UNNAMED, BusinessSnapshot, CheckResult, Figure, JournalEntry, Op, SalesReport, Unreadable
from kugeldrill.checkers.params import DuplicatePolicy, OutcomePolicy
from kugeldrill.checkers.pending import Pending
from kugeldrill.checkers.wholes import Row, resolve
from kugeldrill.ground.numbers import number_or_none

PARTS = ("report", "journal", "stock")
JOURNAL_TYPE = {"sale": 101, "cancel": -101, "void": 201, "return": 102, "cash_in": 401, "cash_out": 402,
                "open": 301, "close": 302}
TRAN_TYPES = {101, -101, 102, 201, 202}
REPORT_JOURNAL_TYPES = {501, 502}  # flash/daily reports a reader may have journalled: not the load's
# How an operation moves the report: (block, sign) for gross/returns, the sign of its taxes,
# payments and net figures.
REPORT_BLOCK = {"sale": ("gross", 1), "void": ("gross", -1), "return": ("returns", 1)}
FACTOR = {"sale": 1, "void": -1, "return": -1}
STOCK_SIGN = {"sale": -1, "void": 1, "return": 1}


@dataclass(slots=True)
class Band:
    """The values a figure may take: ok effects move both ends, info effects one.

    Effects still due for republish (checkers.pending) are maybe-effects of the band and
    certain ones of `full` (the band once they land): a value in the band but not in `full`
    is pending, not wrong."""

    lo: float = 0.0
    hi: float = 0.0
    full_lo: float = 0.0
    full_hi: float = 0.0
    unknown: str = ""  # why the band cannot be trusted (an info effect of unknown size)
    note: str = ""  # why it is wider than the operations alone say (a tolerated duplicate)
    info: dict[str, float] = field(default_factory=dict)  # info operation -> its effect here (checkers.wholes)

    def add(self, value: float, certain: bool, pending: bool = False, info_op: str | None = None) -> None:
        """One effect: `certain` (an ok one), owed (`pending`: due for republish), or maybe;
        `info_op` names the info operation a maybe-effect belongs to (weighed as a whole)."""
        if info_op is not None and not certain and not pending:
            self.info[info_op] = self.info.get(info_op, 0.0) + value
        if certain:
            self.lo += value
            self.hi += value
        elif value < 0:
            self.lo += value
        else:
            self.hi += value
        if certain or pending:
            self.full_lo += value
            self.full_hi += value
        elif value < 0:
            self.full_lo += value
        else:
            self.full_hi += value

    def without_info(self) -> tuple[float, float]:
        """The band as the other operations alone make it (no info operation applied)."""
        return (self.lo - sum(v for v in self.info.values() if v < 0),
                self.hi - sum(v for v in self.info.values() if v > 0))

    def holds(self, observed: float, tol: float) -> bool:
        return self.lo - tol <= observed <= self.hi + tol

    def holds_full(self, observed: float, tol: float) -> bool:
        return self.full_lo - tol <= observed <= self.full_hi + tol

    def text(self) -> str:
        def span(lo: float, hi: float) -> str:
            return _fmt(lo) if abs(hi - lo) < 1e-9 else f"{_fmt(lo)} … {_fmt(hi)}"

        base = span(self.full_lo, self.full_hi)
        if abs(self.full_lo - self.lo) > 1e-9 or abs(self.full_hi - self.hi) > 1e-9:
            return f"{base} (or {span(self.lo, self.hi)} while republish is pending)"
        return base


def _fmt(v: float) -> str:
    return str(int(v)) if abs(v - round(v)) < 1e-9 else f"{v:.2f}"


@dataclass
class Table:
    """One part's comparison: rows of (key, expected, observed, verdict)."""

    part: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)  # text, or records for one terminal (contracts §9)
    wholes: list[Row] = field(default_factory=list)  # figures info operations touch (checkers.wholes)

    def add(self, key: str, band: Band, observed: float | None, tol: float) -> bool | None:
        pending = ""
        if band.unknown or observed is None:
            verdict: bool | None = None
        elif band.holds_full(observed, tol):
            verdict = True
        elif band.holds(observed, tol):
            verdict, pending = None, "effects still due for republish are not in it yet"
        else:
            verdict = False
        note = band.unknown or pending or band.note or ("" if observed is not None else "not observed")
        self.rows.append({"key": key, "expected": band.text(), "observed": "–" if observed is None else _fmt(observed),
                          "ok": verdict, **({"note": note} if note else {})})
        if band.info and not band.unknown and observed is not None:
            lo, hi = band.without_info()
            self.wholes.append(Row(self.part, key, observed, lo, hi, tol, dict(band.info), failed=verdict is False))
        return verdict


def _certain(op: Op) -> bool | None:
    """True: its effect must be there; None: may be; False (a `fail`): must not."""
    if op.outcome == "ok":
        return True
    if op.outcome == "fail":
        return False
    return None


# ---------------------------------------------------------------------- report


def _report_date(op: Op, before: BusinessSnapshot, after: BusinessSnapshot) -> str | None:
    date = op.value.get("business_date")
    if date:
        return str(date)
    no = op.value.get("terminal_no")
    return before.terminal_dates.get(int(no)) if no is not None else None


def expected_report(ops: Iterable[Op], before: BusinessSnapshot, after: BusinessSnapshot,
                    tolerated: Mapping[str, int] | None = None, pending: set[str] = frozenset()
                    ) -> tuple[dict[tuple[int, str], dict[str, Band]], list[str]]:
    """(terminal, business date) -> figure key -> band of the change the load made.

    `tolerated`: business key -> extra applications by the report subscriber that the seed
    tolerates (its state store was unreachable); each may add the operation's effect again."""
    out: dict[tuple[int, str], dict[str, Band]] = defaultdict(lambda: defaultdict(Band))
    notes: list[str] = []
    for op in ops:
        certain = _certain(op)
        if certain is False or op.f not in (*REPORT_BLOCK, "cash_in", "cash_out"):
            continue
        extra = (tolerated or {}).get(op_key(op.f, op.value), 0) if op.f in REPORT_BLOCK else 0
        for _ in range(extra):
            _report_effect(op, False, out, notes, before, after, TOLERATED)
        owed = op.op_id in pending
        _report_effect(op, bool(certain) and not owed, out, notes, before, after, "", owed,
                       info_op=op.op_id if certain is None and not owed else None)
    return out, notes


TOLERATED = "a tolerated duplicate (its own record says why: see duplicates) may add it again"
#: Band keys standing for every tax / payment figure of a report: set unknown when an
#: operation's tax or payment lines are not known (which codes it moved is then unknown).
ANY_TAX, ANY_PAYMENT = "tax[*]", "payment[*]"


def _report_effect(op: Op, certain: bool, out: dict[tuple[int, str], dict[str, Band]], notes: list[str],
                   before: BusinessSnapshot, after: BusinessSnapshot, note: str, owed: bool = False,
                   info_op: str | None = None) -> None:
    """Add one application of `op` to the report bands (`note`: why it may apply again;
    `info_op`: the info operation whose whole effect this is)."""
    no, date = op.value.get("terminal_no"), _report_date(op, before, after)
    if no is None or date is None:
        notes.append(f"{op.f} {op.op_id}: no terminal or business date; its report effect is not placed")
        return
    bands = out[(int(no), date)]
    if op.f in ("cash_in", "cash_out"):
        amount = number_or_none(op.value.get("amount"))
        bands[f"{op.f}.count"].add(1, certain, owed, info_op)
        if amount is None:
            bands[f"{op.f}.amount"].unknown = "a cash movement of unknown amount"
        else:
            bands[f"{op.f}.amount"].add(amount if op.f == "cash_in" else -abs(amount), certain, owed, info_op)
        return
    block, sign = REPORT_BLOCK[op.f]
    factor = FACTOR[op.f]
    amount, quantity, tax = (number_or_none(op.value.get(k)) for k in ("amount", "quantity", "tax"))
    moved: list[tuple[str, float | None]] = [
        (f"{block}.count", sign), ("net.count", factor),
        (f"{block}.amount", None if amount is None else sign * amount),
        (f"{block}.quantity", None if quantity is None else sign * quantity),
        ("net.quantity", None if quantity is None else factor * quantity),
        ("net.amount", None if amount is None or tax is None else factor * (amount - tax))]
    taxes, payments = op.value.get("taxes"), op.value.get("payments")
    if not taxes and (tax is None or tax != 0):
        bands[ANY_TAX].unknown = f"a {op.f} whose tax lines the load never saw"
    if not payments:
        bands[ANY_PAYMENT].unknown = f"a {op.f} whose payments the load never saw"
    for t in taxes or []:
        code = str(t.get("tax_code"))
        for f in ("tax_amount", "target_amount", "target_quantity"):
            v = number_or_none(t.get(f))
            moved.append((f"tax[{code}].{f}", None if v is None else factor * v))
    for pay in payments or []:
        code = str(pay.get("payment_code"))
        v = number_or_none(pay.get("amount"))
        moved += [(f"payment[{code}].amount", None if v is None else factor * v), (f"payment[{code}].count", factor)]
    for key, value in moved:
        if value is None:
            bands[key].unknown = f"a {op.f} whose figures the load never saw"
        else:
            bands[key].add(value, certain, owed, info_op)
        if note:
            bands[key].note = note


def report_figures(report: SalesReport | None) -> dict[str, float | None]:
    """The figures of a report as flat keys (absent report: every figure 0; a figure the
    answer did not carry: None, unknown)."""
    if report is None:
        return {}
    out: dict[str, float | None] = {}
    for block in ("gross", "returns", "net", "cash_in", "cash_out"):
        fig: Figure = getattr(report, block)
        out[f"{block}.amount"], out[f"{block}.quantity"], out[f"{block}.count"] = fig.amount, fig.quantity, fig.count
    for code, t in report.taxes.items():
        for field_, value in t.items():
            out[f"tax[{code}].{field_}"] = value
    for code, p in report.payments.items():
        out[f"payment[{code}].amount"], out[f"payment[{code}].count"] = p["amount"], p["count"]
    return out


def _unnamed_lines(*figures: Mapping[str, float | None]) -> dict[str, str]:
    """"tax" / "payment" -> why every line of that kind is unknown: the report answer did not
    carry the list, or a line without its name (filed under UNNAMED), so no line can be
    attributed to its code."""
    out = {}
    for kind in ("tax", "payment"):
        if any(key.startswith(f"{kind}[{UNNAMED}]") for fig in figures for key in fig):
            out[kind] = f"the report answer's {kind} lines cannot be told apart (a list or a line's name not carried)"
    return out


def _terminal_unknown(no: int, date: str, when: str, why: Unreadable | None) -> dict[str, Any]:
    """One terminal's report could not be read: an unknown record for that terminal alone
    (contracts §9: `reason`, `part`, `terminal_no`, `business_date`, and the answer)."""
    record: dict[str, Any] = {"part": "report", "terminal_no": no, "business_date": date, "when": when}
    if why is None:
        record["reason"] = f"report: no report read {when} for terminal {no}, {date}"
    else:
        record["reason"] = f"report: terminal {no}, {date}: report unreadable {when}: {why.text()}"
        record.update(request=why.request, status=why.status, body=why.body, error=why.error)
    return record


def reason_text(item: str | Mapping[str, Any]) -> str:
    """An unknown reason as text (records carry it under `reason`)."""
    return item if isinstance(item, str) else str(item.get("reason", item))


# Quantities of cash blocks are not figures Kugelpos fills; they are not compared.
_NOT_COMPARED = {"cash_in.quantity", "cash_out.quantity"}


def judge_report(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot, p: OutcomePolicy,
                 ex: Examples, tolerated: Mapping[str, Counter[str]], pending: set[str]) -> Table:
    table = Table("report")
    expected, notes = expected_report(ops, before, after, tolerated.get("report"), pending)
    table.unknown += notes[:5]
    # Every report that was read, expected or asked for: a terminal whose report could not be
    # read after the drill is unknown even where the load moved none of its figures (nobody saw
    # that they stayed put).
    keys = (set(expected) | {(r.terminal_no, r.business_date) for r in after.reports.values()}
            | _unread_reports(after))
    for no, date in sorted(keys):
        after_r = after.report(no, date)
        before_r = before.report(no, date)
        if after_r is None:
            why = after.unreadable_report(no, date)
            table.unknown.append(_terminal_unknown(no, date, "after the drill", why))
            continue
        why = before.unreadable_report(no, date)
        if before_r is None and (before.terminal_dates.get(no, "") >= date or why is not None):
            # The terminal (may have) had that business date before the load, and we did not read it.
            table.unknown.append(_terminal_unknown(no, date, "before the load", why))
            continue
        a, b = report_figures(after_r), report_figures(before_r)
        bands = expected.get((no, date), {})
        unnamed = _unnamed_lines(a, b)
        for key in sorted((set(a) | set(bands)) - _NOT_COMPARED - {ANY_TAX, ANY_PAYMENT}):
            after_v, before_v = a.get(key, 0.0), b.get(key, 0.0)
            observed = None if after_v is None or before_v is None else after_v - before_v
            band = bands.get(key, Band())
            kind = "tax" if key.startswith("tax[") else "payment" if key.startswith("payment[") else ""
            wildcard = bands.get(ANY_TAX if kind == "tax" else ANY_PAYMENT if kind else "")
            why = wildcard.unknown if wildcard is not None else ""
            why = why or unnamed.get(kind, "")
            if why and not band.unknown:
                band = Band(band.lo, band.hi, band.full_lo, band.full_hi, why, band.note, band.info)
            verdict = table.add(f"{no}/{date}/{key}", band, observed, p.amount_tolerance)
            if verdict is False:
                ex.add("report_mismatch", {"key": f"report {no}/{date} {key}", "expected": band.text(),
                                           "observed": _fmt(observed)})
    return table


def _unread_reports(after: BusinessSnapshot) -> set[tuple[int, str]]:
    """(terminal, business date) of every report the read after the drill asked for and did
    not get; a failure without its date stands for the terminal's date of that moment."""
    out = set()
    for u in after.unreadable:
        if u.part in ("report", "terminal") and u.terminal_no is not None:
            date = u.business_date or after.terminal_dates.get(u.terminal_no, "")
            if after.report(u.terminal_no, date) is None:
                out.add((u.terminal_no, date))
    return out


# ---------------------------------------------------------------------- journal


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
        certain = _certain(op)
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
                                                  "expected": _fmt(want_amount[key]), "observed": _fmt(got)})  # type: ignore[arg-type]
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
        certain = _certain(op)
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


# ---------------------------------------------------------------------- stock


def judge_stock(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot, p: OutcomePolicy,
                ex: Examples, tolerated: Mapping[str, Counter[str]], pending: set[str]) -> Table:
    table = Table("stock")
    assert before.stock is not None and after.stock is not None
    bands: dict[str, Band] = defaultdict(Band)
    extras = tolerated.get("stock", Counter())
    unseen = ""  # an operation moved items the load never saw: any item's row may be off by it
    for op in ops:
        certain = _certain(op)
        sign = STOCK_SIGN.get(op.f)
        if certain is False or sign is None:
            continue
        items = op.value.get("items")
        if not items:
            table.unknown.append(f"{op.f} {op.op_id} carries no items")
            if items is None:
                unseen = unseen or f"a {op.f} whose items the load never saw ({op.op_id})"
            continue
        extra = extras.get(op_key(op.f, op.value), 0)
        owed = op.op_id in pending
        whole = op.op_id if certain is None and not owed else None
        for it in items:
            if it.get("item_code") is None:
                unseen = unseen or f"a {op.f} with an item line whose code the load never saw ({op.op_id})"
                continue
            band = bands[str(it.get("item_code"))]
            quantity = number_or_none(it.get("quantity"))
            if quantity is None:
                band.unknown = f"a {op.f} whose item quantity the load never saw"
                continue
            for i in range(1 + extra):
                band.add(sign * quantity, bool(certain) and i == 0 and not owed, owed and i == 0,
                         whole if i == 0 else None)
            if extra:
                band.note = TOLERATED
    for item in sorted(set(bands) | set(after.stock) | set(before.stock)):
        # An item without a stock row has none yet (Kugelpos upserts the row on its first
        # movement): 0 before. A row read before and not after is not 0 but unseen.
        now, then = after.stock.get(item, None if item in before.stock else 0.0), before.stock.get(item, 0.0)
        observed = None if now is None or then is None else now - then  # a quantity not carried: unknown
        band = bands.get(item, Band())
        if unseen and not band.unknown:
            band = Band(band.lo, band.hi, band.full_lo, band.full_hi, unseen, band.note, band.info)
        if table.add(item, band, observed, 1e-9) is False:
            ex.add("stock_mismatch", {"key": f"stock {item}", "expected": band.text(), "observed": _fmt(observed)})  # type: ignore[arg-type]
    return table


# ---------------------------------------------------------------------- the checker


JUDGES = {"report": judge_report, "journal": judge_journal, "stock": judge_stock}


def _readable(part: str, before: BusinessSnapshot, after: BusinessSnapshot) -> str | None:
    """Why `part` cannot be judged (None: it can)."""
    for name, snap in (("before the load", before), ("after the drill", after)):
        if part in snap.errors:
            return f"{part} unreadable {name}: {snap.errors[part]}"
    if part == "journal" and (before.journal is None or after.journal is None):
        return "journal was not read"
    if part == "stock" and (before.stock is None or after.stock is None):
        return "stock was not read"
    return None


def check_outcomes(inputs: CheckInputs, policy: OutcomePolicy | None = None,
                   duplicates: DuplicatePolicy | None = None, pending: Pending | None = None) -> CheckResult:
    """Judge report, journal and stock changes against the history (see the module docstring).

    A duplicate the duplicate checker tolerates (its own record explains it; the duplicate
    checker's policy, `duplicates`) may move a figure once more; in strict mode it may not."""
    p = policy or OutcomePolicy()
    before, after = inputs.business_before, inputs.business_after
    if before is None or after is None:
        reason = inputs.missing.get("business") or "report, journal and stock were not read before and after the drill"
        return CheckResult("outcomes", None, f"unknown: {reason}", details={"unknown": [reason]})
    if not inputs.has("ops"):
        reason = inputs.missing.get("ops") or "no load history"
        return CheckResult("outcomes", None, f"unknown: {reason}", details={"unknown": [reason]})
    ops = [as_seen(op) for op in inputs.ops if op.f in JOURNAL_TYPE]  # the load's `missing` figures blanked
    ex = Examples(p.max_examples)
    unknown: list[Any] = []  # reasons: text, or records {"reason", "part", "terminal_no", ...} (contracts §9)
    tables: dict[str, Table] = {}
    tolerated = tolerated_extras(inputs, duplicates)
    pending = pending or Pending()
    owed = pending.ops
    problems = load_record_problems(ops)
    if problems:
        unknown.append(describe_load_problems(problems))
    for part in p.parts:
        why = _readable(part, before, after)
        if why:
            unknown.append({"reason": why, "part": part})
            continue
        tables[part] = JUDGES[part](ops, before, after, p, ex, tolerated, owed)
        unknown += [u if isinstance(u, dict) else f"{part}: {u}" for u in tables[part].unknown]
    if not ops:
        unknown.append("the load recorded no business operation")
    unknown_rows: dict[str, list[dict[str, Any]]] = {}
    for part, t in tables.items():
        rows = [r for r in t.rows if r["ok"] is None and not r.get("note", "").startswith("effects still due")]
        if rows:
            unknown_rows[part] = rows[:50]
            unknown.append({"reason": f"{part}: {len(rows)} figure(s) could not be compared, e.g. {rows[0]['key']} "
                                      f"(expected {rows[0]['expected']}, observed {rows[0]['observed']}: "
                                      f"{rows[0].get('note', 'unknown')})", "part": part,
                            "figures": [r["key"] for r in rows[:20]]})
    if any(r["ok"] is None and r.get("note", "").startswith("effects still due") for t in tables.values() for r in t.rows):
        unknown.append(pending.reason())
    wholes = resolve([w for t in tables.values() for w in t.wholes])
    for case in wholes.inconsistent:
        ex.add("info_half_applied", {"key": "info operations " + ", ".join(case["operations"][:5]),
                                     "expected": "each applied wholly or not at all", "observed": case["why"],
                                     **case})
    unknown += wholes.undetermined
    info_ops = _info_resolutions(ops, wholes.ops, owed)
    counts: dict[str, Any] = {part: {"figures": len(t.rows), "mismatches": sum(1 for r in t.rows if r["ok"] is False),
                                     "unknown": sum(1 for r in t.rows if r["ok"] is None)}
                              for part, t in tables.items()}
    counts["operations"] = dict(Counter(f"{op.f}:{op.outcome or 'info'}" for op in ops))
    counts["info_resolution"] = dict(Counter(i["resolved"] for i in info_ops))
    counts["load_records_missing_figures"] = len(problems)
    counts["violations"] = dict(ex.counts)
    mismatches = [{k: v for k, v in row.items() if k in ("key", "expected", "observed")}
                  for items in ex.items.values() for row in items]
    details = {"tables": {part: t.rows[: p.max_rows] for part, t in tables.items()}, "unknown": unknown,
               "unknown_rows": unknown_rows, "mismatches": mismatches, "info_operations": info_ops[: p.max_rows],
               "load_records": [pr.to_dict() for pr in problems[:50]],
               "unreadable": _unreadable_evidence(before, after), "provenance": inputs.provenance()}
    if before.unsettled:
        # Events of the set-up still landing after the first reading show up as changes the
        # load did not make: differences cannot be told from that race.
        unknown.insert(0, "the business state was read before the load while events were still landing "
                          f"({before.unsettled}); its differences are not judged")
    if ex and not before.unsettled:
        valid, summary = False, "the business state disagrees with the load: " + ", ".join(
            f"{k} {v}" for k, v in sorted(ex.counts.items()))
    elif unknown:
        valid, summary = None, "unknown: " + reason_text(unknown[0])
    else:
        figures = sum(len(t.rows) for t in tables.values())
        resolved = f"; {len(info_ops)} info operation(s) resolved as wholes" if info_ops else ""
        valid, summary = True, f"{', '.join(tables)} agree with the load ({figures} figures compared{resolved})"
    return CheckResult("outcomes", valid, summary, counts=counts, examples=ex.items, details=details)


def _info_resolutions(ops: list[Op], resolved: Mapping[str, str], owed: set[str]) -> list[dict[str, Any]]:
    """Each info operation and which way it was resolved (evidence and report)."""
    out = []
    for op in ops:
        if op.outcome in ("ok", "fail"):
            continue
        if op.op_id in owed:
            how = "applied (its event is still due for republish)"
        else:
            how = resolved.get(op.op_id, "touches no compared figure")
        out.append({"op": op.op_id, "f": op.f, "terminal_no": op.value.get("terminal_no"),
                    "transaction_no": op.value.get("transaction_no"), "amount": op.value.get("amount"),
                    "resolved": how, "error": (op.error or "")[:120]})
    return out


def _unreadable_evidence(before: BusinessSnapshot, after: BusinessSnapshot) -> list[dict[str, Any]]:
    """Every failed read, structured (part, terminal, request, HTTP status and body), so that a
    known defect's pattern can be matched on it."""
    out = []
    for phase, snap in (("before", before), ("after", after)):
        for u in snap.unreadable:
            out.append({"phase": phase, **asdict(u)})
        for part, error in snap.errors.items():
            out.append({"phase": phase, "part": part, "request": "", "error": error, "status": None, "body": "",
                        "terminal_no": None, "business_date": None})
    return out


def snapshot_dates(ops: Iterable[Op]) -> dict[int, set[str]]:
    """Business dates per terminal that the history names (for the `after` report reads)."""
    out: dict[int, set[str]] = defaultdict(set)
    for op in ops:
        no, date = op.value.get("terminal_no"), op.value.get("business_date")
        if no is not None and date:
            out[int(no)].add(str(date))
    return out
