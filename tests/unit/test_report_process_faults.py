"""Process faults in the reports: a window with action ticks on the chart, a section with the
actions and pids, Redis before / right after the restart / survived / lost / at the end, and
the recovery counts; verdict.json keeps them through a round trip."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from kugeldrill.reports import write_all
from kugeldrill.reports.sample import synthetic_summary
from kugeldrill.chaos.event import FaultEvent
from kugeldrill.chaos.record import AppliedFault, FaultStatus, PlannedFault
from kugeldrill.reports.summary import ProcessFaultReport, RunSummary

BEFORE = {"keys": 210, "markers_total": 198, "stream_entries_total": 78, "groups_total": 7, "pending_total": 3}
AFTER = {"keys": 2, "markers_total": 0, "stream_entries_total": 0, "groups_total": 2, "pending_total": 0,
         "survived": {"markers_survived": 0, "stream_entries_survived": 0, "groups_survived": 0, "pending_survived": 0}}
END = {"keys": 500, "markers_total": 499, "stream_entries_total": 182, "groups_total": 7, "pending_total": 0}


def act(action: str, t: float, before: list[int], after: list[int], outcome: str, **ready: object) -> FaultEvent:
    """An action at `t` seconds since t0 (the synthetic summary's t0_mono is 0)."""
    return FaultEvent(action, 1_700_000_000.0 + t, t, pids_before=before, pids_after=after, outcome=outcome,
                      **ready)  # type: ignore[arg-type]


def pfault(fid: str, process: str, kind: str, start: float, end: float, events: list[FaultEvent]) -> AppliedFault:
    planned = PlannedFault(kind, start, end - start, process=process, id=fid)
    return AppliedFault(planned, status=FaultStatus.HEALED, applied_mono=start, healed_mono=end, events=events)


def summary_with_process_faults() -> RunSummary:
    s = synthetic_summary()
    s.faults.append(pfault("redis-restart", "redis", "restart", 5.0, 8.2, [
        act("stop", 5.0, [101], [], "done"), act("start", 8.0, [101], [202], "done", ready_mono=8.2)]))
    s.faults.append(pfault("crash:app@journal", "app@journal", "kill", 3.0, 18.0, [
        act("kill", 3.0, [11], [], "done"), act("start", 3.1, [11], [12], "done", ready_mono=5.0),
        act("kill", 6.0, [12], [], "done"), act("start", 6.1, [12], [13], "done", ready_error="pid 13 exited"),
        act("start", 18.0, [13], [13], "already")]))
    s.process_faults = [
        ProcessFaultReport("redis-restart", "redis", "restart",
                           recovery={"in_flight": 4, "recovered": 4, "recovered_after_fault_end": 1, "lost": 0,
                                     "duplicated_across_fault": 0, "publish_failed_during": 34,
                                     "republished_after": 37, "kills": 0, "state_lost": True},
                           redis={"before": BEFORE, "after_restart": AFTER, "end": END,
                                  "lost": {"markers_total": 198, "stream_entries_total": 78, "groups_total": 7,
                                           "pending_total": 3}}),
        ProcessFaultReport("crash:app@journal", "app@journal", "kill",
                           recovery={"in_flight": 12, "recovered": 12, "lost": 0, "kills": 2}),
    ]
    return s


def test_chart_shows_process_faults_like_link_faults() -> None:
    from kugeldrill.reports.chart import render_timeline_svg

    svg = ET.fromstring(render_timeline_svg(summary_with_process_faults()))
    ns = {"s": "http://www.w3.org/2000/svg"}
    windows = svg.findall(".//s:g[@class='fault-window']", ns)
    by_subject = {w.get("data-link") or w.get("data-process"): w for w in windows}
    assert set(by_subject) == {"sidecar@cart", "redis", "app@journal"}
    journal = by_subject["app@journal"]
    ticks = [(t.get("data-action"), t.get("data-t")) for t in journal.findall("s:line[@class='process-action']", ns)]
    assert ticks == [("kill", "3.000"), ("start", "3.100"), ("kill", "6.000"), ("start", "6.100")]  # 'already' is no act
    assert "kill app@journal" in "".join(journal.itertext())
    assert svg.findall(".//s:g[@class='breaker-lane']", ns)  # the lanes are drawn under the windows as before


def test_html_section_has_actions_inventory_and_recovery(tmp_path: Path) -> None:
    write_all(tmp_path, summary_with_process_faults())
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Process faults</h2>" in html
    redis = re.search(r'<div class="process-fault" data-process="redis" data-kind="restart">(.*?)</div>', html, re.S)
    assert redis and "pids [101] → [202]" in redis.group(1)
    row = re.search(r'<tr data-row="markers_total">(.*?)</tr>', redis.group(1)).group(1)
    cells = dict(re.findall(r'data-col="(\w+)">([^<]*)<', row))
    assert cells == {"before": "198", "after_restart": "0", "survived": "0", "lost": "198", "end": "499"}
    assert re.search(r'data-row="groups_total">.*?data-col="lost">7<.*?data-col="end">7<', redis.group(1))
    assert re.search(r'data-row="republished_after"><th>[^<]*</th><td class="num">37<', redis.group(1))
    assert re.search(r'data-row="state_lost"><th>[^<]*</th><td>yes<', redis.group(1))
    journal = re.search(r'data-process="app@journal" data-kind="kill">(.*?)</div>', html, re.S).group(1)
    assert journal.count('class="process-action" data-action="kill"') == 2 and "pid 13 exited" in journal
    assert "redis-inventory" not in journal  # Redis numbers only for the Redis fault
    faults_table = re.search(r'<table class="faults">(.*?)</table>', html, re.S).group(1)
    assert "<td>app@journal</td>" in faults_table and "link / process" in faults_table


def test_verdict_round_trip_keeps_process_faults(tmp_path: Path) -> None:
    write_all(tmp_path, summary_with_process_faults())
    back = RunSummary.load(tmp_path / "verdict.json")
    journal = next(f for f in back.faults if f.process == "app@journal")
    assert isinstance(journal.events[0], FaultEvent) and journal.events[3].ready_error == "pid 13 exited"
    assert back.fault_window(journal) == (3.0, 18.0)
    assert back.process_faults[0].redis["lost"]["markers_total"] == 198
    assert json.loads((tmp_path / "verdict.json").read_text())["faults"][1]["process"] == "redis"


def test_no_section_without_process_faults(tmp_path: Path) -> None:
    write_all(tmp_path, synthetic_summary())
    assert "Process faults" not in (tmp_path / "report.html").read_text()


def test_a_version_2_verdict_is_still_read(tmp_path: Path) -> None:
    """Run folders written before the one fault record: spans since t0, with `actions`."""
    old = {"scenario": "old", "version": 2, "t0_mono": 100.0, "faults": [
        {"id": "cut", "link": "sidecar@cart", "kind": "down", "start": 5.0, "end": 9.5, "params": {},
         "error": None, "status": "healed", "process": None, "actions": []},
        {"id": "crash", "link": "", "process": "app@journal", "kind": "kill", "start": 3.0, "end": 18.0,
         "status": "healed", "actions": [{"action": "kill", "t": 3.0, "pids_before": [11], "pids_after": [],
                                          "outcome": "done"},
                                         {"action": "start", "t": 3.1, "pids_before": [11], "pids_after": [12],
                                          "outcome": "done", "ready_t": 5.0}]},
        {"id": "late", "link": "redis@cart", "kind": "latency", "start": 20.0, "end": None, "status": "failed",
         "error": "apply: proxy not found", "actions": []}]}
    (tmp_path / "verdict.json").write_text(json.dumps(old))
    back = RunSummary.load(tmp_path / "verdict.json")
    assert [(f.id, f.subject, back.fault_window(f)) for f in back.faults] == [
        ("cut", "sidecar@cart", (5.0, 9.5)), ("crash", "app@journal", (3.0, 18.0)), ("late", "redis@cart", (20.0, None))]
    crash = back.faults[1]
    assert crash.kills == [103.0] and crash.events[1].ready_mono == 105.0 and not back.faults[2].applied
