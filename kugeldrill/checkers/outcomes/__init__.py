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

from kugeldrill.checkers.outcomes.check import check_outcomes, snapshot_dates
from kugeldrill.checkers.outcomes.report import expected_report, reason_text

__all__ = ["check_outcomes", "expected_report", "reason_text", "snapshot_dates"]
