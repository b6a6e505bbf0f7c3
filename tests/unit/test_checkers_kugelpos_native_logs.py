"""The Kugelpos log adapter and the outbox reader on lines and documents of the real code.

The fixtures in tests/fixtures/kugelpos/ are verbatim lines of the real services' `app.log`
(commit 33ef985, run natively by `kugeldrill kugelpos up`; one throwaway API key redacted): cart's while its sidecar link was
down (four sales, each publish failing after three attempts), a terminal receipt logged as
one multi-line record, and the subscribers' "received" lines of the same events.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from kugeldrill.checkers.adapters.kugelpos_logs import LINE_RE, LogParser, parse_log_files, parse_log_lines
from kugeldrill.checkers.adapters.mongo import in_drill
from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG
from kugeldrill.checkers.synthetic import fault
from kugeldrill.checkers.params import BreakerParams

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kugelpos"
# Kugelpos' breaker (docs/kugelpos-facts.md §6.1), as the native target file declares it.
KUGELPOS = BreakerParams(threshold=3, mode="cumulative", reset_seconds=61.0, half_open_max_calls=None)


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines(True)


def test_a_multi_line_record_is_one_record_not_unparsed_lines():
    """The terminal logs each receipt's XML as one record spanning ~60 lines; those lines
    belong to it (they used to be reported as lines 'not in Kugelpos' format')."""
    lines = _lines("terminal-receipt.log")
    parser = LogParser(CheckInputs())
    for line in lines:
        parser.feed(line, "terminal")
    starts = [line for line in lines if LINE_RE.match(line.rstrip("\n"))]
    assert parser.unparsed == 0
    continuation = [line for line in lines if line.strip() and line not in starts]
    assert parser.matched_records == len(starts) and parser.continued == len(continuation) > 50
    inputs = parse_log_lines(lines, service="terminal")
    assert not any("not in Kugelpos' format" in note for note in inputs.notes)


def test_text_before_any_record_is_still_unparsed():
    parser = LogParser(CheckInputs())
    parser.feed("INFO:     Started server process [1234]\n", "cart")
    parser.feed(_lines("cart-sidecar-cut.log")[0], "cart")
    assert parser.unparsed == 1 and parser.continued == 0


def _cart_cut() -> tuple[CheckInputs, float, float]:
    """The cart log of the sidecar cut, with the cut as a fault window around its lines."""
    inputs = parse_log_files({"cart": [FIXTURES / "cart-sidecar-cut.log"]})
    walls = [c.wall for c in inputs.breaker_calls]
    start, end = min(walls) - 5.0, max(walls) + 1.0
    inputs.faults = [fault("f1", "sidecar@cart", "down", start, end)]
    inputs.mark("faults", "test: sidecar@cart was down around the lines")
    return inputs, start, end


def test_real_cart_failures_are_calls_of_a_breaker_that_never_opens():
    inputs, _, _ = _cart_cut()
    fails = [c for c in inputs.breaker_calls if c.outcome == "fail"]
    assert len(fails) >= 4 and {(c.service, c.breaker, c.op, c.state) for c in fails} == {("cart", "dapr", "publish", "CLOSED")}
    assert inputs.breaker_transitions == []


def test_kugelpos_breaker_policy_flags_the_per_request_breaker_as_not_opened():
    """Research defect 'a breaker built per request never opens', on the real lines: under
    Kugelpos' own declared policy (3 cumulative failures) the cart breaker should have opened."""
    inputs, _, _ = _cart_cut()
    result = check_breakers(inputs, KUGELPOS)
    assert result.valid is False
    example = result.examples["not_opened"][0]
    assert example["service"] == "cart" and example["breaker"] == "dapr"


def test_subscriber_lines_of_one_tranlog_share_its_event_id_and_business_key():
    inputs = parse_log_files({app: [FIXTURES / f"{app}-received.log"] for app in ("report", "journal", "stock")})
    by_sub: dict[str, set[tuple[str | None, str, str]]] = {}
    for a in inputs.applications:
        by_sub.setdefault(a.subscriber, set()).add((a.event_id, a.topic, a.key))
    tranlogs = {k for k in by_sub["stock"]}
    assert tranlogs and all(t == TOPIC_TRANLOG for _, t, _ in tranlogs)
    # Every tranlog stock applied was applied by report and journal under the same id and key.
    assert tranlogs <= by_sub["report"] and tranlogs <= by_sub["journal"]
    assert {t for _, t, _ in by_sub["report"]} == {TOPIC_TRANLOG, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG}
    event_id, _, key = sorted(tranlogs)[0]
    assert event_id == "55e53b9a-d2b7-43b3-84d5-99110221c627" and key == tran_key("T6578", "5678", 3, 1)


def _doc(tenant: str, published: datetime | None) -> dict:
    return {"event_id": "e", "tenant_id": tenant, "published_at": published, "payload": {"tenant_id": tenant}}


def test_outbox_keeps_only_this_drills_events():
    """A deployment's outbox keeps earlier drills' events: judged again, their deliveries
    (logged before this drill's logs begin) would read as missing."""
    start = datetime(2026, 12, 2, 1, 46, 0, tzinfo=timezone.utc).timestamp()
    before = datetime(2026, 12, 2, 1, 45, 17)  # pymongo returns naive UTC
    after = datetime(2026, 12, 2, 1, 46, 30)
    assert not in_drill(_doc("T7727", before), since_wall=start, tenant_id="T7727")
    assert in_drill(_doc("T7727", after), since_wall=start, tenant_id="T7727")
    assert not in_drill(_doc("T6578", after), since_wall=start, tenant_id="T7727")
    assert in_drill(_doc("T6578", before))  # no scope given: everything
    assert in_drill({"event_id": "e", "tenant_id": "T7727"}, since_wall=start)  # no time: kept, not dropped


def test_a_real_report_is_keyed_by_tax_and_payment_code():
    """Kugelpos' flash report (real body, terminal 2 of a native drill) names taxes and
    payments without their codes; the figures the outcome checker compares are keyed by code."""
    from kugeldrill.checkers.adapters.business import parse_report

    body = {"tenantId": "T4150", "storeCode": "5678", "terminalNo": 2, "businessDate": "20261202",
            "salesGross": {"amount": 112.0, "quantity": 1, "count": 1}, "salesNet": {"amount": 102.0, "quantity": 1, "count": 1},
            "returns": {"amount": 0.0, "quantity": 0, "count": 0},
            "taxes": [{"taxName": "外税10%", "taxAmount": 10.0, "targetAmount": 102.0, "targetQuantity": 1}],
            "payments": [{"paymentName": "Cash", "amount": 112.0, "count": 1}],
            "cash": {"logicalAmount": 500112.0, "physicalAmount": 0.0, "differenceAmount": -500112.0,
                     "cashIn": {"amount": 500000.0, "count": 1}, "cashOut": {"amount": 0.0, "count": 0}}}
    report = parse_report(2, "20261202", body)
    assert report.payments == {"01": {"amount": 112.0, "count": 1.0}}
    assert report.taxes == {"01": {"tax_amount": 10.0, "target_amount": 102.0, "target_quantity": 1.0}}
