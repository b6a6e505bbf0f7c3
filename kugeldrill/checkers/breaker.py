"""Breaker checker: does each service's circuit breaker follow its declared policy?

Per (service, breaker), from its transitions and the calls it admitted or rejected, with
the fault timeline saying when its Dapr calls were made to fail (checkers.faults):

* not_opened            -- a breaker that should have opened and never did: in record order
                           (the stand-in's events, Kugelpos' log lines), a CLOSED-admitted call
                           failing after the threshold-th failure (+ extra_failures_allowed)
                           with no opening after it; without record order, `threshold` failures in a
                           row and no OPEN within order_slack (a per-request breaker never opens)
* opened_late           -- it opened, but after more failures than `threshold` (+ extra):
                           the breaker's own count at the opening above it, or, where it does
                           not record one, more failures up to the opening (in record order)
* opened_without_failures -- CLOSED -> OPEN with fewer than `threshold` (consecutive, in
                           "consecutive" mode) failures completed before it: the calls recorded
                           before the transition plus the one call that caused it, in record
                           order; failures of calls still in flight that land after the opening
                           do not count; the breaker's own count, where recorded, must agree
* open_too_short        -- left OPEN before reset_seconds (measured from each move to OPEN, so
                           a failed trial must restart the OPEN period)
* open_too_long         -- still OPEN (rejecting calls) past reset_seconds + reset_slack
* half_open_extra_trials -- more than half_open_max_calls calls admitted in one HALF_OPEN
* half_open_refused_trial -- a call rejected in HALF_OPEN before half_open_max_calls trials
                           were admitted in that episode (by admission times, where recorded)
* half_open_wrong_outcome -- a HALF_OPEN episode that ended against its deciding trial: the
                           call recorded right after the transition that ended it (in record
                           order) failed and the breaker CLOSED, or succeeded and it re-OPENed
* passed_while_open     -- a call admitted while OPEN
* invalid_transition    -- anything but CLOSED->OPEN->HALF_OPEN->CLOSED|OPEN
* slow_close / not_closed -- not CLOSED again by heal + reset + close_tolerance (not_closed
                           only when calls kept arriving; with no calls it is unknown)

Unknown (valid None) when: there are no breaker records at all; a service under a failing
fault has no breaker records; the faults that should make calls fail produced no failed
calls anywhere (the checker would be judging nothing); the timeline is missing; or a
breaker stayed OPEN after a heal with no traffic to close it.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from typing import Any

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.faults import Window, failing_windows_by_app, in_windows
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import BreakerCall, BreakerTransition, CheckResult
from kugeldrill.checkers.params import BreakerParams

ALLOWED = {("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED"), ("HALF_OPEN", "OPEN")}
_TIMELINE_CAP = 200


def _t(mono: float, wall: float) -> dict[str, float]:
    return {"mono": round(mono, 3), "wall": round(wall, 3)}


class _BreakerJudge:
    """Checks one breaker's records; adds violations to the shared Examples."""

    def __init__(self, service: str, breaker: str, trans: list[BreakerTransition], calls: list[BreakerCall],
                 windows: list[Window], params: BreakerParams, ex: Examples, unknown: list[str]) -> None:
        self.svc, self.name = service, breaker
        # Record order where every record carries it (one stream per service), else time.
        self.ordered = bool(trans or calls) and all(r.seq is not None for r in (*trans, *calls))
        self.trans = sorted(trans, key=(lambda t: t.seq) if self.ordered else (lambda t: t.mono))  # type: ignore[arg-type,return-value]
        self.calls = sorted(calls, key=(lambda c: c.seq) if self.ordered else (lambda c: c.mono))  # type: ignore[arg-type,return-value]
        self._by_mono = sorted(calls, key=lambda c: c.mono)
        self._monos = [c.mono for c in self._by_mono]  # for bisect in _calls_between
        self.windows = windows
        self.p = params
        self.ex = ex
        self.unknown = unknown
        self.details: dict[str, Any] = {}
        self._late: set[int] = set()  # openings already reported as opened_late

    def _add(self, kind: str, mono: float, wall: float, **extra: Any) -> None:
        ids = in_windows(mono, self.windows, self.p.order_slack_seconds)
        self.ex.add(kind, {"service": self.svc, "breaker": self.name, **_t(mono, wall), "fault_ids": ids or [], **extra})

    def run(self) -> dict[str, Any]:
        self._transitions()
        self._calls_while_open()
        self._half_open()
        self._opens_justified()
        self._open_too_long()
        self._not_opened()
        self._close_after_heal()
        outcomes = Counter(f"{c.state}:{c.outcome}" for c in self.calls)
        self.details.update({
            "transitions": len(self.trans),
            "opens": sum(1 for t in self.trans if t.to_state == "OPEN"),
            "calls": dict(outcomes),
            "timeline": [{"from": t.from_state, "to": t.to_state, "failures": t.failures, **_t(t.mono, t.wall)}
                         for t in self.trans[:_TIMELINE_CAP]],
        })
        return self.details

    def _transitions(self) -> None:
        opens: list[float] = []
        for i, t in enumerate(self.trans):
            if (t.from_state, t.to_state) not in ALLOWED:
                self._add("invalid_transition", t.mono, t.wall, transition=f"{t.from_state}->{t.to_state}")
            if t.to_state == "OPEN" and i + 1 < len(self.trans):
                nxt = self.trans[i + 1]
                dur = nxt.mono - t.mono
                opens.append(dur)
                if dur < self.p.reset_seconds - self.p.reset_slack_seconds:
                    self._add("open_too_short", t.mono, t.wall, open_seconds=round(dur, 3),
                              reset_seconds=self.p.reset_seconds, left_to=nxt.to_state)
        if opens:
            self.details["open_seconds"] = {"min": round(min(opens), 3), "max": round(max(opens), 3)}

    def _calls_while_open(self) -> None:
        for c in self.calls:
            if c.state == "OPEN" and c.outcome != "rejected":
                self._add("passed_while_open", c.mono, c.wall, op=c.op, outcome=c.outcome)

    def _half_open(self) -> None:
        """Exactly `half_open_max_calls` trials per HALF_OPEN episode, and the episode ends as
        its deciding trial says (a failure re-opens, a success closes)."""
        limit = self.p.half_open_max_calls
        by_admission = bool(self.calls) and all(c.admitted_mono is not None for c in self.calls)
        most = 0
        for i, t in enumerate(self.trans):
            if t.to_state != "HALF_OPEN":
                continue
            end = self.trans[i + 1].mono if i + 1 < len(self.trans) else math.inf
            if by_admission:
                # Admission times say which HALF_OPEN episode let each call through, however late it ended.
                episode = [c for c in self.calls if c.state == "HALF_OPEN"
                           and t.mono <= c.admitted_mono <= end]  # type: ignore[operator]
            else:
                episode = [c for c in self._calls_between(t.mono, end + self.p.order_slack_seconds)
                           if c.state == "HALF_OPEN"]
            trials = [c for c in episode if c.outcome != "rejected"]
            most = max(most, len(trials))
            if limit is not None and len(trials) > limit:
                self._add("half_open_extra_trials", t.mono, t.wall, trials=len(trials), allowed=limit,
                          trial_times=[round(c.mono, 3) for c in trials[:10]])
            if limit is not None and by_admission:
                for r in (c for c in episode if c.outcome == "rejected"):
                    admitted = sum(1 for c in trials if c.admitted_mono <= r.admitted_mono)  # type: ignore[operator]
                    if admitted < limit:
                        self._add("half_open_refused_trial", r.mono, r.wall, trials_admitted_before=admitted,
                                  allowed=limit, half_open_mono=round(t.mono, 3))
                        break
            if self.ordered and i + 1 < len(self.trans):
                self._episode_outcome(self.trans[i + 1])
        self.details["max_half_open_trials"] = most

    def _episode_outcome(self, ending: BreakerTransition) -> None:
        """The call recorded right after the transition that ended a HALF_OPEN episode is the
        trial that decided it (the stand-in writes both in one critical section; Kugelpos logs
        the state line before the call's own line): a failed trial must re-open, a good one close."""
        if ending.from_state != "HALF_OPEN":
            return
        nxt = next((c for c in self.calls if c.seq > ending.seq), None)  # type: ignore[operator]
        if nxt is None or nxt.state != "HALF_OPEN" or nxt.outcome == "rejected":
            return
        wanted = "OPEN" if nxt.outcome == "fail" else "CLOSED"
        if ending.to_state != wanted:
            self._add("half_open_wrong_outcome", ending.mono, ending.wall, trial_outcome=nxt.outcome,
                      went_to=ending.to_state, should_go_to=wanted, calls_around=self._around(ending))

    def _calls_between(self, lo: float, hi: float) -> list[BreakerCall]:
        """Calls with lo <= mono <= hi (binary search on the sorted calls)."""
        return self._by_mono[bisect.bisect_left(self._monos, lo):bisect.bisect_right(self._monos, hi)]

    def _around(self, t: BreakerTransition, before: int = 5, after: int = 3) -> list[dict[str, Any]]:
        """The calls recorded just before and after a transition, for the evidence."""
        if self.ordered:
            prior = [c for c in self.calls if c.seq < t.seq][-before:]  # type: ignore[operator]
            later = [c for c in self.calls if c.seq > t.seq][:after]  # type: ignore[operator]
        else:
            i = bisect.bisect_left(self._monos, t.mono)
            prior, later = self._by_mono[max(0, i - before):i], self._by_mono[i:i + after]
        return [{"seq": c.seq, "dt": round(c.mono - t.mono, 3), "state": c.state, "op": c.op, "outcome": c.outcome}
                for c in (*prior, *later)]

    def _failures_before(self, t: BreakerTransition, since: float, since_seq: int) -> int:
        """Failures that completed before the opening `t`, in the breaker's counting mode.

        In record order (the source keeps it) the calls before the transition count, plus the
        one CLOSED-admitted failure recorded right after it: the call that caused it (the
        stand-in writes both in one critical section; Kugelpos logs the WARNING before that
        call's error). Without record order, times decide, with write_slack for the causing
        call's record. Later failures of calls still in flight never count.
        """
        if self.ordered:
            prior = [c for c in self.calls if since_seq < c.seq < t.seq]  # type: ignore[operator]
            after = [c for c in self.calls if c.seq > t.seq][:1]  # type: ignore[operator]
        else:
            prior = [c for c in self._calls_between(since, t.mono) if c.mono < t.mono]
            after = [c for c in self._calls_between(t.mono, t.mono + self.p.write_slack_seconds)][:1]
        closed = [c for c in prior if c.state == "CLOSED" and c.outcome != "rejected"
                  and (c.admitted_mono is None or c.admitted_mono >= since)]  # not from before the last close
        if self.p.mode == "consecutive":
            failures = 0
            for c in closed:
                failures = failures + 1 if c.outcome == "fail" else 0
        else:
            failures = sum(1 for c in closed if c.outcome == "fail")
        if after and after[0].state == "CLOSED" and after[0].outcome == "fail":
            failures += 1
        return failures

    def _opens_justified(self) -> None:
        """Every CLOSED -> OPEN after exactly `threshold` failures: fewer is opened_without_failures,
        more (the breaker's own count, or the calls where it keeps none) is opened_late."""
        has_calls = bool(self.calls)
        limit = self.p.threshold + self.p.extra_failures_allowed
        last_closed, last_closed_seq = -math.inf, -1
        for t in self.trans:
            if t.to_state == "CLOSED":
                last_closed, last_closed_seq = t.mono, (t.seq if t.seq is not None else -1)
            if not (t.from_state == "CLOSED" and t.to_state == "OPEN"):
                continue
            own = t.failures  # the breaker's own count, where the source records it
            if has_calls:
                failures = self._failures_before(t, last_closed, last_closed_seq)
                if failures < self.p.threshold or (own is not None and own < self.p.threshold):
                    self._add("opened_without_failures", t.mono, t.wall, failures=failures,
                              breaker_count=own, threshold=self.p.threshold, mode=self.p.mode,
                              calls_around=self._around(t))
                elif (own is not None and own > limit) or (own is None and self.ordered and failures > limit):
                    # Without record order, in-flight failures may land before the opening's record.
                    self._late.add(id(t))
                    self._add("opened_late", t.mono, t.wall, failures=failures, breaker_count=own,
                              threshold=self.p.threshold, mode=self.p.mode, calls_around=self._around(t))
            elif own is not None and own < self.p.threshold:
                self._add("opened_without_failures", t.mono, t.wall, failures=None, breaker_count=own,
                          threshold=self.p.threshold, note="no call records; the breaker's own count")
            elif own is not None and own > limit:
                self._late.add(id(t))
                self._add("opened_late", t.mono, t.wall, failures=None, breaker_count=own,
                          threshold=self.p.threshold, note="no call records; the breaker's own count")
            elif in_windows(t.mono, self.windows, self.p.order_slack_seconds) is None:
                # No call records: fall back to the timeline (no failing fault -> no reason to open).
                self._add("opened_without_failures", t.mono, t.wall, failures=None,
                          threshold=self.p.threshold, note="no call records; no failing fault at that time")

    def _open_too_long(self) -> None:
        """A call rejected while OPEN after reset_seconds: the breaker should have let a trial through."""
        flagged: set[int] = set()
        for c in self.calls:
            if c.state != "OPEN" or c.outcome != "rejected":
                continue
            when = c.admitted_mono if c.admitted_mono is not None else c.mono
            slack = self.p.reset_slack_seconds + (0.0 if c.admitted_mono is not None else self.p.write_slack_seconds)
            # The breaker's state at the rejection is its last transition before it: a rejection
            # after a move to HALF_OPEN (its trial in flight) is not an OPEN one, whatever it is labelled.
            if self.ordered:
                last = next((t for t in reversed(self.trans) if t.seq < c.seq), None)  # type: ignore[operator]
            else:
                last = next((t for t in reversed(self.trans) if t.mono <= when), None)
            opener = last if last is not None and last.to_state == "OPEN" else None
            if opener is None or id(opener) in flagged:
                continue
            age = when - opener.mono
            if age > self.p.reset_seconds + slack:
                flagged.add(id(opener))
                i = self.trans.index(opener)
                end = self.trans[i + 1].mono if i + 1 < len(self.trans) else math.inf
                rejected = [x for x in self.calls if x.state == "OPEN" and x.outcome == "rejected"
                            and opener.mono + self.p.reset_seconds < (x.admitted_mono or x.mono) <= end]
                self._add("open_too_long", opener.mono, opener.wall, open_seconds_at_rejection=round(age, 3),
                          reset_seconds=self.p.reset_seconds, rejected_after_reset=len(rejected),
                          first_rejection_mono=round(when, 3), calls_around=self._around(opener))

    def _not_opened(self) -> None:
        """Replay the records as the breaker saw them and flag a run of CLOSED failures that did
        not open it.

        In record order: a CLOSED-admitted failure after the threshold-th one (+ extra) while
        still CLOSED — no slack: a correct breaker's opening is recorded before its causing
        call's record (a later opening is reported here unless it was reported late). Where
        admission times are recorded, a call admitted before the breaker last closed is not
        counted (its result no longer counts for the breaker either), and one admitted as
        CLOSED *after* an opening was let through by a breaker that did not open (several
        instances under one name: a breaker per request) and counts. Without record order
        (times only): the threshold-th failure in a row must be followed by an opening within
        order_slack (its record may be written just after the call's)."""
        if self.ordered:
            records: list[Any] = sorted((*self.trans, *self.calls), key=lambda r: r.seq)
        else:
            records = [r for _, _, r in sorted([(t.mono, 0, t) for t in self.trans]
                                               + [(c.mono, 1, c) for c in self.calls], key=lambda e: (e[0], e[1]))]
        open_times = [t.mono for t in self.trans if t.to_state == "OPEN"]
        limit = self.p.threshold + self.p.extra_failures_allowed
        state, run, reported, first_fail, closed_at, moved_at = "CLOSED", 0, False, None, -math.inf, -math.inf
        for rec in records:
            if isinstance(rec, BreakerTransition):
                state, moved_at = rec.to_state, rec.mono
                if state == "CLOSED":
                    run, reported, first_fail, closed_at = 0, False, None, rec.mono
                continue
            if rec.state != "CLOSED" or rec.outcome == "rejected":
                continue
            admitted_after_move = self.ordered and rec.admitted_mono is not None and rec.admitted_mono > moved_at
            if state != "CLOSED" and not admitted_after_move:
                continue  # admitted before the opening, recorded after it
            if self.ordered and rec.admitted_mono is not None and rec.admitted_mono < closed_at:
                continue
            if rec.outcome == "ok":
                if self.p.mode == "consecutive":
                    run, first_fail = 0, None
                continue
            run += 1
            first_fail = first_fail if first_fail is not None else rec
            if reported:
                continue
            if self.ordered:
                if run <= limit:
                    continue
                reported = True
                later = next((t for t in self.trans if t.seq > rec.seq and t.to_state == "OPEN"), None)
                if later is not None and id(later) in self._late:
                    continue  # it opened later, and that opening is reported as opened_late
                note = "a failure after the threshold-th, recorded while still CLOSED"
            else:
                if run < limit or any(rec.mono < o <= rec.mono + self.p.order_slack_seconds for o in open_times):
                    continue
                reported, note = True, "no opening within order_slack of the threshold-th failure (times only)"
            self._add("not_opened", rec.mono, rec.wall, failures=run, threshold=self.p.threshold,
                      first_failure=_t(first_fail.mono, first_fail.wall), op=rec.op, note=note)
        self.details["failures_in_closed_run_at_end"] = run

    def _state_at(self, mono: float) -> str:
        state = "CLOSED"
        for t in self.trans:
            if t.mono > mono:
                break
            state = t.to_state
        return state

    def _close_after_heal(self) -> None:
        delays: list[float] = []
        for start, end, ids in self.windows:
            if end is None:
                continue
            # A breaker opened by calls still in flight at the heal counts as open at the heal.
            probe = end + self.p.order_slack_seconds
            if self._state_at(probe) == "CLOSED":
                continue
            deadline = end + self.p.reset_seconds + self.p.close_tolerance_seconds
            closed = next((t for t in self.trans if t.mono > end and t.to_state == "CLOSED"
                           and self._state_at(t.mono + 1e-9) == "CLOSED"), None)
            if closed is not None:
                delay = closed.mono - end
                delays.append(delay)
                if closed.mono > deadline:
                    self._add("slow_close", closed.mono, closed.wall, healed_mono=round(end, 3),
                              close_seconds=round(delay, 3),
                              allowed_seconds=self.p.reset_seconds + self.p.close_tolerance_seconds, heal_fault_ids=ids)
                continue
            later = [c for c in self.calls if c.mono > deadline]
            if later:
                self._add("not_closed", deadline, later[0].wall, healed_mono=round(end, 3), heal_fault_ids=ids,
                          calls_after_deadline=len(later), state_at_end=self._state_at(math.inf))
            elif self.p.require_close_after_heal:
                self.unknown.append(f"{self.svc}/{self.name} stayed {self._state_at(math.inf)} after the heal at "
                                    f"mono {end:.3f} with no calls to close it")
        if delays:
            self.details["close_after_heal_seconds"] = [round(d, 3) for d in delays]


def check_breakers(inputs: CheckInputs, params: BreakerParams | None = None) -> CheckResult:
    """Judge every breaker in `inputs` against `params` (contracts §8)."""
    p = params or BreakerParams()
    ex = Examples(p.max_examples)
    unknown: list[str] = []
    if not inputs.breaker_transitions and not inputs.breaker_calls:
        reason = inputs.missing.get("breaker_transitions") or "no breaker transitions or calls were recorded"
        return CheckResult("breaker", None, f"unknown: {reason}", counts={"breakers": 0},
                           details={"unknown": [reason], "provenance": inputs.provenance()})
    if "faults" in inputs.missing:
        unknown.append(f"fault timeline missing ({inputs.missing['faults']}): close-after-heal not checked")
    groups: dict[tuple[str, str], tuple[list[BreakerTransition], list[BreakerCall]]] = defaultdict(lambda: ([], []))
    for t in inputs.breaker_transitions:
        groups[(t.service, t.breaker)][0].append(t)
    for c in inputs.breaker_calls:
        groups[(c.service, c.breaker)][1].append(c)
    services_judged = sorted({svc for svc, _ in groups})
    # Where a failure is possible (a long pause too): judged windows. Where one is certain:
    # the windows whose lack of failed calls makes the verdict unknown.
    windows = failing_windows_by_app(inputs.faults, p.client_timeout_seconds, apps=services_judged, possible=True)
    certain = failing_windows_by_app(inputs.faults, p.client_timeout_seconds, apps=services_judged)

    per_breaker: dict[str, Any] = {}
    for (svc, name), (trans, calls) in sorted(groups.items()):
        judge = _BreakerJudge(svc, name, trans, calls, windows.get(svc, []), p, ex, unknown)
        d = judge.run()
        per_breaker[f"{svc}/{name}"] = d

    # Faults that should have made calls fail: did they, and do we see those services at all?
    services = {svc for svc, _ in groups}
    window_report = []

    def failed_calls(app: str, start: float, end: float | None) -> int:
        return sum(1 for c in inputs.breaker_calls if c.service == app and c.outcome in ("fail", "rejected")
                   and start <= c.mono <= (end if end is not None else math.inf) + p.order_slack_seconds)

    failed_in_window = sum(failed_calls(app, start, end) for app, wins in certain.items() for start, end, _ in wins)
    for app, wins in sorted(windows.items()):
        for start, end, ids in wins:
            window_report.append({"service": app, "fault_ids": ids, "start_mono": round(start, 3),
                                  "end_mono": None if end is None else round(end, 3),
                                  "failed_or_rejected_calls": failed_calls(app, start, end)})
        if app not in services and app in certain:
            unknown.append(f"service {app} was under a failing fault but has no breaker records")
    if certain and inputs.breaker_calls and failed_in_window == 0:
        unknown.append("the faults that should make calls fail produced no failed calls")

    counts: dict[str, Any] = {
        "breakers": len(groups),
        "transitions": len(inputs.breaker_transitions),
        "opens": sum(1 for t in inputs.breaker_transitions if t.to_state == "OPEN"),
        "calls": len(inputs.breaker_calls),
        "rejected": sum(1 for c in inputs.breaker_calls if c.outcome == "rejected"),
        "failing_fault_windows": sum(len(w) for w in windows.values()),
        "violations": dict(ex.counts),
    }
    if ex:
        valid, summary = False, "breaker violations: " + ", ".join(f"{k} {v}" for k, v in sorted(ex.counts.items()))
    elif unknown:
        valid, summary = None, "unknown: " + unknown[0]
    else:
        valid, summary = True, f"{len(groups)} breaker(s) followed the policy ({counts['opens']} opens)"
    return CheckResult("breaker", valid, summary, counts=counts, examples=ex.items,
                       details={"breakers": per_breaker, "fault_windows": window_report, "unknown": unknown,
                                "params": {k: getattr(p, k) for k in p.__slots__},
                                "provenance": inputs.provenance()})
