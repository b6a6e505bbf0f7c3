"""Thresholds and policies of the checkers, in one place so a scenario can set them.

Defaults are the seed's intended behaviour (contracts §2: threshold 3, reset 60 s, one
half-open trial, consecutive failures); a drill against the real Kugelpos sets
`BreakerParams(mode="cumulative", half_open_max_calls=None, reset_seconds=61)` to judge it
by its own documented quirks instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kugeldrill.checkers.model import EXPECTED_SUBSCRIBERS
from kugeldrill.checkers.pending import RepublishPolicy


@dataclass(slots=True)
class BreakerParams:
    """What a correct breaker does, and how much timing slack the checker allows.

    threshold: failures that open it. mode: "consecutive" (a success while CLOSED resets the
    count) or "cumulative" (Kugelpos: never reset while CLOSED). reset_seconds: minimum time
    OPEN before a trial. half_open_max_calls: trials admitted per HALF_OPEN episode (None:
    unlimited allowed). close_tolerance_seconds: a breaker must be CLOSED again by heal +
    reset + this. extra_failures_allowed: failures beyond the threshold tolerated while
    CLOSED before "not_opened" / "opened_late" (0: the breaker must open at exactly the
    threshold-th failure; a deployment whose log interleaves several breaker instances may
    need more). order_slack_seconds: only for sources without record order, events of one
    call may be written just after the transition they caused.
    write_slack_seconds: without record order (or admission times), how late a record may be
    written after the moment it describes; with them (the stand-in, Kugelpos' log lines) the
    opening and OPEN-duration judgements need no slack at all. reset_slack_seconds: timing
    noise allowed on the reset time, both ways (open_too_short, open_too_long). client_timeout_seconds:
    latency faults at least this large make calls fail. require_close_after_heal: a breaker
    left OPEN with no calls after the heal makes the verdict unknown (not a pass).
    """

    threshold: int = 3
    mode: Literal["consecutive", "cumulative"] = "consecutive"
    reset_seconds: float = 60.0
    reset_slack_seconds: float = 0.05
    write_slack_seconds: float = 0.25
    half_open_max_calls: int | None = 1
    close_tolerance_seconds: float = 10.0
    extra_failures_allowed: int = 0
    order_slack_seconds: float = 0.5  # only where a source gives no record order
    client_timeout_seconds: float = 5.0
    require_close_after_heal: bool = True
    max_examples: int = 10


@dataclass(slots=True)
class DuplicatePolicy:
    """strict: duplicates tolerated by the seed (each explained by its event's own record:
    a failed dedup check, a mark that could not be written or was cut off by a kill, a lost
    store) fail too. No time window: a fault near a duplicate explains nothing by itself."""

    strict: bool = False
    client_timeout_seconds: float = 5.0  # which faults may put the store out of reach (checkers.faults)
    max_examples: int = 10


@dataclass(slots=True)
class FanoutPolicy:
    """expected: topic -> subscribers that must apply each event exactly once.
    fail_on_duplicates: duplicated deliveries also fail fan-out (by default they are
    counted here and judged by the duplicate checker).
    """

    expected: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(EXPECTED_SUBSCRIBERS))
    fail_on_duplicates: bool = False
    use_history: bool = True
    max_examples: int = 10


@dataclass(slots=True)
class OutcomePolicy:
    """parts: which business views to judge (report, journal, stock). amount_tolerance:
    summed amounts are floats (yen with tax rounding); a difference this small is rounding,
    not a lost effect."""

    parts: tuple[str, ...] = ("report", "journal", "stock")
    amount_tolerance: float = 0.01
    max_examples: int = 10
    max_rows: int = 400  # rows kept per table for the report


@dataclass(slots=True)
class CheckParams:
    """Everything `checkers.run_all` needs; `enabled` picks the checkers to run."""

    breaker: BreakerParams = field(default_factory=BreakerParams)
    duplicates: DuplicatePolicy = field(default_factory=DuplicatePolicy)
    fanout: FanoutPolicy = field(default_factory=FanoutPolicy)
    outcomes: OutcomePolicy = field(default_factory=OutcomePolicy)
    republish: RepublishPolicy = field(default_factory=RepublishPolicy)
    enabled: tuple[str, ...] = ("breaker", "duplicates", "fanout", "outcomes")
