"""Fan-out checker: exactly once, missing, duplicated, unexpected, skipped/recovered, history paths, unknown."""

from __future__ import annotations

import time

from kugeldrill.checkers import CheckParams, combine, run_all
from kugeldrill.checkers.fanout import check_fanout
from kugeldrill.checkers.inputs import FIELDS, CheckInputs
from kugeldrill.checkers.keys import cash_key, tran_key
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_TRANLOG, Application, Op, OutboxEntry, Publication
from kugeldrill.checkers.params import FanoutPolicy
from kugeldrill.checkers.pending import RepublishPolicy, pending_republish
from kugeldrill.checkers.synthetic import full_fanout_run


def _drop(inp: CheckInputs, sub: str, eid: str) -> None:
    inp.applications = [a for a in inp.applications if not (a.subscriber == sub and a.event_id == eid)]
    inp.cache.clear()


def test_full_fanout_passes_and_matrix_is_complete():
    r = check_fanout(full_fanout_run(100))
    assert r.valid is True, r.summary
    m = r.counts["matrix"]
    assert m[TOPIC_TRANLOG]["stock"]["once"] == 90 and m[TOPIC_CASHLOG]["journal"]["once"] == 10
    assert r.counts["totals"]["missing"] == 0
    assert r.counts["history"]["ok_with_event"] == 100


def test_missing_subscriber_fails_with_event():
    inp = full_fanout_run(20)
    _drop(inp, "journal", "e00000003")
    r = check_fanout(inp)
    assert r.valid is False
    ex = r.examples["missing"][0]
    assert ex["subscriber"] == "journal" and ex["event_id"] == "e00000003" and ex["key"] == tran_key("T1", "S1", 4, 1)
    assert r.counts["matrix"][TOPIC_TRANLOG]["journal"]["missing"] == 1


def test_duplicated_counted_but_judged_by_duplicate_checker():
    inp = full_fanout_run(20)
    a = inp.applications[0]
    inp.applications.append(Application(a.subscriber, a.event_id, a.topic, a.key, a.mono + 5, a.wall + 5))
    r = check_fanout(inp)
    assert r.valid is True and r.counts["totals"]["duplicated"] == 1
    assert check_fanout(inp, FanoutPolicy(fail_on_duplicates=True)).valid is False


def test_unexpected_subscriber_and_never_published():
    inp = full_fanout_run(10)
    cash = next(a for a in inp.applications if a.topic == TOPIC_CASHLOG)
    inp.applications.append(Application("stock", cash.event_id, TOPIC_CASHLOG, cash.key, 1.0, 1.0))
    inp.applications.append(Application("report", "ghost", TOPIC_TRANLOG, tran_key("T1", "S1", 9, 9), 1.0, 1.0))
    r = check_fanout(inp)
    assert r.valid is False
    whys = sorted(e["why"] for e in r.examples["unexpected"])
    assert whys == ["applied_not_published", "unexpected_subscriber"]


def _never_published_and_recovered() -> CheckInputs:
    """op0's event rejected while OPEN and never applied; op1's first publish failed and a
    republish delivered it."""
    inp = full_fanout_run(10)
    p0 = inp.publications[0]
    p0.outcome = "rejected_open"
    for sub in ("report", "journal", "stock"):
        _drop(inp, sub, p0.event_id)
    p1 = inp.publications[1]
    p1.outcome = "failed"
    inp.publications.append(Publication(p1.publisher, p1.event_id, p1.topic, p1.key, p1.mono + 300, p1.wall + 300,
                                        "ok", "republish"))
    return inp


def test_an_ok_operation_whose_event_was_never_published_is_missing_once_its_republish_is_past_due():
    """The publisher recorded the event, so it owes every subscriber: its absence is pending
    while the republish job may still send it, and a loss after that (or with no job at all)."""
    inp = _never_published_and_recovered()
    r = check_fanout(inp)  # no republish job owes it
    assert r.valid is False and r.counts["failures"] == {"missing": 3}
    cell = r.counts["matrix"][TOPIC_TRANLOG]["report"]
    assert cell["skipped"] == 1 and cell["missing"] == 1 and cell["recovered"] == 1
    assert r.examples["missing"][0]["never_published"] == "rejected while OPEN"
    p0 = inp.publications[0]
    p0.wall = time.time() - 5  # first attempted 5 s ago; the job runs every 60 s
    owed = pending_republish(inp, RepublishPolicy(interval_seconds=60))
    assert owed.events == {p0.event_id}
    r = check_fanout(inp, pending=owed)
    assert r.valid is None and "republish" in r.summary and "missing" not in r.examples
    assert r.counts["totals"]["pending_republish"] == 3
    p0.wall = time.time() - 120  # its republish was due a minute ago
    past = pending_republish(inp, RepublishPolicy(interval_seconds=60))
    assert not past.events and check_fanout(inp, pending=past).counts["failures"] == {"missing": 3}


def test_a_republished_event_is_recovered():
    inp = _never_published_and_recovered()
    inp.publications[0].outcome = "ok"
    inp.applications += [Application(s, inp.publications[0].event_id, TOPIC_TRANLOG, inp.publications[0].key, 9.0, 9.0)
                         for s in ("report", "journal", "stock")]
    inp.cache.clear()
    r = check_fanout(inp)
    assert r.valid is True, r.summary
    assert r.counts["matrix"][TOPIC_TRANLOG]["report"]["recovered"] == 1


def test_ok_operation_without_publication_is_missing_publication():
    inp = full_fanout_run(10)
    inp.ops.append(Op("lost", "sale", "ok", "w1", "u1", 5.0, 5.0, 5.1, 5.1,
                      {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "transaction_no": 99}))
    r = check_fanout(inp)
    assert r.valid is False and r.examples["missing_publication"][0]["op"] == "lost"


def test_fail_op_that_was_applied_and_info_ops_counted():
    inp = full_fanout_run(10)
    inp.ops[0].outcome = "fail"
    inp.ops[1].outcome = "info"
    inp.ops.append(Op("i2", "sale", "info", "w1", "u1", 5.0, 5.0, None, None,
                      {"tenant_id": "T1", "store_code": "S1", "terminal_no": 3, "transaction_no": 99}))
    r = check_fanout(inp)
    assert r.valid is False and r.examples["fail_op_applied"][0]["op"] == "op0"
    assert r.counts["history"]["info_present"] == 1 and r.counts["history"]["info_absent"] == 1


def test_cash_ops_found_by_token_in_description():
    inp = full_fanout_run(10)  # op9 is a cash_in with token kd9
    r = check_fanout(inp)
    assert r.counts["history"]["ok_with_event"] == 10
    inp.ops[9].value["cash_token"] = "nope"
    assert check_fanout(inp).examples["missing_publication"][0]["op"] == "op9"


def test_history_only_matching_by_key_when_no_publisher_records():
    inp = full_fanout_run(10)
    inp.publications = []
    inp.mark_missing("publications", "not recorded")
    assert check_fanout(inp).valid is True
    inp.applications = [a for a in inp.applications if not (a.subscriber == "stock" and a.key == tran_key("T1", "S1", 1, 1))]
    inp.cache.clear()
    r = check_fanout(inp)
    assert r.valid is False and r.examples["missing"][0]["op"] == "op0"


def test_outbox_as_event_source():
    inp = full_fanout_run(4)
    inp.outbox = [OutboxEntry(p.publisher, p.event_id, p.topic, p.key, "delivered") for p in inp.publications]
    inp.publications = []
    r = check_fanout(inp)
    assert r.valid is True and r.counts["events_source"] == "outbox"


def test_nothing_to_judge_is_unknown():
    inp = CheckInputs()
    for name in FIELDS:
        inp.mark(name, "test")
    assert check_fanout(inp).valid is None
    inp2 = CheckInputs()
    inp2.mark_missing("applications", "no events")
    assert check_fanout(inp2).valid is None


def test_published_but_no_subscriber_applied_anything_fails():
    inp = full_fanout_run(5)
    inp.applications = []
    assert check_fanout(inp).valid is False


def test_run_all_and_combine():
    results = run_all(full_fanout_run(30), CheckParams())
    assert [r.checker for r in results] == ["breaker", "duplicates", "fanout", "outcomes"]
    # No breaker records (nor business state) in this synthetic run: those verdicts are unknown, so overall unknown.
    assert results[0].valid is None and results[1].valid is True and results[2].valid is True
    assert results[3].valid is None and "not read" in results[3].summary
    assert combine(results) is None
    assert combine(results[1:3]) is True
    assert all(isinstance(r.to_dict()["counts"], dict) for r in results)


def test_cash_key_matches_description_words():
    k = cash_key("T1", "S1", 2, "2026", "Cash In kd-42")
    inp = CheckInputs(publications=[Publication("terminal", "c1", TOPIC_CASHLOG, k, 1.0, 1.0, "ok")],
                      applications=[Application(s, "c1", TOPIC_CASHLOG, k, 2.0, 2.0) for s in ("report", "journal")],
                      ops=[Op("o", "cash_in", "ok", "w", "u", 0.5, 0.5, 0.6, 0.6,
                              {"tenant_id": "T1", "store_code": "S1", "terminal_no": 2, "cash_token": "kd-42"})])
    for name in FIELDS:
        inp.mark(name, "test")
    r = check_fanout(inp)
    assert r.valid is True and r.counts["history"]["ok_with_event"] == 1
