"""bench/kugelpos.py's arithmetic, without a deployment: Locust's CSV, app.log growth, one phase's
figures (an unknown part makes the total unknown, never 0), the medians of rounds and the goal."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kugeldrill.stack.native.request_log import LoggedRequest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kugelpos", ROOT / "bench" / "kugelpos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


ADD = "POST /api/v1/carts/[cart_id]/lineItems (Add Item)"


def _figures(requests: int = 100, sales: int = 20) -> dict:
    return {"wall_seconds": 50.0, "client_cpu_seconds": 1.0, "sales": sales, "sale_seconds": [1.0, 2.0, 3.0],
            "endpoints": {ADD: {"requests": 60, "failures": 0, "median_ms": 400.0, "p95_ms": 900.0, "mean_ms": 450.0},
                          "Aggregated": {"requests": requests, "failures": 1, "median_ms": 500.0, "p95_ms": 1000.0}},
            "app_log": {"terminal": {"records": 2000, "debug": 1900, "bytes": 800000}}}


def _phase(bench, cpu: dict) -> dict:
    logged = {"terminal": [LoggedRequest("GET", "/api/v1/terminals/{}", 200, 9)] * 600,
              "stock": [LoggedRequest("POST", "/api/v1/tranlog", 200, 30)] * 20,
              "report": [LoggedRequest("POST", "/api/v1/tranlog", 200, 30)] * 22,
              "journal": [LoggedRequest("POST", "/api/v1/tranlog", 200, 30)] * 21}
    return bench.summarize_phase("kugelpos_client", 12, _figures(), cpu, logged, (10.0, 12.0))


def test_endpoint_stats_read_locusts_csv(bench, tmp_path: Path):
    (tmp_path / "locust_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,50%,95%\n"
        f"POST,{ADD},30,1,410,450.5,410,900\n,Aggregated,40,1,420,460,420,950\n")
    stats = bench.endpoint_stats(tmp_path / "locust")
    assert stats[ADD] == {"requests": 30, "failures": 1, "median_ms": 410.0, "p95_ms": 900.0, "mean_ms": 450.5}
    assert bench.endpoint_stats(tmp_path / "missing") == {}


def test_app_log_growth_counts_records_not_lines(bench, tmp_path: Path):
    log = tmp_path / "app.log"
    log.write_text("2026-12-07 03:45:19,052 [INFO] old: before the mark\n")
    growth = bench.AppLogGrowth(log)
    growth.mark()
    with open(log, "a") as fh:
        fh.write("2026-12-07 03:45:20,001 [DEBUG] kugel_common.receipt: <PrintData>\n  <Line/>\n</PrintData>\n"
                 "2026-12-07 03:45:20,002 [WARNING] kugel_common.utils.http_client_helper: not closed\n")
    got = growth.since_mark()
    assert got["records"] == 2 and got["debug"] == 1 and got["bytes"] > 0


def test_a_phase_gives_cpu_per_request_and_sale_by_part_and_the_calls_behind_them(bench):
    phase = _phase(bench, {"service terminal": 5.0, "service cart": 3.0, "mongodb": 2.0})
    assert phase["cpu_seconds_total"] == 10.0 and phase["cpu_ms_per_request_total"] == 100.0
    assert phase["cpu_ms_per_request"]["service terminal"] == 50.0 and phase["cpu_ms_per_sale"]["mongodb"] == 100.0
    assert phase["cpu_share"]["service terminal"] == 0.5
    assert phase["calls_per_request"]["terminal"] == 6.0 and phase["calls"]["terminal"] == {"GET /api/v1/terminals/{}": 600}
    assert phase["tranlog_deliveries"] == {"report": 22, "journal": 21, "stock": 20}
    assert phase["publishes_per_s"] == 0.42  # the median subscriber's deliveries over the phase
    assert phase["sales_per_s"] == 0.4 and phase["sale_ms"] == {"p50": 2000.0, "p95": 3000.0}
    assert phase["log_records_per_request"] == {"terminal": 20.0}
    assert "Aggregated" not in phase["endpoints"]


def test_an_unknown_part_makes_the_total_unknown_not_smaller(bench):
    phase = _phase(bench, {"service terminal": 5.0, "mongodb": None})
    assert phase["cpu_seconds_total"] is None and phase["cpu_ms_per_request_total"] is None
    assert phase["cpu_ms_per_request"]["mongodb"] is None and phase["cpu_share"] == {}


def test_rounds_are_medians_and_the_goal_says_why_not(bench):
    rounds = [_phase(bench, {"service terminal": t, "service cart": 3.0, "mongodb": 2.0}) for t in (5.0, 9.0, 6.0)]
    summary = bench.summarize_rounds(rounds)
    assert summary["rounds"] == 3 and summary["cpu_ms_per_request"]["service terminal"] == 60.0
    assert summary["endpoints"][ADD]["median_ms"] == 400.0
    unloaded = {"endpoints": {ADD: {"median_ms": 120.0}}}
    verdict = bench.goal(summary, unloaded, cores=2)
    assert verdict["met"] is False and verdict["add_item_median_ms"] == 400.0
    assert "110 ms of CPU per client request" in verdict["why_not"] and "caps 2 cores at 18 requests/s" in verdict["why_not"]
    assert "terminal answers 6.0 requests" in verdict["why_not"]
    assert bench.goal({}, {}, cores=2)["met"] is None  # nothing measured: unknown, not a pass
    assert bench.compare(summary, {**summary, "cpu_ms_per_request_total": 220.0})["cpu_ms_per_request"] == 2.0
