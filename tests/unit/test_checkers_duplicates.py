"""Duplicate checker: pass; a duplicate is tolerated only by its event's own record (dedup error,
a failed mark write, a kill before the mark, a lost store), never by a fault window; strict;
undetermined evidence is unknown; no data is unknown."""

from __future__ import annotations

from kugeldrill.checkers.duplicates import check_duplicates
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_TRANLOG, Application, IdempotencyMarker, MarkWrite, StateUnreachable
from kugeldrill.checkers.params import DuplicatePolicy
from kugeldrill.checkers.synthetic import fault, full_fanout_run

KEY = tran_key("T1", "S1", 1, 7)


def _app(sub: str, eid: str | None, mono: float, dedup: str = "miss") -> Application:
    return Application(sub, eid, TOPIC_TRANLOG, KEY, mono, 1_700_000_000.0 + mono, 1, dedup)


def _mark(sub: str, eid: str, mono: float, ok: bool = True) -> MarkWrite:
    return MarkWrite(sub, eid, mono, 1_700_000_000.0 + mono, ok, "" if ok else "connection refused")


def _inputs(apps, faults=(), unreachable=(), marks=()) -> CheckInputs:
    inp = CheckInputs(applications=list(apps), faults=list(faults), state_unreachable=list(unreachable),
                      mark_writes=list(marks))
    for name in ("applications", "faults", "state_unreachable", "mark_writes"):
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


def test_a_duplicate_whose_mark_was_written_fails_with_times():
    apps = [_app("stock", "e1", 10.0), _app("stock", "e1", 200.0), _app("report", "e1", 10.0)]
    r = check_duplicates(_inputs(apps, marks=[_mark("stock", "e1", 10.1), _mark("report", "e1", 10.1)]))
    assert r.valid is False
    ex = r.examples["duplicate"][0]
    assert ex["subscriber"] == "stock" and ex["applications"] == 2
    assert [t["mono"] for t in ex["times"]] == [10.0, 200.0]
    assert ex["unexplained"]["applied_mono"] == 200.0
    assert r.counts["per_subscriber"]["stock"]["not_tolerated"] == 1
    assert r.counts["per_subscriber"]["report"]["duplicated_events"] == 0


def test_a_duplicate_inside_a_fault_window_without_per_event_evidence_is_a_violation():
    """The Redis link of stock was down around the second application, but that delivery's
    check reached the store (dedup miss) and the first mark was written: nothing explains it."""
    apps = [_app("stock", "e1", 99.0), _app("stock", "e1", 102.0)]
    faults = [fault("f1", "redis@stock", "down", 100.0, 130.0)]
    unreach = [StateUnreachable("stock", 101.0, 0.0, "get", "e2", "connection refused")]  # another event's check
    r = check_duplicates(_inputs(apps, faults, unreach, marks=[_mark("stock", "e1", 99.1)]))
    assert r.valid is False and r.counts["tolerated"] == 0


def test_a_failed_dedup_check_of_that_delivery_tolerates_it_unless_strict():
    apps = [_app("journal", "e1", 10.0), _app("journal", "e1", 50.0, dedup="error")]
    marks = [_mark("journal", "e1", 10.1)]
    r = check_duplicates(_inputs(apps, marks=marks))
    assert r.valid is True and r.counts["tolerated_by"] == {"dedup_error": 1}
    assert r.details["tolerated"][0]["evidence"] == [{"kind": "dedup_error", "application_mono": 50.0,
                                                      "dedup": "error"}]
    assert check_duplicates(_inputs(apps, marks=marks), DuplicatePolicy(strict=True)).valid is False
    # The first delivery's failed check explains nothing about the second one's.
    first_only = [_app("journal", "e1", 10.0, dedup="error"), _app("journal", "e1", 50.0)]
    assert check_duplicates(_inputs(first_only, marks=marks)).valid is False


def test_a_mark_that_could_not_be_written_while_the_store_was_out_of_reach_tolerates_the_next_application():
    apps = [_app("report", "e2", 10.0), _app("report", "e2", 50.0)]
    failed = MarkWrite("report", "e2", 16.0, 1_700_000_016.0, False, "Request timeout", started_mono=10.1)
    cut = [fault("f1", "redis@report", "down", 15.0, 30.0)]
    r = check_duplicates(_inputs(apps, cut, marks=[failed, _mark("report", "e2", 50.1)]))
    assert r.valid is True and r.counts["tolerated_by"] == {"mark_failed": 1}
    assert r.details["tolerated"][0]["evidence"][0]["store_out_of_reach"] == "faults f1 on its state path"
    # A failed write followed by a good one before the redelivery: the mark was there.
    healed = [failed, _mark("report", "e2", 20.0)]
    assert check_duplicates(_inputs(apps, cut, marks=healed)).valid is False
    # The same failure with the store in reach (no fault on its path, its breaker CLOSED): a defect.
    assert check_duplicates(_inputs(apps, [fault("f1", "redis@stock", "down", 15.0, 30.0)], marks=[failed])).valid is False


def test_a_mark_rejected_by_an_open_breaker_is_out_of_reach():
    from kugeldrill.checkers.synthetic import transition

    apps = [_app("report", "e2", 10.0), _app("report", "e2", 50.0)]
    inp = _inputs(apps, marks=[MarkWrite("report", "e2", 10.2, 0.0, False, "circuit breaker open", 10.2)])
    inp.breaker_transitions = [transition("report", 9.0, "CLOSED", "OPEN", failures=3),
                               transition("report", 12.0, "OPEN", "HALF_OPEN"),
                               transition("report", 12.1, "HALF_OPEN", "CLOSED")]
    r = check_duplicates(inp)
    assert r.valid is True and r.details["tolerated"][0]["evidence"][0]["store_out_of_reach"] == \
        "its breaker was not CLOSED"


def test_no_mark_record_at_all_is_a_violation_when_the_source_records_marks():
    """A subscriber that never writes its mark (and nothing failed or died) applies again: a defect."""
    apps = [_app("stock", "e1", 10.0), _app("stock", "e1", 50.0)]
    assert check_duplicates(_inputs(apps)).valid is False
    unrecorded = _inputs(apps)
    unrecorded.mark_writes = []
    unrecorded.sources.pop("mark_writes")
    unrecorded.mark_missing("mark_writes", "not recorded by this source")
    r = check_duplicates(unrecorded)
    assert r.valid is None and "could not be weighed" in r.summary  # unknown, never a pass


def test_every_extra_application_needs_its_own_reason():
    apps = [_app("stock", "e1", 10.0), _app("stock", "e1", 50.0, dedup="error"), _app("stock", "e1", 90.0)]
    r = check_duplicates(_inputs(apps, marks=[_mark("stock", "e1", 50.1)]))
    assert r.valid is False and r.examples["duplicate"][0]["unexplained"]["applied_mono"] == 90.0


def test_disabled_idempotency_is_never_tolerated():
    apps = [_app("stock", "e1", 101.0, dedup="disabled"), _app("stock", "e1", 105.0, dedup="disabled")]
    r = check_duplicates(_inputs(apps, [fault("f1", "redis@stock", "down", 100.0, 130.0)]))
    assert r.valid is False and r.examples["duplicate"][0]["dedup_disabled"] is True


def test_db_existing_applications_are_not_effects():
    apps = [_app("report", "e1", 10.0), _app("report", "e1", 200.0, dedup="db_existing")]
    r = check_duplicates(_inputs(apps))
    assert r.valid is True and r.counts["db_existing_skipped"] == 1


def test_records_without_event_id_judged_by_key_and_undetermined_without_evidence():
    r = check_duplicates(_inputs([_app("stock", None, 10.0), _app("stock", None, 20.0)]))
    assert r.valid is None and r.examples["undetermined_duplicate"][0]["key"] == KEY
    r = check_duplicates(_inputs([_app("stock", None, 10.0), _app("stock", None, 20.0, dedup="error")]))
    assert r.valid is True


def test_marker_versions_reported():
    inp = _inputs([_app("stock", "e1", 10.0)])
    inp.markers = [IdempotencyMarker("stock", "e1", 2, -1)]
    r = check_duplicates(inp)
    assert r.counts["markers_saved_more_than_once"] == {"stock": 1}
