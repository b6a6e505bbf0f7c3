"""The check phase's inputs from the scenario: checker parameters and the quiescence wait.

The checkers themselves run through `kugeldrill.checkers.run_all`, which already turns a
checker that crashes into an unknown result (never a pass) with the error as its summary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from kugeldrill.checkers.params import BreakerParams, CheckParams, DuplicatePolicy, FanoutPolicy, OutcomePolicy
from kugeldrill.checkers.pending import RepublishPolicy
from kugeldrill.checkers.quiescence import OutboxProbe, wait_quiescent
from kugeldrill.scenario_schema import Scenario


def build_params(scenario: Scenario, breaker: BreakerParams, republish: RepublishPolicy | None = None) -> CheckParams:
    """The checkers' parameters: the environment's breaker and republish job, the scenario's expectations."""
    exp = scenario.expect
    if exp.breaker.close_tolerance_seconds is not None:
        breaker = replace(breaker, close_tolerance_seconds=exp.breaker.close_tolerance_seconds)
    dup = DuplicatePolicy(strict=exp.duplicates.policy == "strict")
    fan = FanoutPolicy()
    if exp.fanout.policy == "exactly_once":
        fan.fail_on_duplicates = False  # duplicates are the duplicate checker's verdict
    outcomes = OutcomePolicy(parts=exp.outcomes.parts)
    enabled = tuple(n for n, on in (("breaker", exp.breaker.check), ("duplicates", exp.duplicates.check),
                                    ("fanout", exp.fanout.check),
                                    ("outcomes", exp.outcomes.check and bool(exp.outcomes.parts))) if on)
    return CheckParams(breaker=breaker, duplicates=dup, fanout=fan, outcomes=outcomes,
                       republish=republish or RepublishPolicy(), enabled=enabled)


@dataclass
class Quiescence:
    """How the wait for quiescence ended: seconds (None: not measured), converged (None: unknown)."""

    seconds: float | None
    converged: bool | None
    reason: str = ""
    note: str = ""
    basis: str = ""  # what was watched: stream groups (and outboxes), or the events files
    details: dict[str, Any] = field(default_factory=dict)


def _files_quiet(files: Mapping[str, Path], bound: float, quiet_for: float = 2.0) -> tuple[float, bool]:
    """Fallback: wait until no events file grows for `quiet_for` seconds."""
    start = time.monotonic()
    last_sizes: dict[str, int] = {}
    last_change = start
    while time.monotonic() - start < bound:
        sizes = {k: (p.stat().st_size if p.exists() else 0) for k, p in files.items()}
        now = time.monotonic()
        if sizes != last_sizes:
            last_sizes, last_change = sizes, now
        elif now - last_change >= quiet_for:
            return last_change - start, True
        time.sleep(0.25)
    return time.monotonic() - start, False


def wait_for_quiescence(redis_url: str | None, files: Mapping[str, Path], bound: float,
                        outbox_probe: OutboxProbe | None = None, allow_hosts: tuple[str, ...] = ()) -> Quiescence:
    """Wait, after load stopped and faults healed, until nothing is in flight (or `bound` passes).

    Redis' consumer groups (and the publishers' outboxes, where readable) are the evidence;
    without a Redis URL, the stand-in's events files going quiet is the fallback.
    """
    if redis_url:
        try:
            res = wait_quiescent(redis_url, outbox_probe, bound, allow_hosts=allow_hosts)
        except (redis.RedisError, OSError) as exc:
            note = f"quiescence through Redis failed ({type(exc).__name__}: {exc}); used events files"
        else:
            basis = ("Redis stream groups and the publishers' outboxes" if outbox_probe is not None else
                     "Redis stream groups only: the publishers' outboxes were not read")
            return Quiescence(res.seconds, res.converged, res.reason, basis=basis, details=res.to_dict())
    else:
        note = "no Redis URL: used the events files' growth"
    if not files:
        return Quiescence(None, None, "nothing to watch", note=note + "; no events files to watch")
    secs, ok = _files_quiet(files, bound)
    return Quiescence(secs, ok, "" if ok else "events files still growing", note=note,
                      basis="the stand-in's events files stopped growing")

