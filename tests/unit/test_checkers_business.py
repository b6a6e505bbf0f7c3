"""The business-state adapter (Kugelpos' report, journal and stock answers as records): a
figure, list or name an answer does not carry is unknown (None), never 0."""

from __future__ import annotations

from kugeldrill.checkers.adapters.business import parse_journal_entry, parse_report
from kugeldrill.checkers.model import UNNAMED, Figure

REPORT = {"salesGross": {"amount": 112.0, "quantity": 1, "count": 1}, "salesNet": {"amount": 102.0, "quantity": 1, "count": 1},
          "returns": {"amount": 0.0, "quantity": 0, "count": 0},
          "taxes": [{"taxName": "外税10%", "taxAmount": 10.0, "targetAmount": 102.0, "targetQuantity": 1}],
          "payments": [{"paymentName": "Cash", "amount": 112.0, "count": 1}],
          "cash": {"cashIn": {"amount": 500000.0, "count": 1}, "cashOut": {"amount": 0.0, "count": 0}}}


def test_a_report_without_its_lists_or_a_lines_name_is_unknown_by_kind():
    bare = parse_report(1, "20261202", {k: v for k, v in REPORT.items() if k not in ("taxes", "payments")})
    assert bare.taxes == {UNNAMED: {"tax_amount": None, "target_amount": None, "target_quantity": None}}
    assert bare.payments == {UNNAMED: {"amount": None, "count": None}}
    nameless = parse_report(1, "20261202", {**REPORT, "payments": [{"amount": 112.0, "count": 1}]})
    assert nameless.payments == {UNNAMED: {"amount": None, "count": None}}
    assert nameless.taxes == {"01": {"tax_amount": 10.0, "target_amount": 102.0, "target_quantity": 1.0}}


def test_a_report_figure_or_block_not_carried_is_none():
    report = parse_report(1, "20261202", {**REPORT, "salesGross": {"amount": 112.0, "count": 1}, "returns": None,
                                          "taxes": [{"taxName": "外税10%", "taxAmount": "n/a", "targetAmount": 102.0,
                                                     "targetQuantity": 1}]})
    assert report.gross == Figure(112.0, None, 1.0) and report.returns == Figure(None, None, None)
    assert report.taxes["01"]["tax_amount"] is None and report.cash_out == Figure(0.0, None, 0.0)


def test_a_journal_entry_without_its_figures_keeps_them_unknown():
    entry = parse_journal_entry({"terminalNo": 3, "transactionType": 101, "transactionNo": 7, "amount": "n/a",
                                 "generateDateTime": "2026-12-02T10:00:00"})
    assert (entry.terminal_no, entry.transaction_type, entry.amount, entry.quantity) == (3, 101, None, None)
    blank = parse_journal_entry({"transactionNo": 7, "amount": 110.0})
    assert (blank.terminal_no, blank.transaction_type, blank.amount) == (None, None, 110.0)
