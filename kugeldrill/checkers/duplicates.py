"""Duplicate checker: how many times did each subscriber apply each event?

More than once is a duplicate. The seed's order (check → apply → mark) and its Redis policy
("Redis障害: ステートストアフォールバック、重複処理許容") allow a duplicate only for a reason
the event's *own* record shows — never because a fault happened to be near. Each extra
application (every one after the first) must be explained by one of:

* dedup_error      -- that delivery's idempotency check could not reach the state store
                      (its application carries dedup="error": the stand-in's `applied` event,
                      Kugelpos' "Failed to get state for <id>" / "Error checking for duplicates");
* mark_failed      -- the previous application's mark could not be written (a failed mark
                      write of this event between the two, and no mark written since) while
                      the store was out of the subscriber's reach: the write's own span (from
                      its call to its answer) overlaps a fault on that subscriber's state
                      path (`redis@X`, `sidecar@X`, a Redis or sidecar process fault), or
                      its breaker was not CLOSED then (the write was rejected). A write that
                      fails with the store in reach is a defect, not an outage;
* killed_before_mark -- the previous application committed before a kill or crash of that
                      subscriber (its applied row's time against the kill's instant) and
                      its mark was not written by then (no mark write of this event before
                      the kill): the window the seed's order leaves open;
* store_lost       -- its mark was written and then the store itself was lost (a Redis
                      restart whose observer saw the markers vanish) before the next check.

Anything else is a violation, whatever the fault timeline around it: in particular a mark
written before the next delivery's check, with the store intact, leaves nothing to explain
it. Where the evidence cannot be read — no mark records at all (a source that does not
record them) with a kill between the two, or a Redis restart whose loss was not measured —
the duplicate is *undetermined*: the checker is unknown, never a pass. Applications with
dedup="disabled" (the subscriber had no idempotency at all) are never tolerated. Tolerated
duplicates fail only in strict mode and are reported with their evidence.

Unknown when no application records exist (nothing was looked at).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.faults import breaker_not_closed, failing_windows_by_app
from kugeldrill.checkers.index import application_index, count_view, most, rows_above
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import Application, CheckResult, MarkWrite
from kugeldrill.checkers.params import DuplicatePolicy

TOLERATED_CAP = 200  # tolerated duplicates listed with their evidence in the details


@dataclass(slots=True)
class DuplicateGroup:
    """One event (or business key) a subscriber applied more than once, and its verdict:
    tolerated (every extra application explained, `evidence` says how), undetermined (the
    evidence could not be read: `undetermined` says why) or not (a violation)."""

    subscriber: str
    ident: str  # event id, or "key:<business key>" for sources without event ids
    applications: list[Application]
    tolerated_because: str | None  # the explanations' kinds, e.g. "killed_before_mark"; None: not tolerated
    evidence: list[dict[str, Any]] = field(default_factory=list)
    undetermined: str | None = None
    unexplained: dict[str, Any] | None = None  # the first extra application nothing explains


def _t(mono: float) -> float:
    return round(mono, 3)


class _Evidence:
    """The per-event facts a duplicate may be explained by, indexed once per run."""

    def __init__(self, inputs: CheckInputs, client_timeout_seconds: float,
                 events: set[tuple[str, str]] | None = None) -> None:
        self.has_marks = inputs.has("mark_writes")
        # The marks of the (subscriber, event id) pairs asked about (`events`; None: all): a
        # run of millions of events writes millions of marks, and a few events are duplicated.
        self.marks: dict[tuple[str, str], list[MarkWrite]] = defaultdict(list)
        for m in inputs.mark_writes:
            if events is None or (m.subscriber, m.event_id) in events:
                self.marks[(m.subscriber, m.event_id)].append(m)
        for v in self.marks.values():
            v.sort(key=lambda m: m.mono)
        self.kills: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for f in inputs.faults:
            if f.process_kind == "app":
                self.kills[f.app].extend((k, f"kill of app@{f.app} (fault {f.fault_id})") for k in f.kills)
        for c in inputs.crashes:  # a process that ended by itself dies all the same
            self.kills[c.service].append((c.mono, f"crash of {c.service}: {c.reason or 'process ended'}"))
        for v in self.kills.values():
            v.sort()
        self.kill_times = {sub: [k for k, _ in v] for sub, v in self.kills.items()}
        # Redis restarts: (start, end, fault id, lost?) — lost None: not measured.
        self.restarts = [(f.start_mono, f.end_mono if f.end_mono is not None else float("inf"), f.fault_id, f.state_lost)
                         for f in inputs.faults if f.process_kind == "redis" and f.kind in ("kill", "restart")]
        subs = sorted({m.subscriber for m in inputs.mark_writes})
        self.store_faults = failing_windows_by_app(
            [f for f in inputs.faults if f.link_kind in ("redis", "sidecar") or f.process_kind in ("redis", "sidecar")],
            client_timeout_seconds, apps=subs, possible=True)
        self.not_closed = breaker_not_closed(inputs.breaker_transitions)

    def out_of_reach(self, sub: str, m: MarkWrite) -> str | None:
        """Why the store was out of `sub`'s reach during the failed write `m` (None: nothing says so)."""
        start = m.started_mono if m.started_mono is not None else m.mono
        for lo, hi, ids in self.store_faults.get(sub, []):
            if lo <= m.mono and (hi is None or start <= hi):
                return f"faults {', '.join(ids)} on its state path"
        for lo, hi in self.not_closed.get(sub, []):
            if lo <= m.mono and start <= hi:
                return "its breaker was not CLOSED"
        return None

    def explain(self, sub: str, a: Application, b: Application) -> tuple[str, dict[str, Any]] | None:
        """Why `b` applied the event again after `a` ("undetermined" when the evidence is missing); None: nothing."""
        if b.dedup == "error":
            return "dedup_error", {"application_mono": _t(b.mono), "dedup": "error"}
        eid = a.event_id
        if not eid:
            return "undetermined", {"why": "records without event ids: no per-event evidence"}
        marks = self.marks.get((sub, eid), [])
        written = [m for m in marks if m.ok and m.mono < b.mono]
        if written:
            mark = written[-1]
            for start, end, fid, lost in self.restarts:
                if mark.mono < end and start < b.mono:
                    if lost:
                        return "store_lost", {"mark_mono": _t(mark.mono), "fault": fid, "restart_mono": _t(start)}
                    if lost is None:
                        return "undetermined", {"why": f"Redis restarted (fault {fid}) after the mark; whether the "
                                                       "markers survived was not measured", "mark_mono": _t(mark.mono)}
            return None  # the mark was there at the next check
        failed = [m for m in marks if not m.ok and a.mono <= m.mono < b.mono]
        for m in failed:
            why = self.out_of_reach(sub, m)
            if why is not None:
                return "mark_failed", {"applied_mono": _t(a.mono), "mark_failed_mono": _t(m.mono),
                                       "mark_called_mono": None if m.started_mono is None else _t(m.started_mono),
                                       "store_out_of_reach": why, "error": m.error}
        times = self.kill_times.get(sub, [])
        i = bisect.bisect_left(times, a.mono)
        if i < len(times) and times[i] < b.mono:
            k, why = self.kills[sub][i]
            if not self.has_marks:
                return "undetermined", {"why": f"no record of its mark: cannot tell whether {why} came before it",
                                        "applied_mono": _t(a.mono), "kill_mono": _t(k)}
            return "killed_before_mark", {"applied_mono": _t(a.mono), "kill_mono": _t(k), "killed_by": why,
                                          "mark": "not written before the kill"}
        if not self.has_marks:
            return "undetermined", {"why": "no record of mark writes: cannot tell whether the mark was written"}
        return None


def duplicate_groups(inputs: CheckInputs, p: DuplicatePolicy) -> list[DuplicateGroup]:
    """Every duplicated (subscriber, event), earliest first, with its evidence weighed."""
    idx = application_index(inputs)
    ev = idx.events
    dup_ids: dict[str, set[str]] = {}
    dup_keys: dict[str, set[str]] = {}
    for sub, arr in idx.counts.items():
        ids: set[str] = set()
        if most(arr) > 1:  # a scan in C first; the rows only when some exist
            ids = {ev.event_id[r] for r in rows_above(arr, 1)}
        ids |= {eid for eid, n in idx.extra.get(sub, {}).items() if n > 1}
        if ids:
            dup_ids[sub] = ids
    for sub, d in idx.extra.items():
        if sub not in idx.counts:
            ids = {eid for eid, n in d.items() if n > 1}
            if ids:
                dup_ids[sub] = ids
    # Records without event ids (some log sources) are judged by business key.
    for sub, c in idx.noid_by_key.items():
        keys = {k for k, n in c.items() if n > 1}
        if keys:
            dup_keys[sub] = keys

    groups: dict[tuple[str, str], list[Application]] = defaultdict(list)
    if dup_ids or dup_keys:
        for a in inputs.applications:
            if a.dedup == "db_existing":
                continue
            if a.event_id and a.event_id in dup_ids.get(a.subscriber, ()):
                groups[(a.subscriber, a.event_id)].append(a)
            elif not a.event_id and a.key in dup_keys.get(a.subscriber, ()):
                groups[(a.subscriber, "key:" + a.key)].append(a)
    if not groups:
        return []
    evidence = _Evidence(inputs, p.client_timeout_seconds, set(groups))

    def weigh(sub: str, ident: str, apps: list[Application]) -> DuplicateGroup:
        group = DuplicateGroup(sub, ident, apps, None)
        if any(a.dedup == "disabled" for a in apps):
            group.unexplained = {"applied_mono": _t(apps[1].mono), "why": "idempotency disabled (dedup=disabled)"}
            return group
        kinds: list[str] = []
        for a, b in zip(apps, apps[1:]):
            found = evidence.explain(sub, a, b)
            if found is None:
                group.unexplained = {"applied_mono": _t(b.mono), "previous_mono": _t(a.mono), "dedup": b.dedup,
                                     "why": "nothing in this event's record explains it (its mark was written, "
                                            "or nothing kept it from being written)"}
                return group
            kind, facts = found
            if kind == "undetermined":
                group.undetermined = group.undetermined or facts["why"]
            else:
                kinds.append(kind)
            group.evidence.append({"kind": kind, **facts})
        if group.undetermined is None:
            group.tolerated_because = ", ".join(dict.fromkeys(kinds))
        return group

    out = []
    for (sub, ident), apps in sorted(groups.items(), key=lambda kv: min(a.mono for a in kv[1])):
        apps.sort(key=lambda a: a.mono)
        out.append(weigh(sub, ident, apps))
    return out


def tolerated_extras(inputs: CheckInputs, policy: DuplicatePolicy | None = None) -> dict[str, Counter[str]]:
    """subscriber -> business key -> applications beyond the first that the seed tolerates (their
    evidence says why) or that could not be weighed: the outcome checker lets a business figure
    move that much more. Empty in strict mode, where tolerated duplicates fail too."""
    p = policy or DuplicatePolicy()
    out: dict[str, Counter[str]] = defaultdict(Counter)
    if p.strict or not inputs.applications:
        return out
    for g in duplicate_groups(inputs, p):
        # Undetermined ones too: the duplicate checker is unknown for them, and the business
        # figures they moved are not a second, separate finding.
        if (g.tolerated_because or g.undetermined) and g.applications[0].key:
            out[g.subscriber][g.applications[0].key] += len(g.applications) - 1
    return out


def check_duplicates(inputs: CheckInputs, policy: DuplicatePolicy | None = None) -> CheckResult:
    """Per subscriber and event: applications; duplicates split into tolerated / not (contracts §8)."""
    p = policy or DuplicatePolicy()
    if not inputs.applications:
        reason = inputs.missing.get("applications") or "no application records (no subscriber applied anything)"
        return CheckResult("duplicates", None, f"unknown: {reason}", counts={"applications": 0},
                           details={"unknown": [reason], "provenance": inputs.provenance()})
    idx = application_index(inputs)
    ex = Examples(p.max_examples)
    per_sub: dict[str, dict[str, Any]] = {}
    for sub in idx.subscribers():
        arr = idx.counts.get(sub)
        applied_rows = int(np.count_nonzero(count_view(arr))) if arr is not None else 0
        per_sub[sub] = {"events": applied_rows + len(idx.extra.get(sub, {})) + len(idx.noid_by_key.get(sub, {})),
                        "duplicated_events": 0, "extra_applications": 0, "tolerated": 0, "not_tolerated": 0}
    tolerated: list[dict[str, Any]] = []
    undetermined: list[str] = []
    tolerated_by: Counter[str] = Counter()
    for g in duplicate_groups(inputs, p):
        sub, apps, why = g.subscriber, g.applications, g.tolerated_because
        row = per_sub.setdefault(sub, {"events": 0, "duplicated_events": 0, "extra_applications": 0,
                                       "tolerated": 0, "not_tolerated": 0})
        row["duplicated_events"] += 1
        row["extra_applications"] += len(apps) - 1
        example = {
            "subscriber": sub,
            "event_id": apps[0].event_id,
            "key": apps[0].key,
            "topic": apps[0].topic,
            "applications": len(apps),
            "times": [{"mono": round(a.mono, 3), "wall": round(a.wall, 3), "attempt": a.attempt, "dedup": a.dedup}
                      for a in apps[:5]],
        }
        if why:
            row["tolerated"] += 1
            tolerated_by.update(e["kind"] for e in g.evidence)
            example.update(tolerated_because=why, evidence=g.evidence[:5])
            ex.add("tolerated_duplicate", example)
            if len(tolerated) < TOLERATED_CAP:
                tolerated.append({k: example[k] for k in ("subscriber", "event_id", "key", "applications",
                                                          "tolerated_because", "evidence")})
        elif g.undetermined:
            row.setdefault("undetermined", 0)
            row["undetermined"] += 1
            undetermined.append(f"{sub} applied {apps[0].event_id or g.ident} {len(apps)} times: {g.undetermined}")
            ex.add("undetermined_duplicate", {**example, "evidence": g.evidence[:5], "why": g.undetermined})
        else:
            row["not_tolerated"] += 1
            example["dedup_disabled"] = any(a.dedup == "disabled" for a in apps)
            example["unexplained"] = g.unexplained
            example["evidence"] = g.evidence[:5]
            ex.add("duplicate", example)

    skips = Counter(s for s, _, _ in inputs.duplicate_skips)
    marker_resaved = Counter(m.subscriber for m in inputs.markers if (m.version or 0) > 1)
    counts: dict[str, Any] = {
        "applications": idx.total,
        "db_existing_skipped": idx.db_existing,
        "duplicated_events": sum(r["duplicated_events"] for r in per_sub.values()),
        "extra_applications": sum(r["extra_applications"] for r in per_sub.values()),
        "tolerated": ex.counts.get("tolerated_duplicate", 0),
        "tolerated_by": dict(tolerated_by),
        "not_tolerated": ex.counts.get("duplicate", 0),
        "undetermined": ex.counts.get("undetermined_duplicate", 0),
        "per_subscriber": per_sub,
        "redeliveries_skipped": dict(skips),
        "markers_saved_more_than_once": dict(marker_resaved),
    }
    bad = ex.counts.get("duplicate", 0) + (ex.counts.get("tolerated_duplicate", 0) if p.strict else 0)
    if bad:
        valid, summary = False, (f"{counts['not_tolerated']} duplicated event(s) that nothing in their own record "
                                 f"explains, {counts['tolerated']} tolerated with evidence"
                                 + (" (strict: tolerated fail too)" if p.strict else ""))
    elif undetermined:
        valid, summary = None, f"unknown: {len(undetermined)} duplicated event(s) could not be weighed: {undetermined[0]}"
    else:
        valid = True
        summary = (f"no duplicate applications among {idx.total}" if not counts["duplicated_events"]
                   else f"{counts['tolerated']} duplicated event(s), each explained by its own record "
                        f"({', '.join(f'{k} {v}' for k, v in sorted(tolerated_by.items()))})")
    return CheckResult("duplicates", valid, summary, counts=counts, examples=ex.items,
                       details={"strict": p.strict, "tolerated": tolerated, "unknown": undetermined[:20],
                                "provenance": inputs.provenance()})
