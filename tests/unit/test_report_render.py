"""Reports rendered from a synthetic run: verdict, JUnit and the self-contained HTML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from kugeldrill.reports.sample import synthetic_summary
from kugeldrill.reports import write_all
from kugeldrill.reports.chart import breaker_lanes, render_timeline_svg
from kugeldrill.checkers.synthetic import fault
from kugeldrill.reports.summary import EventBucket, ExpectationResult, Phase, RunSummary


def test_passing_run_writes_three_files_and_exit_0(tmp_path: Path) -> None:
    paths = write_all(tmp_path, synthetic_summary())
    assert set(paths) == {"verdict", "junit", "html"}
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["exit_code"] == 0
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"


def test_failing_expectation_is_a_failing_testcase_with_evidence(tmp_path: Path) -> None:
    write_all(tmp_path, synthetic_summary(failing=True))
    root = ET.parse(tmp_path / "junit.xml").getroot()
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1
    case = root.find(".//testcase[@name='duplicates.check']")
    assert case is not None and case.find("failure") is not None
    assert "ev-42" in (case.find("failure").text or "")
    html = (tmp_path / "report.html").read_text()
    assert 'data-verdict="fail"' in html and "ev-42" in html
    assert re.search(r'<tr class="expectation failed"', html)


def test_unknown_expectation_fails_and_empty_run_is_not_a_pass(tmp_path: Path) -> None:
    s = synthetic_summary()
    s.expectations.append(ExpectationResult("fanout.check", "fanout", None, "x", "checker did not run"))
    assert s.verdict == "fail" and s.exit_code == 1
    write_all(tmp_path, s)
    assert ET.parse(tmp_path / "junit.xml").getroot().find(".//failure[@type='unknown']") is not None
    empty = RunSummary(scenario="x")
    assert empty.verdict == "fail"


def test_interrupted_run_reports_partial(tmp_path: Path) -> None:
    s = synthetic_summary()
    s.status, s.error, s.expectations = "interrupted", "interrupted by SIGINT during load", []
    write_all(tmp_path, s)
    assert s.exit_code == 130
    root = ET.parse(tmp_path / "junit.xml").getroot()
    err = root.find(".//testcase[@name='drill.completed']/error")
    assert err is not None and err.get("type") == "interrupted"
    html = (tmp_path / "report.html").read_text()
    assert "INTERRUPTED" in html and "interrupted by SIGINT" in html


def test_html_is_self_contained(tmp_path: Path) -> None:
    write_all(tmp_path, synthetic_summary())
    html = (tmp_path / "report.html").read_text()
    assert "<script" not in html and "<link" not in html
    external = re.findall(r'(?:src|href)="(https?:[^"]*)"', html)
    assert external == []


def test_chart_shades_fault_windows_and_draws_breaker_lanes() -> None:
    s = synthetic_summary()
    svg = render_timeline_svg(s)
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    windows = root.findall(".//s:g[@class='fault-window']", ns)
    assert len(windows) == 1 and windows[0].get("data-link") == "sidecar@cart"
    rect = windows[0].find("s:rect", ns)
    # x scale: 150 px left margin, 790 px plot for 30 s => 10 s at 413.3 px, width 263.3 px
    assert abs(float(rect.get("x")) - (150 + 10 / 30 * 790)) < 0.2
    assert abs(float(rect.get("width")) - 10 / 30 * 790) < 0.2
    lanes = root.findall(".//s:g[@class='breaker-lane']", ns)
    assert [lane.get("data-service") for lane in lanes] == ["cart"]
    states = [r.get("data-state") for r in lanes[0].findall("s:rect", ns)]
    assert states == ["CLOSED", "OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]
    assert root.findall(".//s:polyline[@class='series rps']", ns)


def test_breaker_lanes_cover_the_run() -> None:
    s = synthetic_summary()
    lane = breaker_lanes(s, 30.0)[0]
    segs = lane["segments"]
    assert segs[0]["start"] == 0.0 and segs[-1]["end"] == 30.0
    assert all(a["end"] == b["start"] for a, b in zip(segs, segs[1:]))


def test_unhealed_fault_is_flagged() -> None:
    s = synthetic_summary()
    s.faults[0].healed_mono = None
    svg = render_timeline_svg(s)
    assert 'data-healed="false"' in svg and "never healed" in svg


def test_summary_round_trips(tmp_path: Path) -> None:
    s = synthetic_summary(failing=True)
    write_all(tmp_path, s)
    again = RunSummary.load(tmp_path / "verdict.json")
    assert again.to_dict() == s.to_dict()


def test_fanout_matrix_and_duplicate_tables(tmp_path: Path) -> None:
    s = synthetic_summary(failing=True)
    s.checks[1].counts["per_subscriber"] = {"stock": {"events": 100, "duplicated_events": 2}}
    write_all(tmp_path, s)
    html = (tmp_path / "report.html").read_text()
    matrix = re.search(r'<table class="fanout-matrix">(.*?)</table>', html, re.S)
    assert matrix and "topic-tranlog" in matrix.group(1)
    assert re.search(r'<tr class="failed"><td>topic-tranlog</td><td>stock</td>', matrix.group(1))
    assert '<table class="duplicates-counts-per_subscriber">' in html


def test_report_command_rerenders_a_run_folder(tmp_path: Path) -> None:
    from kugeldrill.cli import main

    write_all(tmp_path, synthetic_summary(failing=True))
    (tmp_path / "report.html").unlink()
    (tmp_path / "junit.xml").unlink()
    assert main(["report", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert 'data-verdict="fail"' in html and 'class="fault-window"' in html  # kept from verdict.json
    assert (tmp_path / "junit.xml").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_load_end_marker_when_recovery_is_charted() -> None:
    s = synthetic_summary()
    s.phases.append(Phase("quiescence", 30.0, 36.0))
    svg = render_timeline_svg(s)
    assert 'class="load-end"' in svg
    s.phases.pop()
    assert 'class="load-end"' not in render_timeline_svg(s)  # the chart ends with the load


def test_events_panel_drawn_only_with_event_series() -> None:
    s = synthetic_summary()
    assert "Events/s" not in render_timeline_svg(s)
    s.event_series = [EventBucket(1.5, published=3, republished=0, applied=9, duplicates=0),
                      EventBucket(2.5, published=2, republished=5, applied=6, duplicates=4)]
    svg = render_timeline_svg(s)
    assert "Events/s" in svg and 'class="series republished"' in svg
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    rect = root.find(".//s:g[@class='fault-window']/s:rect", ns)
    lanes_y = float(root.find(".//s:g[@class='breaker-lane']/s:rect", ns).get("y"))
    assert float(rect.get("y")) + float(rect.get("height")) > lanes_y  # the band still spans the lanes


def test_one_label_for_a_selector_that_hit_several_links() -> None:
    s = synthetic_summary()
    s.faults = [fault(f"f1:redis@{app}", f"redis@{app}", "down", 5.0 + i * 0.01, 11.0)
                for i, app in enumerate(("cart", "report", "stock"))]
    s.faults.append(fault("f2", "app@journal", "down", 20.0, 24.0))
    svg = render_timeline_svg(s)
    assert svg.count("down redis@* (3 links)") == 1 and "down app@journal" in svg
    assert svg.count('class="fault-window"') == 4


def test_failing_evidence_is_a_table_not_a_json_box(tmp_path: Path) -> None:
    s = synthetic_summary(failing=True)
    s.expectations.append(ExpectationResult(
        "outcomes.check", "outcomes", False, "business state matches the load", "1 mismatch",
        {"mismatches": [{"key": "report/T1-5678-1/20261202/sales_gross.count", "expected": "10", "observed": "9"}]}))
    write_all(tmp_path, s)
    html = (tmp_path / "report.html").read_text()
    assert "<pre>" not in html
    table = re.search(r'<table class="evidence"><tr><th>key</th><th>expected</th><th>observed</th></tr>(.*?)</table>',
                      html, re.S)
    assert table and "sales_gross.count" in table.group(1) and "<td>9</td>" in table.group(1)
    assert re.search(r"<td>ev-42</td>", html)  # checker examples as table rows too


def test_failure_lines_name_each_failed_or_unknown_expectation_with_its_first_evidence() -> None:
    from kugeldrill.reports.console import failure_lines

    s = synthetic_summary(failing=True)
    s.expectations.append(ExpectationResult(
        "outcomes.check", "outcomes", False, "report, journal and stock match the load", "2 mismatches",
        {"mismatches": [{"key": "stock/ITEM007", "expected": "93", "observed": "91"},
                        {"key": "journal/T-1/42", "expected": "1 entry", "observed": "0"}]}))
    s.expectations.append(ExpectationResult("fanout.check", "fanout", None, "no violation", "unknown: no events"))
    lines = failure_lines(s)
    assert len(lines) == 3
    assert lines[0].startswith("  FAILED duplicates.check") and "event_id=ev-42" in lines[0]
    assert "stock/ITEM007: expected 93, observed 91 (and 1 more)" in lines[1]
    assert lines[2].startswith("  UNKNOWN fanout.check") and "unknown: no events" in lines[2]
    assert failure_lines(synthetic_summary()) == []
