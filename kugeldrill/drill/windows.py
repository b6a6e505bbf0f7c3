"""Did each fault window hold enough operations to judge what the fault did?

A cut that no publish crossed proves nothing: the breaker checker has nothing to count, the
fan-out checker nothing to lose. On a slow deployment (the real Kugelpos on two cores takes
seconds per request) a window sized for a fast one can hold none, and the drill would pass
on no evidence. A scenario says the minimum it is designed for
(`expect.fault_windows.min_publishes`); a window that held fewer makes the expectation
*unknown*, naming the window and its count — never a pass.

Which publishes a fault acts on: those of the app it hits (a publisher's own; for a
subscriber, those of the publishers of its topics; for a caller's HTTP link `http@a>b`, a's;
for Redis or an app that is neither, all of them), counted where the publisher recorded the
attempt (the stand-in's publish events, or Kugelpos' "Successfully published" / "Failed to
publish" lines) inside [applied, healed]. A publish that failed late in the window is logged
after its attempts (~3 s on Kugelpos) and may fall past the heal: the count errs low.
"""

from __future__ import annotations

from kugeldrill.checkers.faults import EVERY_APP, affected_app
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.model import EXPECTED_SUBSCRIBERS, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG
from kugeldrill.reports.summary import ExpectationResult
from kugeldrill.scenario_schema import FaultWindowsExpect

PUBLISHER_TOPICS = {"cart": (TOPIC_TRANLOG,), "terminal": (TOPIC_CASHLOG, TOPIC_OPENCLOSELOG)}


def relevant_publishers(fault: AppliedFault) -> tuple[str, ...]:
    """The publishers whose publishes `fault` acts on."""
    app = affected_app(fault).split(">", 1)[0]  # http@<caller>><callee>: the caller's
    if app in PUBLISHER_TOPICS:
        return (app,)
    if app != EVERY_APP:
        topics = {t for t, subs in EXPECTED_SUBSCRIBERS.items() if app in subs}
        if topics:
            return tuple(p for p, own in PUBLISHER_TOPICS.items() if topics & set(own))
    return tuple(PUBLISHER_TOPICS)


def publish_times(inputs: CheckInputs) -> tuple[list[tuple[str, float]], str] | None:
    """(publisher, mono) of every publish attempt, and the source; None when none was recorded."""
    if inputs.has("publications"):
        return [(p.publisher, p.mono) for p in inputs.publications], "publish records"
    if inputs.has("breaker_calls"):
        return ([(c.service, c.mono) for c in inputs.breaker_calls if c.op == "publish"],
                "the publishers' breaker calls (publish lines of their logs)")
    return None


def _count(attempts: list[tuple[str, float]], pubs: tuple[str, ...], start: float, end: float) -> int:
    return sum(1 for who, mono in attempts if who in pubs and start <= mono <= end)


def judge_fault_windows(spec: FaultWindowsExpect, inputs: CheckInputs) -> list[ExpectationResult]:
    """`fault_windows.min_publishes` (inside each window) and `fault_windows.min_publishes_after` (from
    each heal to the load's last operation): passed, or unknown naming each window that held too few."""
    wanted = [(name, n) for name, n in (("min_publishes", spec.min_publishes),
                                        ("min_publishes_after", spec.min_publishes_after)) if n is not None]
    if not wanted:
        return []
    faults = [f for f in inputs.faults if spec.faults is None or f.fault_id.split(":", 1)[0] in spec.faults]
    times = publish_times(inputs)
    load_end = max((op.complete_mono or op.invoke_mono for op in inputs.ops), default=None)
    out = []
    for name, minimum in wanted:
        after = name == "min_publishes_after"
        label = f"fault_windows.{name}"
        expected = (f"the load after each fault's heal holds ≥ {minimum} publishes it acts on" if after
                    else f"each fault window holds ≥ {minimum} publishes it acts on")
        problem = None
        if not inputs.has("faults"):
            problem = inputs.missing.get("faults", "the fault timeline was not read")
        elif not faults:
            problem = "no fault window was applied"
        elif times is None:
            problem = ("no publish attempt was recorded "
                       f"({inputs.missing.get('breaker_calls') or inputs.missing.get('publications')})")
        elif after and load_end is None:
            problem = "the load's history was not read"
        if problem is not None:
            out.append(ExpectationResult(label, "faults", None, expected, f"unknown: {problem}", {}))
            continue
        assert times is not None
        attempts, source = times
        rows, short = [], []
        for f in faults:
            pubs = relevant_publishers(f)
            end = f.end_mono if f.end_mono is not None else float("inf")
            n = _count(attempts, pubs, end, load_end) if after else _count(attempts, pubs, f.start_mono, end)
            seconds = None if f.end_mono is None else round(f.end_mono - f.start_mono, 1)
            rows.append({"fault": f.fault_id, "subject": f.subject, "kind": f.kind, "seconds": seconds,
                         "publishers": list(pubs), "publishes": n})
            if n < minimum:
                where = "after" if after else "held"
                short.append(f"{f.fault_id} ({f.kind} {f.subject}, {seconds if seconds is not None else '?'} s) "
                             f"{where} {n}")
        evidence = {"windows": rows, "source": source}
        if short:
            out.append(ExpectationResult(label, "faults", None, expected,
                                         f"unknown: too few operations to judge the fault: {', '.join(short)} "
                                         f"publishes, fewer than the {minimum} the drill is sized for", evidence))
        else:
            observed = "; ".join(f"{r['fault']} {r['subject']}: {r['publishes']}" for r in rows)
            out.append(ExpectationResult(label, "faults", True, expected, observed + f" (from {source})", evidence))
    return out
