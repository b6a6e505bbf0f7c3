"""Duplicate checker: pass, duplicate, tolerated (fault window, dedup error, state_unreachable), strict, unknown."""

from __future__ import annotations

from kugeldrill.checkers.duplicates import check_duplicates
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_TRANLOG, Application, IdempotencyMarker, StateUnreachable
from kugeldrill.checkers.params import DuplicatePolicy
from kugeldrill.checkers.synthetic import fault, full_fanout_run

KEY = tran_key("T1", "S1", 1, 7)


def _app(sub: str, eid: str | None, mono: float, dedup: str = "miss") -> Application:
    return Application(sub, eid, TOPIC_TRANLOG, KEY, mono, 1_700_000_000.0 + mono, 1, dedup)


def _inputs(apps, faults=(), unreachable=()) -> CheckInputs:
    inp = CheckInputs(applications=list(apps), faults=list(faults), state_unreachable=list(unreachable))
    for name in ("applications", "faults", "state_unreachable"):
        inp.mark(name, "test")
    return inp


def test_healthy_run_passes():
    r = check_duplicates(full_fanout_run(50))
    assert r.valid is True
    assert r.counts["applications"] == 50 * 3 - 5 * 1  # cash-ins go to two subscribers
    assert r.counts["duplicated_events"] == 0


def test_no_applications_is_unknown():
    inp = CheckInputs()
    inp.mark_missing("applications", "no events file")
    r = check_duplicates(inp)
    assert r.valid is None and "no events file" in r.summary


def test_duplicate_outside_outage_fails_with_times():
    r = check_duplicates(_inputs([_app("stock", "e1", 10.0), _app("stock", "e1", 200.0), _app("report", "e1", 10.0)]))
    assert r.valid is False
    ex = r.examples["duplicate"][0]
    assert ex["subscriber"] == "stock" and ex["applications"] == 2
    assert [t["mono"] for t in ex["times"]] == [10.0, 200.0]
    assert r.counts["per_subscriber"]["stock"]["not_tolerated"] == 1
    assert r.counts["per_subscriber"]["report"]["duplicated_events"] == 0


def test_duplicate_during_redis_fault_is_tolerated_unless_strict():
    apps = [_app("stock", "e1", 10.0), _app("stock", "e1", 102.0)]
    faults = [fault("f1", "redis@stock", "down", 100.0, 130.0)]
    r = check_duplicates(_inputs(apps, faults))
    assert r.valid is True and r.counts["tolerated"] == 1
    assert "f1" in r.examples["tolerated_duplicate"][0]["tolerated_because"]
    assert check_duplicates(_inputs(apps, faults), DuplicatePolicy(strict=True)).valid is False
    # A fault on another subscriber's store explains nothing.
    other = [fault("f1", "redis@report", "down", 100.0, 130.0)]
    assert check_duplicates(_inputs(apps, other)).valid is False


def test_dedup_error_and_state_unreachable_tolerate():
    apps = [_app("journal", "e1", 10.0), _app("journal", "e1", 50.0, dedup="error")]
    assert check_duplicates(_inputs(apps)).valid is True
    apps2 = [_app("journal", "e2", 10.0), _app("journal", "e2", 50.0)]
    unreach = [StateUnreachable("journal", 48.0, 0.0, "get", "e2", "connection refused")]
    assert check_duplicates(_inputs(apps2, unreachable=unreach)).valid is True


def test_disabled_idempotency_is_never_tolerated():
    apps = [_app("stock", "e1", 101.0, dedup="disabled"), _app("stock", "e1", 105.0, dedup="disabled")]
    r = check_duplicates(_inputs(apps, [fault("f1", "redis@stock", "down", 100.0, 130.0)]))
    assert r.valid is False and r.examples["duplicate"][0]["dedup_disabled"] is True


def test_db_existing_applications_are_not_effects():
    apps = [_app("report", "e1", 10.0), _app("report", "e1", 200.0, dedup="db_existing")]
    r = check_duplicates(_inputs(apps))
    assert r.valid is True and r.counts["db_existing_skipped"] == 1


def test_records_without_event_id_judged_by_key():
    r = check_duplicates(_inputs([_app("stock", None, 10.0), _app("stock", None, 20.0)]))
    assert r.valid is False and r.examples["duplicate"][0]["key"] == KEY


def test_marker_versions_reported():
    inp = _inputs([_app("stock", "e1", 10.0)])
    inp.markers = [IdempotencyMarker("stock", "e1", 2, -1)]
    r = check_duplicates(inp)
    assert r.counts["markers_saved_more_than_once"] == {"stock": 1}
