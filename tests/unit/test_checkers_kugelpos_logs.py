"""Parsing Kugelpos' own log lines: breaker transitions (with the real breaker's quirks) and applications.

Lines are in Kugelpos' exact format `%(asctime)s [%(levelname)s] %(name)s: %(message)s`
(asctime `YYYY-MM-DD HH:MM:SS,mmm`, UTC) with its exact wording (docs/kugelpos-facts.md §5.2, §5.3, §6.1).
"""

from __future__ import annotations

import calendar
import logging
import time
from pathlib import Path

from kugeldrill.checkers.adapters.kugelpos_logs import LINE_RE, extract_fields, parse_asctime, parse_log_files, parse_log_lines
from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.duplicates import check_duplicates
from kugeldrill.checkers.keys import cash_key, openclose_key, tran_key
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG
from kugeldrill.checkers.params import BreakerParams

H = "kugel_common.utils.dapr_client_helper"
T0 = calendar.timegm(time.strptime("2026-03-29 10:00:00", "%Y-%m-%d %H:%M:%S"))

# A subscriber's state-store breaker: 3 cumulative failures open it, 61 s later a trial
# half-opens it and fails ("OPEN after 4 failures"), 61 s later a trial succeeds.
BREAKER_LOG = f"""\
2026-03-29 10:00:00,100 [INFO] {H}: Successfully saved state for 6f1c
2026-03-29 10:00:01,000 [ERROR] {H}: Failed to get state for 7a2b: HTTP error 500: http://localhost:3500/v1.0/state/statestore/7a2b
2026-03-29 10:00:02,000 [ERROR] {H}: Failed to save state for 7a2b: Connection error: http://localhost:3500/v1.0/state/statestore
2026-03-29 10:00:03,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures
2026-03-29 10:00:03,001 [ERROR] {H}: Failed to get state for 8c3d: Request timeout: http://localhost:3500/v1.0/state/statestore/8c3d
2026-03-29 10:00:10,000 [ERROR] {H}: Circuit breaker OPEN - rejecting get state for 9d4e
2026-03-29 10:00:10,001 [ERROR] {H}: Circuit breaker OPEN - rejecting save state for 9d4e
2026-03-29 10:01:04,500 [INFO] {H}: Circuit breaker moved to HALF_OPEN state
2026-03-29 10:01:04,900 [WARNING] {H}: Circuit breaker OPEN after 4 failures
2026-03-29 10:01:04,901 [ERROR] {H}: Failed to get state for aa11: Connection error: http://localhost:3500/v1.0/state/statestore/aa11
2026-03-29 10:02:06,000 [INFO] {H}: Circuit breaker moved to HALF_OPEN state
2026-03-29 10:02:06,100 [INFO] {H}: Circuit breaker CLOSED after successful operation
2026-03-29 10:02:06,101 [INFO] {H}: Successfully saved state for bb22
"""


def test_line_format_matches_python_logging_output(tmp_path: Path):
    """A line written by logging with Kugelpos' format string is what the parser reads."""
    path = tmp_path / "app.log"
    handler = logging.FileHandler(path)
    fmt = logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    fmt.converter = time.gmtime
    handler.setFormatter(fmt)
    logger = logging.getLogger(H)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("Circuit breaker OPEN after %d failures", 3)
    finally:
        logger.removeHandler(handler)
        handler.close()
    line = path.read_text().splitlines()[0]
    m = LINE_RE.match(line)
    assert m and m.group("level") == "WARNING" and m.group("logger") == H
    inp = parse_log_lines([line], service="report")
    assert [(t.from_state, t.to_state, t.failures) for t in inp.breaker_transitions] == [("CLOSED", "OPEN", 3)]


def test_breaker_transitions_and_calls_from_real_wording():
    inp = parse_log_lines(BREAKER_LOG.splitlines(), service="report", clock_offset=-T0)
    trans = [(t.from_state, t.to_state, t.failures, round(t.mono, 3)) for t in inp.breaker_transitions]
    assert trans == [
        ("CLOSED", "OPEN", 3, 3.0),
        ("OPEN", "HALF_OPEN", None, 64.5),
        ("HALF_OPEN", "OPEN", 4, 64.9),
        ("OPEN", "HALF_OPEN", None, 126.0),
        ("HALF_OPEN", "CLOSED", 0, 126.1),
    ]
    calls = [(c.state, c.op, c.outcome) for c in inp.breaker_calls]
    assert calls == [
        ("CLOSED", "save", "ok"),
        ("CLOSED", "get", "fail"),
        ("CLOSED", "save", "fail"),
        ("CLOSED", "get", "fail"),  # logged after the OPEN line, admitted while CLOSED
        ("OPEN", "get", "rejected"),
        ("OPEN", "save", "rejected"),
        ("HALF_OPEN", "get", "fail"),  # the failed trial
        ("HALF_OPEN", "save", "ok"),  # the successful trial, logged after CLOSED
    ]
    assert {u.key for u in inp.state_unreachable} == {"7a2b", "8c3d", "9d4e", "aa11"}


def test_real_breaker_passes_under_kugelpos_policy_and_fails_seed_policy():
    inp = parse_log_lines(BREAKER_LOG.splitlines(), service="report", clock_offset=-T0)
    inp.mark("faults", "test")
    kugel = BreakerParams(mode="cumulative", half_open_max_calls=None, reset_seconds=61.0)
    assert check_breakers(inp, kugel).valid is True
    seed = check_breakers(inp, BreakerParams())
    # The first success happened before the failures; consecutive mode still sees 3 in a row.
    assert seed.valid is True
    inp.breaker_calls.insert(2, inp.breaker_calls[0].__class__("report", "dapr", 1.5, T0 + 1.5, "CLOSED", "get", "ok"))
    assert check_breakers(inp, BreakerParams()).examples["opened_without_failures"][0]["failures"] == 2


def test_repeated_open_line_while_open_is_not_a_transition():
    lines = [
        f"2026-03-29 10:00:0{i},000 [ERROR] {H}: Failed to publish event to topic-tranlog: HTTP error 500: x"
        for i in range(2)
    ] + [
        f"2026-03-29 10:00:02,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures",
        f"2026-03-29 10:00:02,001 [ERROR] {H}: Failed to publish event to topic-tranlog: HTTP error 500: x",
        f"2026-03-29 10:01:04,000 [INFO] {H}: Circuit breaker moved to HALF_OPEN state",
        f"2026-03-29 10:01:04,100 [WARNING] {H}: Circuit breaker OPEN after 4 failures",
        f"2026-03-29 10:01:04,101 [ERROR] {H}: Failed to publish event to topic-tranlog: HTTP error 500: x",
        f"2026-03-29 10:01:04,200 [WARNING] {H}: Circuit breaker OPEN after 5 failures",
        f"2026-03-29 10:01:04,201 [ERROR] {H}: Failed to publish event to topic-tranlog: HTTP error 500: x",
        f"2026-03-29 10:01:05,000 [ERROR] {H}: Circuit breaker OPEN - rejecting publish to topic-tranlog",
    ]
    inp = parse_log_lines(lines, service="cart", clock_offset=-T0)
    assert [t.to_state for t in inp.breaker_transitions] == ["OPEN", "HALF_OPEN", "OPEN"]
    states = [c.state for c in inp.breaker_calls if c.outcome == "fail"]
    assert states == ["CLOSED", "CLOSED", "CLOSED", "HALF_OPEN", "HALF_OPEN"]
    inp.mark("faults", "test")
    r = check_breakers(inp, BreakerParams(reset_seconds=61.0))
    assert r.examples["half_open_extra_trials"][0]["trials"] == 2


def test_cart_cache_breaker_wording():
    lines = [
        "2026-03-29 10:00:00,000 [WARNING] app.models.repositories.cart_repository: Circuit breaker tripped. Opening the circuit.",
        "2026-03-29 10:00:05,000 [INFO] app.models.repositories.cart_repository: Circuit is open. Bypassing cache and using database directly.",
        "2026-03-29 10:01:01,000 [INFO] app.models.repositories.cart_repository: Circuit breaker reset timeout elapsed. Moving to half-open state.",
        "2026-03-29 10:01:01,100 [INFO] app.models.repositories.cart_repository: Circuit breaker successful request in half-open state. Closing the circuit.",
    ]
    inp = parse_log_lines(lines, service="cart")
    assert [(t.breaker, t.to_state) for t in inp.breaker_transitions] == [
        ("cartstore", "OPEN"), ("cartstore", "HALF_OPEN"), ("cartstore", "CLOSED")]
    assert [(c.breaker, c.outcome) for c in inp.breaker_calls] == [("cartstore", "rejected")]


TRAN_JSON = ('{"tenant_id": "T1234", "store_code": "5678", "store_name": "S", "terminal_no": 1, '
             '"transaction_no": 42, "transaction_type": 101, "business_date": "20260329", '
             '"line_items": [{"description": "Item"}]}')


def test_report_and_journal_applications_and_skips():
    lines = [
        f"2026-03-29 10:00:00,000 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-1, tranlog: {TRAN_JSON}",
        "2026-03-29 10:00:00,500 [INFO] app.api.v1.tran: cashlog received successfully. event_id: e-2, cashlog: "
        '{"tenant_id": "T1234", "store_code": "5678", "terminal_no": 1, "generate_date_time": "2026-03-29T19:00:00+09:00", '
        '"description": "Cash In kd-7", "amount": 500}',
        "2026-03-29 10:00:01,000 [INFO] app.api.v1.tran: opencloselog received successfully. event_id: e-3, opencloselog: "
        '{"tenant_id": "T1234", "store_code": "5678", "terminal_no": 1, "business_date": "20260329", "open_counter": 1, '
        '"operation": "open"}',
        f"2026-03-29 10:05:00,000 [WARNING] app.api.v1.tran: Message already processed. event_id: e-1, tranlog: {TRAN_JSON}",
        "2026-03-29 10:06:00,000 [WARNING] app.models.repositories.tranlog_repository: Transaction already exists",
        f"2026-03-29 10:06:00,010 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-1, tranlog: {TRAN_JSON}",
    ]
    inp = parse_log_lines(lines, service="journal")
    apps = [(a.subscriber, a.event_id, a.topic, a.key, a.dedup) for a in inp.applications]
    assert apps == [
        ("journal", "e-1", TOPIC_TRANLOG, tran_key("T1234", "5678", 1, 42), ""),
        ("journal", "e-2", TOPIC_CASHLOG, cash_key("T1234", "5678", 1, "2026-03-29T19:00:00+09:00", "Cash In kd-7"), ""),
        ("journal", "e-3", TOPIC_OPENCLOSELOG, openclose_key("T1234", "5678", 1, "20260329", 1, "open"), ""),
        ("journal", "e-1", TOPIC_TRANLOG, tran_key("T1234", "5678", 1, 42), "db_existing"),
    ]
    assert [(s, e) for s, e, _ in inp.duplicate_skips] == [("journal", "e-1")]
    inp.mark("applications", "test")
    assert check_duplicates(inp).valid is True  # the re-receive did not write twice


def test_stock_applications_from_python_repr_and_duplicates():
    body = ("{'tenant_id': 'T1234', 'store_code': '5678', 'terminal_no': 2, 'transaction_no': 9, "
            "'transaction_type': 101, 'event_id': 'e-9', 'generate_date_time': datetime.datetime(2026, 3, 29)}")
    lines = [
        f"2026-03-29 10:00:00,000 [INFO] app.services.stock_service: Received transaction log: {body}",
        "2026-03-29 10:00:00,100 [INFO] app.services.stock_service: Processing transaction 9 (type: 101) for tenant "
        "T1234 store 5678, terminal 2",
        "2026-03-29 10:00:00,200 [INFO] kugel_common.utils.dapr_client_helper: Successfully saved state for e-9",
        "2026-03-29 10:03:00,000 [INFO] app.api.v1.stock: Duplicate transaction log received: e-9",
        f"2026-03-29 10:20:00,000 [INFO] app.services.stock_service: Received transaction log: {body}",
    ]
    inp = parse_log_lines(lines, service="stock")
    assert [(a.event_id, a.key) for a in inp.applications] == [("e-9", tran_key("T1234", "5678", 2, 9))] * 2
    assert inp.duplicate_skips[0][:2] == ("stock", "e-9")
    inp.mark("applications", "test")
    inp.mark("mark_writes", "test")
    r = check_duplicates(inp)
    assert r.valid is False and r.examples["duplicate"][0]["applications"] == 2


def test_a_stock_redelivery_skipped_as_duplicate_is_not_an_application():
    """Stock logs "Received transaction log" before its duplicate check: a delivery that is then
    skipped ("Duplicate transaction log received") had no effect."""
    body = ("{'tenant_id': 'T1234', 'store_code': '5678', 'terminal_no': 2, 'transaction_no': 9, "
            "'transaction_type': 101, 'event_id': 'e-9'}")
    lines = [
        f"2026-03-29 10:00:00,000 [INFO] app.api.v1.stock: Received transaction log: {body}",
        "2026-03-29 10:00:00,100 [INFO] app.services.stock_service: Processing transaction 9 (type: 101) for tenant "
        "T1234 store 5678, terminal 2",
        "2026-03-29 10:00:00,200 [INFO] kugel_common.utils.dapr_client_helper: Successfully saved state for e-9",
        f"2026-03-29 10:03:00,000 [INFO] app.api.v1.stock: Received transaction log: {body}",
        "2026-03-29 10:03:00,010 [INFO] app.api.v1.stock: Duplicate transaction log received: e-9",
    ]
    inp = parse_log_lines(lines, service="stock")
    assert len(inp.applications) == 1 and inp.applications[0].wall == parse_asctime("2026-03-29", "10:00:00", "000")
    assert [(m.subscriber, m.event_id, m.ok) for m in inp.mark_writes] == [("stock", "e-9", True)]


def test_per_event_dedup_errors_and_mark_writes_come_from_the_helpers_lines():
    lines = [
        "2026-03-29 10:00:00,000 [ERROR] kugel_common.utils.dapr_client_helper: Failed to get state for e-1: "
        "ConnectError",
        "2026-03-29 10:00:00,001 [ERROR] app.api.v1.tran: Error checking for duplicates: boom. Proceeding with "
        "caution for event_id: e-1",
        "2026-03-29 10:00:00,050 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-1, tranlog: "
        '{"tenant_id":"T1234","store_code":"5678","terminal_no":1,"transaction_no":42}',
        "2026-03-29 10:00:00,060 [ERROR] kugel_common.utils.dapr_client_helper: Failed to save state for e-1: "
        "ConnectError",
        "2026-03-29 10:00:05,060 [ERROR] kugel_common.utils.dapr_client_helper: Circuit breaker OPEN - rejecting "
        "save state for e-2",
        "2026-03-29 10:00:06,000 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-3, tranlog: "
        '{"tenant_id":"T1234","store_code":"5678","terminal_no":1,"transaction_no":43}',
    ]
    inp = parse_log_lines(lines, service="report")
    assert [(a.event_id, a.dedup) for a in inp.applications] == [("e-1", "error"), ("e-3", "")]
    assert [(m.event_id, m.ok) for m in inp.mark_writes] == [("e-1", False), ("e-2", False)]


def test_compose_prefixed_stream_and_files(tmp_path: Path):
    path = tmp_path / "compose.log"
    path.write_text(
        f"kugelpos-report-1   | 2026-03-29 10:00:00,000 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-1, tranlog: {TRAN_JSON}\n"
        f"stock-1  | 2026-03-29 10:00:00,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures\n"
        "stock-1  | INFO:     Started server process [7]\n"
    )
    inp = parse_log_files({"": [path]})
    assert [a.subscriber for a in inp.applications] == ["report"]
    assert [t.service for t in inp.breaker_transitions] == ["stock"]
    assert inp.has("applications") and any("not in Kugelpos' format" in n for n in inp.notes)
    missing = parse_log_files({"report": [tmp_path / "nope.log"]})
    assert "applications" in missing.missing


def test_extract_fields_camel_case_and_kv():
    assert extract_fields('{"tenantId": "T", "storeCode": "S", "terminalNo": 3, "transactionNo": 5}') == {
        "tenant_id": "T", "store_code": "S", "terminal_no": "3", "transaction_no": "5"}
    assert extract_fields("tenant_id=T store_code=S terminal_no=1")["terminal_no"] == "1"


def test_a_log_without_info_lines_does_not_say_no_mark_was_written(tmp_path: Path):
    """Applications logged (INFO) but no 'Successfully saved state' line at all: the mark writes
    are missing, so a duplicate across a kill is undetermined, not tolerated by default."""
    log = tmp_path / "report.log"
    log.write_text("2026-03-29 10:00:00,050 [INFO] app.api.v1.tran: tranlog received successfully. event_id: e-1, "
                   'tranlog: {"tenant_id":"T1234","store_code":"5678","terminal_no":1,"transaction_no":42}\n')
    inp = parse_log_files({"report": [log]})
    assert "mark_writes" in inp.missing and not inp.has("mark_writes")
    log.write_text(log.read_text() + "2026-03-29 10:00:00,060 [INFO] kugel_common.utils.dapr_client_helper: "
                                     "Successfully saved state for e-1\n")
    assert parse_log_files({"report": [log]}).has("mark_writes")
