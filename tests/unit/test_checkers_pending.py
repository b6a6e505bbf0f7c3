"""Events still due for republish are pending (unknown, with the reason), never missing — and only
events whose publish failed: a published event that was not applied stays missing."""

from __future__ import annotations

import time

from kugeldrill.checkers import CheckParams, run_all
from kugeldrill.checkers.fanout import check_fanout
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import OutboxEntry
from kugeldrill.checkers.pending import RepublishPolicy, pending_republish
from kugeldrill.checkers.synthetic import fault, full_fanout_run

KEY = tran_key("T1", "S1", 1, 1)  # op0's event


def _without_publications(n: int = 10):
    """A real deployment's view: history and applications, no publication records."""
    inp = full_fanout_run(n)
    inp.publications = []
    inp.mark_missing("publications", "Kugelpos records publications only in its outbox")
    return inp


def _drop_event(inp, key: str) -> None:
    inp.applications = [a for a in inp.applications if a.key != key]
    inp.cache.clear()


def _age(inp, seconds: float) -> None:
    now = time.time()
    for op in inp.ops:
        op.invoke_wall = op.complete_wall = now - seconds


def test_no_republish_job_means_nothing_is_pending():
    inp = _without_publications()
    _drop_event(inp, KEY)
    assert not pending_republish(inp, RepublishPolicy(interval_seconds=None))


def test_ops_while_the_publisher_was_cut_are_pending_without_other_sources():
    inp = _without_publications()
    _drop_event(inp, KEY)
    op0 = next(op for op in inp.ops if op.op_id == "op0")
    inp.faults = [fault("f1", "sidecar@cart", "down", op0.invoke_mono - 1.0, op0.invoke_mono + 0.5)]
    _age(inp, 10)
    pending = pending_republish(inp, RepublishPolicy(interval_seconds=300, min_age_seconds=300, max_call_seconds=0.5))
    assert "op0" in pending.ops and "due" in pending.reason()
    r = check_fanout(inp, pending=pending)
    assert r.valid is None and "republish" in r.summary and "missing" not in r.examples
    assert r.counts["totals"]["pending_republish"] == 3  # report, journal and stock are owed
    # The same absence with no cut publisher is a loss.
    inp.faults = []
    r = check_fanout(inp, pending=pending_republish(inp, RepublishPolicy(interval_seconds=300)))
    assert r.valid is False and r.examples["missing"][0]["op"] == "op0"


def test_only_a_failed_publish_is_pending_in_the_outbox():
    inp = _without_publications(4)
    _drop_event(inp, KEY)
    entries = {e.key: e for e in (OutboxEntry("cart", f"e{i}", "topic-tranlog", tran_key("T1", "S1", i + 1, 1), "delivered")
                                  for i in range(4))}
    entries[KEY].status = "failed"
    inp.outbox = list(entries.values())
    inp.mark("outbox", "test")
    _age(inp, 10)
    policy = RepublishPolicy(interval_seconds=300, min_age_seconds=300)
    assert pending_republish(inp, policy).ops == {"op0"}
    entries[KEY].status = "partially_delivered"  # published; a subscriber did not take it: a delivery failure
    assert not pending_republish(inp, policy)


def test_publication_records_decide_on_the_stand_in():
    inp = full_fanout_run(6)
    for p in inp.publications:
        if p.key == KEY:
            p.outcome = "failed"
    _age(inp, 5)
    pending = pending_republish(inp, RepublishPolicy(interval_seconds=300, min_age_seconds=300))
    assert pending.ops == {"op0"} and "publication records" in pending.reason()


def test_past_the_republish_window_nothing_is_owed_any_more():
    inp = _without_publications()
    _drop_event(inp, KEY)
    inp.faults = [fault("f1", "sidecar@cart", "down", -1e9, 1e9)]
    _age(inp, 25 * 3600)
    assert not pending_republish(inp, RepublishPolicy(interval_seconds=300))


def test_run_all_passes_pending_to_fanout():
    inp = _without_publications()
    _drop_event(inp, KEY)
    op0 = next(op for op in inp.ops if op.op_id == "op0")
    inp.faults = [fault("f1", "redis@cart", "down", op0.invoke_mono - 1, op0.invoke_mono + 1)]
    _age(inp, 1)
    params = CheckParams(republish=RepublishPolicy(interval_seconds=300, max_call_seconds=0.1), enabled=("fanout",))
    (result,) = run_all(inp, params)
    assert result.valid is None and result.counts["totals"]["pending_republish"] == 3


def test_an_event_past_its_republish_is_missing_again():
    """With a 2 s republish, a publish-failed event not applied 10 s later was not healed: missing."""
    inp = _without_publications()
    _drop_event(inp, KEY)
    op0 = next(op for op in inp.ops if op.op_id == "op0")
    inp.faults = [fault("f1", "sidecar@cart", "down", op0.invoke_mono - 1.0, op0.invoke_mono + 0.5)]
    _age(inp, 10)
    assert not pending_republish(inp, RepublishPolicy(interval_seconds=2, min_age_seconds=2))


def test_publishes_rejected_by_an_open_breaker_after_the_heal_are_pending():
    from kugeldrill.checkers.synthetic import transition

    inp = _without_publications()
    for i, op in enumerate(inp.ops):  # one operation every 0.5 s
        op.invoke_mono, op.complete_mono = 1000.0 + i * 0.5, 1000.0 + i * 0.5 + 0.05
    op0 = next(op for op in inp.ops if op.op_id == "op0")
    others = [op for op in inp.ops if op.op_id != "op0"]
    t0 = op0.invoke_mono
    inp.faults = [fault("f1", "sidecar@cart", "down", t0 - 10.0, t0 - 5.0)]  # healed before op0
    inp.breaker_transitions = [transition("cart", t0 - 9.0, "CLOSED", "OPEN"),
                               transition("cart", t0 + 0.5, "OPEN", "HALF_OPEN"),
                               transition("cart", t0 + 0.6, "HALF_OPEN", "CLOSED")]
    _age(inp, 10)
    policy = RepublishPolicy(interval_seconds=300, min_age_seconds=300, max_call_seconds=0.1)
    pending = pending_republish(inp, policy)
    assert "op0" in pending.ops and "breaker" in pending.reason()
    late = [op.op_id for op in others if op.invoke_mono > t0 + 1.0]
    assert late and not set(late) & pending.ops  # in flight only after the breaker closed
