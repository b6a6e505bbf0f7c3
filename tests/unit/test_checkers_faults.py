"""Which fault kinds make a service's Dapr calls fail (checkers/faults.py).

The breaker checker's "opened without failures" (without call records) and the duplicate
checker's tolerance windows both rest on this classification; a kind left out makes a
legitimate open or a tolerated duplicate look like a defect.
"""

from __future__ import annotations

from typing import Any

import pytest

from checkers.faults import breaks_state_store, makes_calls_fail
from checkers.model import FaultWindow


def _fault(link: str, kind: str, **params: Any) -> FaultWindow:
    return FaultWindow("f1", link, kind, 1.0, 1.0, 9.0, 9.0, params)


@pytest.mark.parametrize("kind", ["down", "flap", "blackhole", "reset_peer", "timeout", "limit_data"])
def test_cutting_kinds_fail_calls_on_sidecar_and_redis_links(kind: str) -> None:
    assert makes_calls_fail(_fault("sidecar@cart", kind), 5.0)
    assert breaks_state_store(_fault("redis@report", kind), 5.0)
    assert not makes_calls_fail(_fault("app@journal", kind), 5.0)  # deliveries, not the app's own calls


def test_flap_counts_like_down() -> None:
    """A flapping link is down for part of every period: calls fail in those parts."""
    assert makes_calls_fail(_fault("redis@report", "flap", period=2, down=1), 5.0)


def test_latency_and_ramp_fail_only_at_the_client_timeout() -> None:
    assert not makes_calls_fail(_fault("sidecar@cart", "latency", latency=150, jitter=50), 5.0)
    assert makes_calls_fail(_fault("sidecar@cart", "latency", latency=5000), 5.0)
    assert not makes_calls_fail(_fault("sidecar@cart", "ramp", start=100, end=900, steps=5), 5.0)
    assert makes_calls_fail(_fault("sidecar@cart", "ramp", start=100, end=6000, steps=5), 5.0)


@pytest.mark.parametrize("kind", ["bandwidth", "slicer", "slow_close"])
def test_slowing_kinds_do_not_fail_calls(kind: str) -> None:
    assert not makes_calls_fail(_fault("sidecar@cart", kind), 5.0)
