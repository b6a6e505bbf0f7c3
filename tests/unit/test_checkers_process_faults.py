"""Process faults in the checkers: which windows make calls fail (or may), which duplicates the
seed tolerates around a Redis restart that lost its markers or a subscriber killed between
effect and mark, what the timeline adapter reads from a process fault's record, and the
recovery counts — all on synthetic records."""

from __future__ import annotations

from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.adapters.timeline import parse_timeline
from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.duplicates import check_duplicates
from kugeldrill.checkers.faults import EVERY_APP, affected_app, failing_windows_by_app, makes_calls_fail, \
    may_make_calls_fail
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_TRANLOG, Application, MarkWrite, Publication
from kugeldrill.checkers.recovery import process_fault_recovery
from kugeldrill.checkers.synthetic import call, fault

KEY = tran_key("T1", "S1", 1, 7)


def pfault(fid: str, process: str, kind: str, start: float, end: float | None, *, kills: list[float] | None = None,
           state_lost: bool | None = None) -> AppliedFault:
    return fault(fid, process, kind, start, end, kills=tuple(kills or ()), state_lost=state_lost)


def _app(sub: str, eid: str, mono: float) -> Application:
    return Application(sub, eid, TOPIC_TRANLOG, KEY, mono, 1_700_000_000.0 + mono, 1, "miss")


def _inputs(apps=(), faults=(), pubs=()) -> CheckInputs:
    inp = CheckInputs(applications=list(apps), faults=list(faults), publications=list(pubs))
    for name in ("applications", "faults", "publications"):
        inp.mark(name, "test")
    return inp


def test_which_process_faults_make_calls_fail() -> None:
    assert makes_calls_fail(pfault("a", "sidecar@cart", "kill", 0, 5), 5.0)
    assert makes_calls_fail(pfault("a", "redis", "restart", 0, 5), 5.0)
    assert not makes_calls_fail(pfault("a", "app@cart", "kill", 0, 5), 5.0)  # a dead app makes no calls
    long_pause, short_pause = pfault("a", "sidecar@cart", "pause", 0, 8), pfault("a", "sidecar@cart", "pause", 0, 2)
    assert not makes_calls_fail(long_pause, 5.0)  # a retry after SIGCONT may still succeed
    assert may_make_calls_fail(long_pause, 5.0) and not may_make_calls_fail(short_pause, 5.0)
    assert affected_app(pfault("a", "redis", "kill", 0, 5)) == EVERY_APP
    assert affected_app(pfault("a", "sidecar@cart", "kill", 0, 5)) == "cart"
    process = pfault("a", "app@journal", "kill", 0, 5)
    assert (process.app, process.link_kind, process.process_kind, process.subject) == ("journal", "", "app", "app@journal")


def test_a_redis_process_fault_is_a_window_for_every_judged_app() -> None:
    windows = failing_windows_by_app([pfault("r", "redis", "kill", 10, 15)], 5.0, apps=["cart", "report"])
    assert windows == {"cart": [(10, 15, ["r"])], "report": [(10, 15, ["r"])]}
    assert failing_windows_by_app([pfault("r", "redis", "kill", 10, 15)], 5.0) == {}


def test_a_long_pause_does_not_make_the_breaker_verdict_unknown() -> None:
    inp = _inputs(faults=[pfault("p", "sidecar@cart", "pause", 10.0, 18.0)])
    inp.breaker_calls = [call("cart", 9.0, "CLOSED", "ok"), call("cart", 15.0, "CLOSED", "ok"),
                         call("cart", 20.0, "CLOSED", "ok")]
    inp.mark("breaker_calls", "test")
    result = check_breakers(inp)
    assert result.valid is True, result.summary
    killed = _inputs(faults=[pfault("k", "sidecar@cart", "kill", 10.0, 18.0)])
    killed.breaker_calls = list(inp.breaker_calls)
    killed.mark("breaker_calls", "test")
    unknown = check_breakers(killed)
    assert unknown.valid is None and "produced no failed calls" in unknown.summary


def _marked(inp: CheckInputs, *marks: tuple[str, str, float, bool]) -> CheckInputs:
    """Give `inp` the subscribers' mark writes (subscriber, event, mono, ok): the per-event evidence."""
    inp.mark_writes = [MarkWrite(sub, eid, mono, 1_700_000_000.0 + mono, ok) for sub, eid, mono, ok in marks]
    inp.mark("mark_writes", "test")
    return inp


def test_duplicate_across_a_redis_restart_that_lost_the_markers_is_tolerated() -> None:
    apps = [_app("stock", "e1", 10.0), _app("stock", "e1", 150.0)]
    # Each first application's mark is written 0.1 s after it (then, maybe, the store lost it).

    def judge(restart: AppliedFault, apps=apps):
        return check_duplicates(_marked(_inputs(apps, [restart]), ("stock", "e1", apps[0].mono + 0.1, True)))

    lost = judge(pfault("rr", "redis", "restart", 100.0, 103.0, state_lost=True))
    assert lost.valid is True and lost.counts["tolerated_by"] == {"store_lost": 1}
    assert lost.details["tolerated"][0]["evidence"][0]["fault"] == "rr"
    kept = judge(pfault("rr", "redis", "restart", 100.0, 103.0, state_lost=False))
    assert kept.valid is False  # the markers survived (AOF): nothing explains a second application
    unmeasured = judge(pfault("rr", "redis", "restart", 100.0, 103.0))
    assert unmeasured.valid is None and "not measured" in unmeasured.summary  # not measured: unknown, not a pass
    after = judge(pfault("rr", "redis", "restart", 100.0, 103.0, state_lost=True),
                  [_app("stock", "e1", 120.0), _app("stock", "e1", 150.0)])
    assert after.valid is False  # both applications after the loss: the loss explains neither


def test_a_fault_window_alone_tolerates_nothing() -> None:
    """A Redis pause around the second application, but its check reached the store and the
    first one's mark was written: the duplicate is a violation, whatever the timeline."""
    apps = [_app("journal", "e1", 10.0), _app("journal", "e1", 101.0)]
    r = check_duplicates(_marked(_inputs(apps, [pfault("p", "redis", "pause", 100.0, 108.0)]),
                                 ("journal", "e1", 10.1, True)))
    assert r.valid is False and r.examples["duplicate"][0]["unexplained"]["applied_mono"] == 101.0


def test_duplicate_of_a_subscriber_killed_between_effect_and_mark_is_tolerated() -> None:
    crash = pfault("crash", "app@stock", "kill", 50.0, 70.0, kills=[50.0, 60.0])
    tolerated = check_duplicates(_marked(_inputs([_app("stock", "e1", 59.8), _app("stock", "e1", 64.0)], [crash]),
                                         ("stock", "e1", 64.1, True)))
    assert tolerated.valid is True and tolerated.counts["tolerated_by"] == {"killed_before_mark": 1}
    evidence = tolerated.details["tolerated"][0]["evidence"][0]
    assert (evidence["applied_mono"], evidence["kill_mono"]) == (59.8, 60.0) and "fault crash" in evidence["killed_by"]
    # Applied 10 s before the kill, its mark written a moment later: the kill explains nothing.
    marked_before = check_duplicates(_marked(_inputs([_app("stock", "e1", 40.0), _app("stock", "e1", 64.0)], [crash]),
                                             ("stock", "e1", 40.1, True)))
    assert marked_before.valid is False
    no_kill_between = check_duplicates(_marked(_inputs([_app("stock", "e1", 61.0), _app("stock", "e1", 64.0)],
                                                       [crash])))
    assert no_kill_between.valid is False
    other = check_duplicates(_marked(_inputs([_app("report", "e1", 59.8), _app("report", "e1", 64.0)], [crash])))
    assert other.valid is False  # report was not killed
    # A source that does not record mark writes cannot say whether the mark beat the kill.
    unknown = check_duplicates(_inputs([_app("stock", "e1", 59.8), _app("stock", "e1", 64.0)], [crash]))
    assert unknown.valid is None and "no record of its mark" in unknown.summary


def test_timeline_adapter_reads_process_faults() -> None:
    doc = {"faults": [{
        "id": "rr", "link": None, "proxy": None, "process": "redis", "kind": "restart", "params": {"grace": 5},
        "applied_mono": 100.0, "applied_wall": 1.0, "healed_mono": 103.0, "healed_wall": 4.0, "status": "healed",
        "error": None,
        "events": [{"action": "stop", "mono": 100.0, "outcome": "escalated", "seconds": 5.2, "pids_before": [1]},
                   {"action": "start", "mono": 103.0, "ready_mono": 103.4, "pids_after": [2]},
                   {"action": "kill", "mono": 104.0, "error": "gone"},
                   {"action": "kill", "mono": 106.0, "seconds": 0.3, "pids_before": [2]}],
        "observations": [{"phase": "before", "data": {"markers_total": 40}},
                         {"phase": "after", "data": {"markers_total": 3, "survived": {"markers_survived": 0}}}],
    }, {"id": "x", "process": "app@cart", "kind": "kill", "applied_mono": None, "status": "failed", "error": "boom"}]}
    notes: list[str] = []
    unapplied: list = []
    (w,) = parse_timeline(doc, notes, unapplied)
    assert w.process == "redis" and w.link is None and w.end_mono == 103.4  # until it answered again
    assert w.kills == [105.2, 106.3]  # when each returned (the process gone); the failed kill is not one
    assert w.state_lost is True and [e.action for e in w.events] == ["stop", "start", "kill", "kill"]
    assert unapplied[0].process == "app@cart" and "app@cart was not applied: boom" in notes[0]


def state_lost(record: dict) -> bool | None:
    return AppliedFault.from_record({"id": "f", "at": 1, "for": 2, **record}).state_lost


def test_state_lost_needs_a_survival_reading() -> None:
    base = {"process": "redis", "kind": "kill"}
    obs = [{"phase": "before", "data": {"markers_total": 5}}, {"phase": "after", "data": {"markers_total": 5}}]
    assert state_lost({**base, "observations": obs}) is None
    kept = [obs[0], {"phase": "after", "data": {"survived": {"markers_survived": 5}}}]
    assert state_lost({**base, "observations": kept}) is False
    assert state_lost({"process": "redis", "kind": "pause", "observations": kept}) is None


def test_recovery_counts_follow_the_events_in_flight_at_each_kill() -> None:
    pubs = [Publication("cart", f"e{i}", TOPIC_TRANLOG, KEY, 10.0 + i, 0.0, "ok") for i in range(4)]
    pubs.append(Publication("cart", "e2", TOPIC_TRANLOG, KEY, 40.0, 0.0, "ok", "republish"))
    apps = [_app(s, "e0", 11.0) for s in ("report", "journal", "stock")]  # done before the fault
    apps += [_app("report", "e1", 11.5), _app("stock", "e1", 11.5), _app("journal", "e1", 25.0)]  # journal late
    apps += [_app("report", "e2", 12.5), _app("stock", "e2", 12.5)]  # journal never
    apps += [_app(s, "e3", 13.5) for s in ("report", "journal", "stock")]  # published after the first kill
    f = pfault("crash", "app@journal", "kill", 11.2, 20.0, kills=[11.2, 15.0])
    (r,) = process_fault_recovery(_inputs(apps, [f], pubs))
    # journal's pairs only: e1 (in flight at the first kill), e2 (published 12.0, not applied at the
    # second kill); e0 was done, e3 applied before the second kill.
    assert r["in_flight"] == 2
    assert (r["recovered"], r["recovered_after_fault_end"], r["lost"]) == (1, 1, 1)
    assert r["republished_after"] == 1 and r["kills"] == 2
    (everyone,) = process_fault_recovery(_inputs(apps, [pfault("r", "redis", "kill", 11.2, 20.0, kills=[11.2])], pubs))
    assert everyone["in_flight"] == 3  # e1 for report, stock and journal


def test_duplicate_of_a_subscriber_that_crashed_by_itself_is_tolerated_like_a_kill() -> None:
    from kugeldrill.checkers.model import ProcessCrash

    apps = [_app("stock", "e1", 59.8), _app("stock", "e1", 64.0)]
    crashed = _marked(_inputs(apps, []))
    crashed.crashes = [ProcessCrash("stock", 60.0, 1060.0, "crash_before_effect_every")]
    r = check_duplicates(crashed)
    assert r.valid is True
    assert "crash of stock: crash_before_effect_every" in r.details["tolerated"][0]["evidence"][0]["killed_by"]
    other = _marked(_inputs(apps, []))
    other.crashes = [ProcessCrash("journal", 60.0, 1060.0)]  # another subscriber's crash explains nothing
    assert check_duplicates(other).valid is False


def _link_fault(fid: str, link: str, kind: str, start: float, end: float) -> AppliedFault:
    return fault(fid, link, kind, start, end)


def test_a_redis_link_outage_shorter_than_the_client_timeout_only_may_make_calls_fail() -> None:
    """The sidecar between the app and Redis may ride out a short outage (its Redis client
    retries), so no failed call under it is not "judging nothing"; a longer one must fail calls."""
    short = _link_fault("b", "redis@cart", "blackhole", 10.0, 12.2)
    assert not makes_calls_fail(short, 5.0) and may_make_calls_fail(short, 5.0)
    assert makes_calls_fail(_link_fault("d", "redis@cart", "down", 10.0, 16.0), 5.0)
    held = _link_fault("s", "sidecar@cart", "blackhole", 10.0, 13.3)  # the bytes are held, then delivered
    assert not makes_calls_fail(held, 5.0) and may_make_calls_fail(held, 5.0)
    assert makes_calls_fail(_link_fault("s", "sidecar@cart", "blackhole", 10.0, 16.0), 5.0)
    assert makes_calls_fail(_link_fault("s", "sidecar@cart", "down", 10.0, 11.0), 5.0)  # refused at once
    calls = [call("cart", 9.0, "CLOSED", "ok"), call("cart", 11.0, "CLOSED", "ok"), call("cart", 20.0, "CLOSED", "ok")]
    absorbed = _inputs(faults=[short])
    absorbed.breaker_calls = list(calls)
    absorbed.mark("breaker_calls", "test")
    assert check_breakers(absorbed).valid is True
    long = _inputs(faults=[_link_fault("d", "redis@cart", "down", 10.0, 18.0)])
    long.breaker_calls = list(calls)
    long.mark("breaker_calls", "test")
    assert check_breakers(long).valid is None  # 8 s without Redis and no call failed: nothing was judged
