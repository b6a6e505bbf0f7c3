"""A Locust listener loaded beside Kugelpos' own performance locustfile: how long each cart cycle took.

Kugelpos' client (`services/cart/performance_tests/locustfile.py`, run unmodified) records
requests, not sales. bench/kugelpos.py loads this file with it (`locust -f theirs.py,this.py`);
it defines no user class, only listens: a cycle starts when a user's "Create Cart" request
was sent and ends when the same user's "Cancel Cart" answered without failure (each
simulated user is a greenlet). The cycle durations (seconds) are written as JSON to
$KUGELDRILL_CYCLES_OUT when the test stops.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import events

_started: dict[int, float] = {}
_cycles: list[float] = []


@events.request.add_listener
def _on_request(name: str, response_time: float, exception: Any = None, **_kw: Any) -> None:
    user = id(gevent.getcurrent())
    if name.endswith("(Create Cart)"):
        if exception is None:
            _started[user] = time.monotonic() - response_time / 1000.0
        else:
            _started.pop(user, None)
    elif name.endswith("(Cancel Cart)"):
        start = _started.pop(user, None)
        if exception is None and start is not None:
            _cycles.append(time.monotonic() - start)
    elif exception is not None:
        _started.pop(user, None)  # the cycle was abandoned (their user raises after a failed step)


@events.test_stop.add_listener
def _on_stop(**_kw: Any) -> None:
    out = os.environ.get("KUGELDRILL_CYCLES_OUT")
    if out:
        with open(out, "w") as fh:
            json.dump({"cycles_seconds": _cycles}, fh)
