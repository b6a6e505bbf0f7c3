"""Crash drill on the full embedded stack: subscribers die just before every Nth effect, the
launcher's supervisor restarts them, and the republisher (short interval here) redelivers.

* one event in flight at a time: every tranlog reaches report, journal and stock exactly once;
* concurrent events: nothing is lost, and an event applied twice by a subscriber is always
  one whose first application was cut off from its idempotency mark by a crash of that
  subscriber (a concurrent request's os._exit lands between effect and mark) — the
  window the seed's check → apply → mark order leaves open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stackutil import PosClient, Provision, running_stack, wait_until

pytestmark = pytest.mark.integration
SUBS = ("report", "journal", "stock")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(tmp_path_factory.mktemp("crash") / "st", crash_before_effect_every=3,
                       republish_interval_seconds=1.0, republish_min_age_seconds=1.0) as s:
        yield s


@pytest.fixture(scope="module")
def pos(stack: Any) -> Iterator[PosClient]:
    with PosClient(stack.service_urls()) as client:
        yield client


@pytest.fixture(scope="module")
def prov(pos: PosClient) -> Provision:
    return pos.provision(terminals=1, items=3, initial_amount=None)


def tranlogs(pos: PosClient, sub: str) -> list[dict[str, Any]] | None:
    try:
        return [r for r in pos.applied(sub) if r["topic"] == "topic-tranlog"]
    except httpx.HTTPError:
        return None  # that subscriber is being restarted right now


def applied_everywhere(pos: PosClient, numbers: set[int]) -> bool:
    for sub in SUBS:
        rows = tranlogs(pos, sub)
        if rows is None or not numbers <= {int(r["payload_keys"]["transaction_no"]) for r in rows}:
            return False
    return True


def test_one_at_a_time_every_tranlog_applied_exactly_once(stack: Any, pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    numbers: set[int] = set()
    for _ in range(4):
        numbers.add(pos.sale(t, [("ITEM000", 1)])["transactionNo"])
        wait_until(lambda: applied_everywhere(pos, numbers), 45.0, f"tranlogs {sorted(numbers)} everywhere")
    for sub in SUBS:
        assert stack.restarts(sub), f"{sub} never crashed/restarted"
        assert all(r["new_pid"] != r["old_pid"] for r in stack.restarts(sub))
        rows = [r for r in tranlogs(pos, sub) or [] if int(r["payload_keys"]["transaction_no"]) in numbers]
        counts = Counter(r["event_id"] for r in rows)
        assert len(counts) == len(numbers) and set(counts.values()) == {1}, f"{sub}: {counts}"
    assert stack.restarts("cart") == []  # publishers are neither crashed nor supervised


def test_concurrent_nothing_lost_and_duplicates_only_from_crash_windows(stack: Any, pos: PosClient,
                                                                         prov: Provision) -> None:
    t = prov.terminals[0]
    numbers = {pos.sale(t, [("ITEM001", 1)])["transactionNo"] for _ in range(4)}
    wait_until(lambda: applied_everywhere(pos, numbers), 90.0, f"tranlogs {sorted(numbers)} everywhere")
    for sub in SUBS:
        rows = [r for r in tranlogs(pos, sub) or [] if int(r["payload_keys"]["transaction_no"]) in numbers]
        restarts = [r["wall"] for r in stack.restarts(sub)]
        by_event: dict[str, list[float]] = {}
        for r in rows:
            by_event.setdefault(r["event_id"], []).append(r["ts"])
        assert len(by_event) == len(numbers)
        for event_id, times in by_event.items():
            times.sort()
            for earlier, later in zip(times, times[1:]):
                # A repeat needs a crash (hence a restart) between the two applications.
                assert any(earlier <= w <= later for w in restarts), (
                    f"{sub} applied {event_id} again at {later} with no restart since {earlier}")
    # A late redelivery may crash a subscriber again right now; the supervisor must bring every
    # service back (a service left down would fail this wait).
    wait_until(lambda: all(s["running"] for s in stack.status()["services"].values()), 30.0,
               "every service running again")
