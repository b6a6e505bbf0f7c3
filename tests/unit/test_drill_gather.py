"""The summary's pictures from a run folder: Locust CSV (drill.locust), and timeline.json and
events through the checkers' adapters (each file's one reader)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kugeldrill.checkers.adapters.standin import load_standin_inputs
from kugeldrill.drill.gather import fill_from_inputs, fill_load
from kugeldrill.drill.runfolder import run_dir_for
from kugeldrill.drill.watch import LiveEvents
from kugeldrill.ground.errors import ConfigError
from kugeldrill.reports.console import Console, LiveStatus
from kugeldrill.reports.summary import BreakerPoint, EventBucket, EventTotals, Phase, RunSummary

HISTORY_HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
                  "99.99%,100%,Total Request Count,Total Failure Count\n")
STATS_HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
                "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
                "99.99%,100%\n")


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "locust_stats_history.csv").write_text(
        HISTORY_HEADER
        + "1000,5,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0\n"
        + "1001,5,POST,/cart,3.0,0.0,10,11,12,13,14,15,16,17,18,19,20,3,0\n"
        + "1002,5,,Aggregated,30.5,1.5,12,13,14,15,16,40,50,80,90,95,100,60,3\n")
    (tmp_path / "locust_stats.csv").write_text(
        STATS_HEADER
        + "POST,/cart,40,2,12,15,3,100,10,20.0,1.0,12,13,14,15,16,40,50,80,90,95,100\n"
        + ",Aggregated,60,3,12,15,3,100,10,30.0,1.5,12,13,14,15,16,40,50,80,90,95,100\n")
    (tmp_path / "timeline.json").write_text(json.dumps({"t0_wall": 1000.0, "t0_mono": 50.0, "faults": [
        {"id": "f1", "link": "redis@cart", "kind": "down", "params": {}, "at": 5, "for": 5,
         "applied_mono": 55.02, "healed_mono": 60.01, "status": "healed", "error": None},
        {"id": "f2", "link": "redis@stock", "kind": "down", "params": {}, "at": 30, "for": 5,
         "applied_mono": None, "healed_mono": None, "status": "skipped", "error": None},
        {"id": "f3", "link": "app@journal", "kind": "down", "params": {}, "at": 8, "for": 5,
         "applied_mono": 58.0, "healed_mono": None, "status": "failed", "error": "heal: boom"}]}))
    events = tmp_path / "events"
    events.mkdir()
    lines = [{"kind": "breaker", "service": "cart", "breaker": "dapr", "from": "closed", "to": "open", "mono": 56.0},
             {"kind": "publish", "service": "cart", "outcome": "ok", "mono": 51.0},
             {"kind": "publish", "service": "cart", "outcome": "rejected_open", "mono": 57.0},
             {"kind": "applied", "service": "stock", "mono": 51.5}]
    (events / "cart.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn')
    return tmp_path


def _fill(s: RunSummary, run: Path, until: float = float("inf")) -> None:
    fill_load(s, run)
    fill_from_inputs(s, load_standin_inputs(run, None), until)


def test_fill_from_folder(tmp_path: Path) -> None:
    s = RunSummary(scenario="x", t0_wall=1000.0, t0_mono=50.0)
    _fill(s, _folder(tmp_path))
    assert [r.t for r in s.series] == [0.0, 2.0]  # only Aggregated rows
    assert s.series[1].rps == 30.5 and s.series[1].p95 == 40.0 and s.series[0].p50 is None
    assert s.totals is not None
    assert s.totals.requests == 60 and abs(s.totals.error_rate - 0.05) < 1e-9 and s.totals.p99 == 80
    assert [e["Name"] for e in s.endpoints] == ["/cart"]
    assert [(f.id, *s.fault_window(f), f.error) for f in s.faults] == [("f1", 5.02, 10.01, None),
                                                                       ("f3", 8.0, None, "heal: boom")]
    assert s.breaker_transitions == [BreakerPoint("cart", "dapr", 6.0, "CLOSED", "OPEN")]
    assert s.events == EventTotals(published=1, publish_failed=1, applied=1, duplicates_skipped=0)
    assert s.event_series == [EventBucket(t=1.5, published=1, applied=1)]


def test_missing_files_leave_summary_empty(tmp_path: Path) -> None:
    s = RunSummary(scenario="x")
    _fill(s, tmp_path)
    assert s.series == [] and s.faults == [] and s.totals is None and s.events is None


def test_event_tail_is_incremental(tmp_path: Path) -> None:
    path = tmp_path / "cart.jsonl"
    path.write_text('{"kind": "publish", "outcome": "ok"}\n{"kind": "breaker", "service": "cart", "breaker": "dapr", "to": "open"}\n{"kind": "appl')
    tail = LiveEvents({"cart": path})
    tail.poll()
    assert (tail.published, tail.breakers) == (1, {"cart/dapr": "OPEN"})
    with open(path, "a") as fh:
        fh.write('ied"}\n')
    tail.poll()
    tail.poll()
    assert tail.applied == 1 and tail.published == 1


def test_plain_console_throttles_but_shows_phase_changes() -> None:
    out = io.StringIO()
    console = Console(out, live=False, plain_interval=60)
    for phase in ("load", "load", "load", "heal"):
        console.update(LiveStatus(scenario="s", phase=phase, rps=3.0, breakers={"cart/dapr": "OPEN"},
                                  active_faults=[{"kind": "down", "link": "sidecar@cart"}]))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "down sidecar@cart" in lines[0] and "cart/dapr=OPEN" in lines[0]


def test_run_dir_naming(tmp_path: Path) -> None:
    a = run_dir_for("baseline", runs_dir=tmp_path, now=0)
    b = run_dir_for("baseline", runs_dir=tmp_path, now=0)
    assert a != b and a.name.endswith("-baseline") and b.name.endswith("-baseline-2")
    single = run_dir_for("x", out=tmp_path / "one")
    assert single == (tmp_path / "one").resolve()
    (single / "verdict.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run"):
        run_dir_for("x", out=tmp_path / "one")


def test_rich_live_console_renders_faults_and_breakers() -> None:
    out = io.StringIO()
    with Console(out, live=True) as console:
        console.update(LiveStatus(scenario="sc", phase="load", elapsed=7, remaining=13, rps=42.0, fails_s=1.0,
                                  requests=300, failures=4, breakers={"cart/dapr": "OPEN"},
                                  active_faults=[{"kind": "down", "link": "sidecar@cart", "remaining": 5}],
                                  published=10, applied=25))
    text = out.getvalue()
    assert "sidecar@cart" in text and "cart/dapr" in text and "OPEN" in text and "42.0 req/s" in text


def test_transitions_after_teardown_started_are_dropped(tmp_path: Path) -> None:
    _folder(tmp_path)
    s = RunSummary(scenario="x", t0_wall=1000.0, t0_mono=50.0, phases=[Phase("teardown", 5.0, 9.0)])
    _fill(s, tmp_path, until=5.0)
    assert s.breaker_transitions == []  # the cart breaker opened at 6.0 s, during teardown
    assert all(row.t <= 5.5 for row in s.event_series)
