"""Black-box cross-checks: expected values from the history, and comparison with mocked public APIs."""

from __future__ import annotations

import httpx

from kugeldrill.checkers.crosscheck import check_public_apis, expected_journal, expected_sales_count, expected_stock
from kugeldrill.checkers.model import Op

PROV = {"tenant_id": "T1", "store_code": "S1", "items": [{"item_code": "A", "initial_stock": 100}, {"item_code": "B"}],
        "terminals": {"cart": [{"terminal_id": "T1-S1-1", "terminal_no": 1, "api_key": "k"}]}}
URLS = {"stock": "http://127.0.0.1:1", "journal": "http://127.0.0.1:2", "report": "http://127.0.0.1:3"}


def _op(i: int, f: str, outcome: str | None, txno: int, items=None, orig=None) -> Op:
    v = {"terminal_no": 1, "transaction_no": txno, "business_date": "20260329"}
    if items:
        v["items"] = items
    if orig:
        v["original_transaction_no"] = orig
    return Op(f"o{i}", f, outcome, "w", "u", float(i), float(i), float(i) + 0.1, float(i) + 0.1, v)


OPS = [
    _op(1, "sale", "ok", 1, [{"item_code": "A", "quantity": 2}, {"item_code": "B", "quantity": 1}]),
    _op(2, "sale", "ok", 2, [{"item_code": "A", "quantity": 3}]),
    _op(3, "void", "ok", 3, orig=2),  # items from the original sale
    _op(4, "sale", "info", 4, [{"item_code": "A", "quantity": 1}]),
    _op(5, "cancel", "ok", 5),
    _op(6, "sale", "fail", 6, [{"item_code": "A", "quantity": 50}]),
]


def test_expected_values_from_history():
    assert expected_stock(OPS, {"A": 100, "B": 0}) == {"A": (97, 98), "B": (-1, -1)}  # the void adds 3 back
    must, may = expected_journal(OPS)
    assert must == {("1", "1"), ("1", "2"), ("1", "3"), ("1", "5")} and may == {("1", "4")}
    assert expected_sales_count(OPS) == (1, 2)


def _server(stock_a=98, journal=None, sales=1, fail_stock=False):
    journal = journal if journal is not None else [1, 2, 3, 5]

    def handler(req: httpx.Request) -> httpx.Response:
        assert req.headers.get("X-API-KEY") == "k" and req.url.params.get("terminal_id") == "T1-S1-1"
        p = req.url.path
        if "/stock/" in p:
            if fail_stock:
                return httpx.Response(503)
            code = p.rsplit("/", 1)[1]
            return httpx.Response(200, json={"success": True, "data": {"itemCode": code,
                                                                       "currentQuantity": stock_a if code == "A" else -1}})
        if p.endswith("/journals"):
            rows = [{"terminalNo": 1, "transactionNo": n, "transactionType": 101} for n in journal]
            return httpx.Response(200, json={"data": rows, "metadata": {"total": len(rows)}})
        if p.endswith("/reports"):
            return httpx.Response(200, json={"data": {"salesGross": {"amount": 110, "count": sales}}})
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_agreeing_apis_pass():
    r = check_public_apis(URLS, PROV, OPS, client=_server())
    assert r.valid is True, r.summary
    assert r.counts["stock"] == {"items": 2, "mismatches": 0}
    assert r.counts["journal"]["expected"] == 4


def test_each_disagreement_fails_with_evidence():
    r = check_public_apis(URLS, PROV, OPS, client=_server(stock_a=92, journal=[1, 2, 2, 3], sales=3))
    assert r.valid is False
    assert r.examples["stock_mismatch"][0] == {"item_code": "A", "actual": 92, "expected_low": 97, "expected_high": 98}
    assert r.examples["journal_missing"][0]["transaction_no"] == "5"
    assert r.examples["journal_duplicate"][0] == {"terminal_no": "1", "transaction_no": "2", "entries": 2}
    assert r.examples["report_mismatch"][0]["sales_count"] == 3


def test_unreachable_api_is_unknown():
    r = check_public_apis(URLS, PROV, OPS, client=_server(fail_stock=True))
    assert r.valid is None and "stock of A" in r.summary
    assert check_public_apis(URLS, PROV, [], client=_server()).valid is None


def test_stock_history_rows_against_the_history():
    from kugeldrill.checkers.crosscheck import check_stock_history, expected_stock_rows

    must, may = expected_stock_rows(OPS)
    assert must == {("1", "A", "SALE"): 1, ("1", "B", "SALE"): 1, ("2", "A", "SALE"): 1, ("3", "A", "VOID"): 1}
    assert may == {("4", "A", "SALE"): 1}
    rows = [{"reference_id": r, "item_code": i, "update_type": t, "quantity_change": -1}
            for (r, i, t) in must]
    assert check_stock_history(rows, OPS).valid is True
    assert check_stock_history(rows + [rows[0]], OPS).examples["duplicated_movement"][0]["rows"] == 2
    assert check_stock_history(rows[1:], OPS).examples["missing_movement"][0]["reference_id"] == "1"
    r = check_stock_history(None, OPS, reason="pymongo is not installed")
    assert r.valid is None and "pymongo" in r.summary
