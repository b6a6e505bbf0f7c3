"""The known-defects file and the classing of a drill's failures against it (kugeldrill.suite)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kugeldrill.checkers.adapters.kugelpos_logs import LineMatches, matching_lines
from kugeldrill.checkers.model import CheckResult
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.gzfiles import gzip_in_place
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.summary import ExpectationResult, RunSummary
from kugeldrill.suite.classify import classify_drill
from kugeldrill.suite.known import load_known, parse_known
from kugeldrill.suite.report import build_suite_junit, console_lines, suite_dict
from kugeldrill.suite.result import DrillOutcome, SuiteResult

ROOT = Path(__file__).resolve().parents[2]

KNOWN = """
kugelpos: 33ef985
defects:
  - id: per-request-breaker
    title: cart's breaker is built per request
    finding: docs/findings.md#1
    scenarios: [cut]
    checker: breaker
    kind: not_opened
    where: {service: cart}
    evidence:
      - {log: cart, pattern: "Failed to publish event to topic-tranlog"}
      - {log: cart, pattern: "Circuit breaker OPEN", absent: true}
  - id: closed-report-422
    title: a closed terminal's report answers 422
    finding: docs/findings.md#5
    scenarios: [baseline]
    checker: outcomes
    kind: unknown
    reason: "report unreadable .*422"
    evidence:
      - {log: report, pattern: "unsupported operand type"}
"""


def _logs(lines: dict[str, list[str]]):
    def lookup(app: str, pattern: re.Pattern[str]) -> LineMatches | None:
        if app not in lines:
            return None
        hits = [line for line in lines[app] if pattern.search(line)]
        return LineMatches(len(hits), tuple(hits[:3]))
    return lookup


CART_CUT_LOG = {"cart": ["2026-01-01 00:00:01,000 [ERROR] kugel_common.utils.dapr_client_helper: "
                         "Failed to publish event to topic-tranlog: Connection error: http://x"] * 4}


def _summary(scenario: str, checks: list[CheckResult], extra: list[ExpectationResult] = ()) -> RunSummary:
    exps = [ExpectationResult(f"{c.checker}.check", c.checker, c.valid, "no violation", c.summary) for c in checks]
    return RunSummary(scenario=scenario, run_dir=f"/runs/{scenario}", checks=checks, expectations=exps + list(extra),
                      started_wall=100.0, ended_wall=200.0)


def _not_opened(service: str = "cart") -> CheckResult:
    return CheckResult("breaker", False, "1 violation", counts={"violations": {"not_opened": 1}},
                       examples={"not_opened": [{"service": service, "breaker": "dapr"}]})


def _report_unknown(reason: str) -> CheckResult:
    return CheckResult("outcomes", None, f"unknown: {reason}", details={"unknown": [reason]})


def test_the_repository_known_defects_file_is_valid() -> None:
    known = load_known(ROOT / "kugelpos-known.yaml")
    assert known.defects and all(d.evidence for d in known.defects)
    assert all(d.finding.startswith("docs/findings.md#") for d in known.defects)


@pytest.mark.parametrize("text, where", [
    ("defects:\n  - id: x\n    title: t\n    finding: f\n    scenarios: [a]\n    checker: outcomes\n    kind: unknown\n"
     "    evidence: [{log: report, pattern: p}]\n", "needs `reason`"),
    ("defects:\n  - id: x\n    title: t\n    finding: f\n    scenarios: [a]\n    checker: breaker\n    kind: k\n", "evidence"),
    ("defects:\n  - id: x\n    title: t\n    finding: f\n    scenarios: [a]\n    checker: breaker\n    kind: k\n"
     "    evidence: [{log: cart, pattern: '(unclosed'}]\n", "regular expression"),
    ("defects:\n  - id: x\n    title: t\n    finding: f\n    scenarios: [a]\n    checker: breaker\n    kind: k\n"
     "    evidence: [{log: cart, pattern: p}]\n    colour: red\n", "unknown field"),
])
def test_a_bad_entry_is_named_with_its_file_and_line(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_known(text, "known.yaml")
    assert "known.yaml:" in str(err.value) and where in str(err.value)


def test_duplicate_ids_are_refused() -> None:
    entry = ("  - id: x\n    title: t\n    finding: f\n    scenarios: [a]\n    checker: b\n    kind: k\n"
             "    evidence: [{log: cart, pattern: p}]\n")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_known("defects:\n" + entry + entry, "known.yaml")


def test_a_failure_with_the_signature_and_the_evidence_is_known_and_reproduced() -> None:
    known = parse_known(KNOWN, "k.yaml")
    result = classify_drill(_summary("cut", [_not_opened()]), known, _logs(CART_CUT_LOG))
    [c] = result.failures
    assert (c.cls, c.known_id) == ("known", "per-request-breaker") and c.evidence
    assert [(s.defect_id, s.status) for s in result.known] == [("per-request-breaker", "reproduced")]
    assert result.outcome == "known"


def test_the_same_failure_without_the_evidence_is_new() -> None:
    known = parse_known(KNOWN, "k.yaml")
    opened = {"cart": CART_CUT_LOG["cart"] + ["... [WARNING] x: Circuit breaker OPEN after 3 failures"]}
    result = classify_drill(_summary("cut", [_not_opened()]), known, _logs(opened))
    assert result.failures[0].cls == "new" and "Circuit breaker OPEN" in result.failures[0].why
    assert result.known[0].status == "not_reproduced"


def test_an_example_of_another_service_is_not_the_known_defect() -> None:
    known = parse_known(KNOWN, "k.yaml")
    result = classify_drill(_summary("cut", [_not_opened("report")]), known, _logs(CART_CUT_LOG))
    assert result.failures[0].cls == "new" and "service='report'" in result.failures[0].why


def test_an_unknown_is_known_only_when_every_reason_is_the_defects_symptom() -> None:
    known = parse_known(KNOWN, "k.yaml")
    logs = _logs({"report": ["... [ERROR] app: unsupported operand type(s) for +: 'int' and 'NoneType'"]})
    ok = classify_drill(_summary("baseline", [_report_unknown("report unreadable after the drill: 422 Unprocessable")]),
                        known, logs)
    assert ok.failures[0].cls == "known" and ok.outcome == "known"
    other = CheckResult("outcomes", None, "unknown", details={"unknown": [
        "report unreadable after the drill: 422 Unprocessable", "no report read before the load for terminal 3"]})
    mixed = classify_drill(_summary("baseline", [other]), known, logs)
    assert mixed.failures[0].cls == "unknown" and mixed.outcome == "unknown"


def test_a_known_defect_is_recognised_in_a_drill_it_is_not_listed_for() -> None:
    known = parse_known(KNOWN, "k.yaml")
    result = classify_drill(_summary("other", [_not_opened()]), known, _logs(CART_CUT_LOG))
    assert result.failures[0].known_id == "per-request-breaker" and result.known == []


def test_a_drill_that_did_not_complete_is_new_and_its_defects_not_judged() -> None:
    known = parse_known(KNOWN, "k.yaml")
    summary = _summary("cut", [])
    summary.status, summary.error = "error", "Locust exited"
    result = classify_drill(summary, known, _logs({}))
    assert [(c.failure.checker, c.cls) for c in result.failures] == [("drill", "new")]
    assert result.known[0].status == "not_judged"


def _suite(*drills: tuple[RunSummary, dict], strict: bool = False) -> SuiteResult:
    known = parse_known(KNOWN + ("strict: true\n" if strict else ""), "k.yaml")
    result = SuiteResult("kugelpos", "native", known, started_wall=1.0, ended_wall=2.0)
    for summary, logs in drills:
        result.drills.append(DrillOutcome(summary, classify_drill(summary, known, _logs(logs))))
    return result


def test_the_suite_is_green_exactly_when_nothing_new_failed() -> None:
    green = _suite((_summary("cut", [_not_opened()]), CART_CUT_LOG), (_summary("baseline", []), {}))
    assert green.exit_code == 0 and green.line().startswith("GREEN: nothing new failed in 2 drill(s)")
    assert "1 known defect(s) reproduced, 1 not reproduced" in green.line()
    assert any("KNOWN DEFECT NOT REPRODUCED" in line and "closed-report-422" in line for line in console_lines(green))
    red = _suite((_summary("cut", [_not_opened("report")]), CART_CUT_LOG))
    assert red.exit_code == 1 and "1 new failure(s): cut: breaker not_opened" in red.line()
    strict = _suite((_summary("baseline", []), {}), strict=True)
    assert strict.exit_code == 1 and "not reproduced (strict)" in strict.line()


def test_junit_follows_pytests_expected_failure_conventions() -> None:
    result = _suite((_summary("cut", [_not_opened()]), CART_CUT_LOG), (_summary("baseline", []), {}))
    root = build_suite_junit(result)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    skipped = cases["breaker.check"].find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.xfail" and "per-request-breaker" in skipped.get("message")
    assert cases["known[per-request-breaker]"].find("skipped").get("type") == "pytest.xfail"
    assert cases["known[closed-report-422]"].find("failure") is None  # XPASS, not strict: a pass
    strict = build_suite_junit(_suite((_summary("baseline", []), {}), strict=True))
    failure = next(c for c in strict.iter("testcase") if c.get("name") == "known[closed-report-422]").find("failure")
    assert failure is not None and failure.get("message").startswith("[XPASS(strict)]")
    new = build_suite_junit(_suite((_summary("cut", [_not_opened("stock")]), CART_CUT_LOG)))
    case = next(c for c in new.iter("testcase") if c.get("name") == "breaker.check")
    # The check fails as new; the defect it is not (wrong service) is not reproduced: an XPASS, not a failure.
    assert case.find("failure").get("type") == "new" and new.get("failures") == "1"


def test_suite_json_names_each_failure_class_and_each_defects_status() -> None:
    data = suite_dict(_suite((_summary("cut", [_not_opened()]), CART_CUT_LOG)))
    assert data["green"] and data["counts"]["reproduced"] == 1
    assert data["drills"][0]["failures"][0]["class"] == "known"
    assert data["known"][0]["finding"] == "docs/findings.md#1"


def test_log_evidence_counts_only_the_drills_own_lines(tmp_path: Path) -> None:
    logs = RunFolder(tmp_path).logs_dir
    logs.mkdir()
    (logs / "report.log").write_text(
        "2026-01-01 00:00:00,000 [ERROR] app: unsupported operand type(s) for +\n"
        "2026-01-01 00:10:00,000 [ERROR] app: Error occurred during report generation:\n"
        "unsupported operand type(s) for + (a continuation line of the record above)\n")
    gzip_in_place(logs / "report.log")
    jan1 = 1767225600.0
    hits = matching_lines(tmp_path, "report", re.compile("unsupported operand"), since_wall=jan1 + 60)
    assert hits is not None and hits.count == 1 and "continuation" in hits.lines[0]
    assert matching_lines(tmp_path, "cart", re.compile("x")) is None


def test_every_failure_one_defect_causes_is_known_through_also() -> None:
    known = parse_known("""
defects:
  - id: acks-on-error
    title: a subscriber acknowledges what it failed to store
    finding: docs/findings.md#7
    scenarios: [db-cut]
    checker: fanout
    kind: missing
    where: {subscriber: "^report$"}
    also:
      - {checker: outcomes, kind: report_mismatch, where: {key: "^report "}}
      - {checker: convergence.max_seconds, kind: failed}
    evidence:
      - {log: report, pattern: "Error processing cashlog"}
""", "k.yaml")
    fanout = CheckResult("fanout", False, "missing 1", counts={"failures": {"missing": 1}},
                         examples={"missing": [{"subscriber": "report"}]})
    outcomes = CheckResult("outcomes", False, "mismatch", counts={"violations": {"report_mismatch": 1}},
                           examples={"report_mismatch": [{"key": "report 9/20261207 cash_in.amount"}]})
    convergence = ExpectationResult("convergence.max_seconds", "convergence", False, "quiescent within 15 s", "22 s")
    logs = _logs({"report": ["... [ERROR] app.api.v1.tran: Error processing cashlog. message: ..."]})
    result = classify_drill(_summary("db-cut", [fanout, outcomes], [convergence]), known, logs)
    assert [(c.failure.label, c.known_id) for c in result.failures] == [
        ("fanout missing", "acks-on-error"), ("outcomes report_mismatch", "acks-on-error"),
        ("convergence.max_seconds failed", "acks-on-error")]
    assert result.outcome == "known" and result.known[0].status == "reproduced"
    stock = CheckResult("outcomes", False, "mismatch", counts={"violations": {"stock_mismatch": 1}},
                        examples={"stock_mismatch": [{"key": "stock ITEM001"}]})
    other = classify_drill(_summary("db-cut", [fanout, stock]), known, logs)
    assert [c.cls for c in other.failures] == ["known", "new"]  # a failure the defect does not cause stays new


def test_one_failure_kind_may_hold_two_known_defects() -> None:
    two = KNOWN + """
  - id: per-request-breaker-terminal
    title: terminal's breaker is built per request
    finding: docs/findings.md#1
    scenarios: [cut]
    checker: breaker
    kind: not_opened
    where: {service: terminal}
    evidence:
      - {log: terminal, pattern: "Failed to publish event"}
"""
    known = parse_known(two, "k.yaml")
    both = CheckResult("breaker", False, "2 violations", counts={"violations": {"not_opened": 2}},
                       examples={"not_opened": [{"service": "cart"}, {"service": "terminal"}]})
    logs = {**CART_CUT_LOG, "terminal": ["... [ERROR] x: Failed to publish event to topic-cashlog: ..."]}
    result = classify_drill(_summary("cut", [both]), known, _logs(logs))
    assert result.failures[0].cls == "known"
    assert result.failures[0].known_ids == ["per-request-breaker", "per-request-breaker-terminal"]
    assert {s.defect_id: s.status for s in result.known}["per-request-breaker-terminal"] == "reproduced"
    no_terminal_evidence = classify_drill(_summary("cut", [both]), known, _logs(CART_CUT_LOG))
    assert no_terminal_evidence.failures[0].cls == "new"  # the terminal example has no defect with evidence


def test_a_defect_no_drill_triggers_on_purpose_is_recognised_and_never_not_reproduced() -> None:
    known = parse_known("""
defects:
  - id: race
    title: a race leaves the republish job dead
    finding: docs/findings.md#10
    checker: outcomes
    kind: journal_missing
    evidence:
      - {log: terminal, pattern: "KeyError: 'event_type'"}
""", "k.yaml")
    missing = CheckResult("outcomes", False, "missing", counts={"violations": {"journal_missing": 1}},
                          examples={"journal_missing": [{"key": "journal terminal 9 type 401 amount 5.0"}]})
    hit = classify_drill(_summary("any", [missing]), known, _logs({"terminal": ["KeyError: 'event_type'"]}))
    assert hit.failures[0].known_ids == ["race"] and hit.known == []
    quiet = classify_drill(_summary("any", []), known, _logs({}))
    assert quiet.known == []  # no drill must reproduce it: nothing is "not reproduced"


LOST_DELIVERY = """
defects:
  - id: lost-delivery
    title: a failed delivery is acknowledged and lost
    finding: docs/findings.md#8
    scenarios: [kill]
    checker: fanout
    kind: missing
    where: {subscriber: "^(report|journal|stock)$"}
    evidence:
      - {log: [sidecar-report, sidecar-journal, sidecar-stock],
         pattern: "Error processing Redis message .*(connection refused|connection reset|EOF)"}
"""
# The line journal's daprd wrote in a drill of the real code when it reused a keep-alive
# connection the subscriber had just closed (logs/sidecar-journal.log of kugelpos-sidecar-cut).
JOURNAL_EOF = ('time="2026-12-07T10:56:05.816199236Z" level=error msg="Error processing Redis message 1796640965807-0: '
               'error returned from app channel while sending pub/sub event to app: retriable error occurred: '
               'Post \\"http://127.0.0.1:52213/api/v1/opencloselog\\": EOF" app_id=journal')


def _missing(subscriber: str) -> CheckResult:
    return CheckResult("fanout", False, "fan-out broken: missing 1", counts={"violations": {"missing": 1}},
                       examples={"missing": [{"subscriber": subscriber, "topic": "topic-opencloselog"}]})


def test_evidence_may_be_in_any_of_several_logs() -> None:
    known = parse_known(LOST_DELIVERY, "k.yaml")
    in_journal = classify_drill(_summary("cut", [_missing("journal")]), known,
                                _logs({"sidecar-report": [], "sidecar-journal": [JOURNAL_EOF]}))
    assert in_journal.failures[0].cls == "known" and in_journal.failures[0].evidence[0].startswith("sidecar-journal: ")
    nowhere = classify_drill(_summary("cut", [_missing("journal")]), known,
                             _logs({"sidecar-report": ["level=info msg=ok"], "sidecar-journal": []}))
    assert nowhere.failures[0].cls == "new"
    assert "sidecar-report / sidecar-journal / sidecar-stock" in nowhere.failures[0].why
    no_logs = classify_drill(_summary("cut", [_missing("journal")]), known, _logs({}))
    assert no_logs.failures[0].cls == "new" and "no log of sidecar-report / sidecar-journal" in no_logs.failures[0].why


def test_the_repository_known_file_takes_the_live_subscribers_lost_delivery() -> None:
    known = load_known(ROOT / "kugelpos-known.yaml")
    result = classify_drill(_summary("kugelpos-sidecar-cut", [_missing("journal")]), known,
                            _logs({"sidecar-journal": [JOURNAL_EOF]}))
    assert (result.failures[0].cls, result.failures[0].known_id) == ("known", "subscriber-outage-loses-deliveries")
