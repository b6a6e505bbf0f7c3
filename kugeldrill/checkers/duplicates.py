"""Duplicate checker: how many times did each subscriber apply each event?

More than once is a duplicate. The seed's policy tolerates a duplicate whose applications
overlap a moment when that subscriber's state store was unreachable -- its idempotency
check could not work (docs/kugelpos-facts.md Surprise 2) -- i.e. any of its applications:
* carries dedup="error" (the check failed and the service went on), or
* lies within window_slack of a failing fault on redis@<subscriber> or sidecar@<subscriber>
  (link or process fault; a Redis process fault counts for every subscriber), or
* lies within window_slack of a `state_unreachable` record of that subscriber;
or whose applications straddle
* a Redis restart that lost the idempotency markers (the store itself was lost:
  "Redis障害: 重複処理許容"), one application before it and one after, however far apart, or
* a kill of that subscriber's process (`app@<subscriber>`), or a crash of it (the
  stand-in's `crash` event), that came at most window_slack after one of its
  applications: the crash fell between the effect and its mark, the window the seed's
  order (check → apply → mark) leaves open.
Tolerated duplicates fail only in strict mode. Applications with dedup="disabled" (the
subscriber had no idempotency at all) are never tolerated.

Unknown when no application records exist (nothing was looked at).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.faults import failing_windows_by_app, in_windows
from kugeldrill.checkers.index import application_index
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.model import Application, CheckResult
from kugeldrill.checkers.params import DuplicatePolicy


@dataclass(slots=True)
class DuplicateGroup:
    """One event (or business key) a subscriber applied more than once, and whether the seed
    tolerates it (None: it does not)."""

    subscriber: str
    ident: str  # event id, or "key:<business key>" for sources without event ids
    applications: list[Application]
    tolerated_because: str | None


def duplicate_groups(inputs: CheckInputs, p: DuplicatePolicy) -> list[DuplicateGroup]:
    """Every duplicated (subscriber, event), earliest first, with the seed's tolerance decided."""
    idx = application_index(inputs)
    ev = idx.events
    dup_ids: dict[str, set[str]] = {}
    dup_keys: dict[str, set[str]] = {}
    for sub, arr in idx.counts.items():
        ids: set[str] = set()
        if arr and max(arr) > 1:  # C-level scan first; the per-row loop only when needed
            ids = {ev.event_id[r] for r, n in enumerate(arr) if n > 1}
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

    subscribers = sorted({a.subscriber for apps in groups.values() for a in apps})
    state_windows = failing_windows_by_app(
        [f for f in inputs.faults if f.link_kind in ("redis", "sidecar") or f.process_kind in ("redis", "sidecar")],
        p.client_timeout_seconds, apps=subscribers, possible=True)
    losses = sorted((f.start_mono, f.fault_id) for f in inputs.faults if f.process_kind == "redis" and f.state_lost)
    kills: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for f in inputs.faults:
        if f.process_kind == "app":
            kills[f.app].extend((k, f"fault {f.fault_id}") for k in f.kills)
    for c in inputs.crashes:  # a process that ended by itself is killed all the same
        kills[c.service].append((c.mono, f"crash: {c.reason or 'process ended'}"))
    for v in kills.values():
        v.sort()
    unreachable: dict[str, list[float]] = defaultdict(list)
    for u in inputs.state_unreachable:
        unreachable[u.service].append(u.mono)
    for v in unreachable.values():
        v.sort()

    def tolerance(sub: str, apps: list[Application]) -> str | None:
        if any(a.dedup == "disabled" for a in apps):
            return None
        for a in apps:
            if a.dedup == "error":
                return "dedup check failed (dedup=error)"
            ids = in_windows(a.mono, state_windows.get(sub, []), p.window_slack_seconds)
            if ids:
                return f"state store unreachable (faults {', '.join(ids)})"
            monos = unreachable.get(sub)
            if monos:
                i = bisect.bisect_left(monos, a.mono - p.window_slack_seconds)
                if i < len(monos) and monos[i] <= a.mono + p.window_slack_seconds:
                    return "state store unreachable (state_unreachable record)"
        first, last = apps[0].mono, apps[-1].mono
        for mono, fid in losses:
            if first < mono < last:
                return f"state store lost (Redis restarted without its markers, fault {fid})"
        for a, b in zip(apps, apps[1:]):
            for mono, why in kills.get(sub, []):
                if a.mono <= mono <= a.mono + p.window_slack_seconds and mono < b.mono:
                    return f"subscriber killed between effect and mark ({why})"
        return None

    out = []
    for (sub, ident), apps in sorted(groups.items(), key=lambda kv: min(a.mono for a in kv[1])):
        apps.sort(key=lambda a: a.mono)
        out.append(DuplicateGroup(sub, ident, apps, tolerance(sub, apps)))
    return out


def tolerated_extras(inputs: CheckInputs, policy: DuplicatePolicy | None = None) -> dict[str, Counter[str]]:
    """subscriber -> business key -> applications beyond the first that the seed tolerates
    (state store unreachable): the outcome checker lets a business figure move that much more.
    Empty in strict mode, where tolerated duplicates fail too."""
    p = policy or DuplicatePolicy()
    out: dict[str, Counter[str]] = defaultdict(Counter)
    if p.strict or not inputs.applications:
        return out
    for g in duplicate_groups(inputs, p):
        if g.tolerated_because and g.applications[0].key:
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
        applied_rows = len(arr) - arr.count(0) if arr is not None else 0
        per_sub[sub] = {"events": applied_rows + len(idx.extra.get(sub, {})) + len(idx.noid_by_key.get(sub, {})),
                        "duplicated_events": 0, "extra_applications": 0, "tolerated": 0, "not_tolerated": 0}
    for g in duplicate_groups(inputs, p):
        sub, apps, why = g.subscriber, g.applications, g.tolerated_because
        row = per_sub.setdefault(sub, {"events": 0, "duplicated_events": 0, "extra_applications": 0,
                                       "tolerated": 0, "not_tolerated": 0})
        row["duplicated_events"] += 1
        row["extra_applications"] += len(apps) - 1
        row["tolerated" if why else "not_tolerated"] += 1
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
            example["tolerated_because"] = why
            ex.add("tolerated_duplicate", example)
        else:
            example["dedup_disabled"] = any(a.dedup == "disabled" for a in apps)
            ex.add("duplicate", example)

    skips = Counter(s for s, _, _ in inputs.duplicate_skips)
    marker_resaved = Counter(m.subscriber for m in inputs.markers if (m.version or 0) > 1)
    counts: dict[str, Any] = {
        "applications": idx.total,
        "db_existing_skipped": idx.db_existing,
        "duplicated_events": sum(r["duplicated_events"] for r in per_sub.values()),
        "extra_applications": sum(r["extra_applications"] for r in per_sub.values()),
        "tolerated": ex.counts.get("tolerated_duplicate", 0),
        "not_tolerated": ex.counts.get("duplicate", 0),
        "per_subscriber": per_sub,
        "redeliveries_skipped": dict(skips),
        "markers_saved_more_than_once": dict(marker_resaved),
    }
    bad = ex.counts.get("duplicate", 0) + (ex.counts.get("tolerated_duplicate", 0) if p.strict else 0)
    if bad:
        valid, summary = False, (f"{counts['not_tolerated']} duplicated event(s) not explained by a state-store "
                                 f"outage, {counts['tolerated']} tolerated" + (" (strict: tolerated fail too)" if p.strict else ""))
    else:
        valid = True
        summary = (f"no duplicate applications among {idx.total}" if not counts["duplicated_events"]
                   else f"{counts['tolerated']} duplicated event(s), all during state-store outages (tolerated)")
    return CheckResult("duplicates", valid, summary, counts=counts, examples=ex.items,
                       details={"strict": p.strict, "provenance": inputs.provenance()})
