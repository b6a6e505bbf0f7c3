"""Events still due for republish: an expected delay, never a loss.

A publisher that could not publish (its sidecar or Redis was cut, its breaker was OPEN)
keeps the event in its outbox and republishes it on a schedule (Kugelpos: every 5 minutes,
for 24 hours). Judged before that run comes, such an event is *pending*, not missing: the
fan-out and outcome checkers report it as unknown with this reason, and a drill that waited
through the republish window sees it land.

Only a failed *publish* makes an event pending. An event that was published and then not
applied is a delivery failure (Dapr redelivers it; the republish job would only mask the
loss), so it stays missing.

Which operations' events did not get published, by the best source at hand:
1. publication records (the stand-in's events): every publish attempt of the event failed;
2. the publishers' outboxes (a real deployment's MongoDB): the entry's status is `failed`;
3. neither: the operation ran while its publisher's Dapr calls were made to fail (a failing
   fault on `sidecar@` or `redis@` of cart/terminal, a process fault on their sidecar or on
   Redis, widened by the longest a call can take).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

from kugeldrill.checkers.columns import rows
from kugeldrill.checkers.faults import breaker_not_closed, failing_windows_by_app
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import OP_TOPIC, cash_scope, cash_tokens, op_cash_token, op_key
from kugeldrill.checkers.model import TOPIC_TRANLOG, Op

@dataclass(slots=True)
class RepublishPolicy:
    """The deployment's republish job. interval_seconds None: there is none (nothing is pending).

    max_call_seconds: how long one publish may take (widens fault windows, source 3).
    """

    interval_seconds: float | None = None
    min_age_seconds: float = 0.0
    window_seconds: float = 24 * 3600.0
    max_call_seconds: float = 15.0
    client_timeout_seconds: float = 5.0


@dataclass(slots=True)
class Pending:
    """Operations whose events are still due for republish, and how that was decided."""

    ops: set[str] = field(default_factory=set)
    source: str = ""
    next_due_wall: float | None = None  # the latest moment one of them is due (for a wait)
    events: set[str] = field(default_factory=set)  # event ids a publisher recorded and still owes

    def __bool__(self) -> bool:
        return bool(self.ops or self.events)

    def reason(self) -> str:
        due = "" if self.next_due_wall is None else f", all due by {time.strftime('%H:%M:%S', time.localtime(self.next_due_wall))}"
        what = (f"{len(self.ops)} operation(s)" if self.ops or not self.events else f"{len(self.events)} event(s)")
        return f"{what} whose events were not published are still due for republish ({self.source}{due})"


PUBLISHERS = ("cart", "terminal")


def _publisher(op: Op) -> str:
    return "cart" if OP_TOPIC.get(op.f) == TOPIC_TRANLOG else "terminal"


def _event_keys(inputs: CheckInputs) -> tuple[dict[str, bool], dict[str, str]]:
    """Event key -> published at least once (publication records), and cash token -> key."""
    published: dict[str, bool] = defaultdict(bool)
    for p in inputs.publications:
        if p.key:
            published[p.key] = published[p.key] or p.outcome == "ok"
    cash: dict[str, str] = {}
    for key in published:
        if key.startswith("cash|"):
            for tok in cash_tokens(key):
                cash.setdefault(cash_scope(key) + "|" + tok, key)
    return published, cash


def _key_of(op: Op, cash: dict[str, str]) -> str:
    key = op_key(op.f, op.value)
    if not key:
        tok = op_cash_token(op.value)
        if tok:
            key = cash.get(tok[0] + "|" + tok[1], "")
    return key


def pending_republish(inputs: CheckInputs, policy: RepublishPolicy, now_wall: float | None = None) -> Pending:
    """Operations (ok or info) whose events the publisher still owes a republish (see the module docstring)."""
    out = Pending()
    if policy.interval_seconds is None or not inputs.ops:
        return out
    now = time.time() if now_wall is None else now_wall
    ops = [op for op in inputs.ops if op.outcome != "fail" and op.f in OP_TOPIC]

    def due(op: Op) -> float | None:
        """By when the republish job will have taken it (None: outside the republish window).

        Its first run after the event is old enough (min age) comes at most one interval later."""
        created = op.complete_wall or op.invoke_wall
        if now - created > policy.window_seconds:
            return None
        return created + max(policy.min_age_seconds, 0.0) + policy.interval_seconds  # type: ignore[operator]

    def owed(created: float) -> float | None:
        """When the republish job will have taken an event created then (None: past due, or
        outside the republish window: the republish should have healed it already)."""
        if now - created > policy.window_seconds:
            return None
        when = created + max(policy.min_age_seconds, 0.0) + policy.interval_seconds  # type: ignore[operator]
        return when if when > now else None

    def add(op: Op) -> None:
        when = due(op)
        if when is not None and when > now:  # past due: the republish should have healed it already
            out.ops.add(op.op_id)
            out.next_due_wall = max(out.next_due_wall or when, when)

    if inputs.has("publications") and inputs.publications:
        published, cash = _event_keys(inputs)
        out.source = "publication records: every publish attempt failed"
        for event_id, created in _never_published(inputs).items():
            when = owed(created)
            if when is not None:
                out.events.add(event_id)
                out.next_due_wall = max(out.next_due_wall or when, when)
        for op in ops:
            key = _key_of(op, cash)
            if key and key in published and not published[key]:
                add(op)
        return out
    if inputs.has("outbox") and inputs.outbox:
        failed = {e.key for e in inputs.outbox if e.key and e.status == "failed"}
        cash = {}
        for key in failed:
            if key.startswith("cash|"):
                for tok in cash_tokens(key):
                    cash.setdefault(cash_scope(key) + "|" + tok, key)
        out.source = "outbox: the publish failed"
        owed_keys: dict[str, bool] = {}
        for op in ops:
            key = _key_of(op, cash)
            if key and key in failed:
                add(op)
                owed_keys[key] = owed_keys.get(key, False) or op.op_id in out.ops
        # An entry's own age is not recorded: it is owed while an operation of its key is, and
        # when no operation names it (its age unknown) it stays owed: unknown, never missing.
        out.events |= {e.event_id for e in inputs.outbox
                       if e.event_id and e.status == "failed" and owed_keys.get(e.key, True)}
        return out
    # A Redis process fault fails both publishers' calls; a long pause of one may have failed them.
    windows = failing_windows_by_app(inputs.faults, policy.client_timeout_seconds, apps=PUBLISHERS, possible=True)
    spans: dict[str, list[tuple[float, float]]] = {
        app: [(start, end if end is not None else math.inf) for start, end, _ in wins] for app, wins in windows.items()}
    for app, periods in breaker_not_closed(inputs.breaker_transitions).items():
        spans.setdefault(app, []).extend(periods)
    out.source = ("neither publication records nor outboxes: operations in flight while their publisher's Dapr "
                  "calls were made to fail or its breaker was not CLOSED")
    for op in ops:
        start = op.invoke_mono
        end = op.complete_mono if op.complete_mono is not None else start + policy.max_call_seconds
        if any(start <= hi + WRITE_SLACK and lo - WRITE_SLACK <= end for lo, hi in spans.get(_publisher(op), [])):
            add(op)
    return out


WRITE_SLACK = 0.25  # a log line or record may be written this long after the moment it describes


def _never_published(inputs: CheckInputs) -> dict[str, float]:
    """Event id -> wall time of its first publish attempt, for events no attempt published."""
    first: dict[str, float] = {}
    ok: set[str] = set()
    for event_id, outcome, wall in rows(inputs.publications, "event_id", "outcome", "wall"):
        if not event_id:
            continue
        if outcome == "ok":
            ok.add(event_id)
        elif event_id not in first or wall < first[event_id]:
            first[event_id] = wall
    return {eid: wall for eid, wall in first.items() if eid not in ok}
