"""The cart's circuit breaker on the running embedded stack, driven by a real link cut.

Toxiproxy disables `sidecar@cart` (the app→sidecar link, Kugelpos' localhost:3500); sales
keep succeeding (publish failures are skipped and logged, as the seed says) while the
breaker goes CLOSED → OPEN; after the reset time (3 s here) and with the link restored, the
next call is the HALF_OPEN trial and closes it. Seen in cart's events file and /metrics.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from stackutil import PosClient, module_stack, wait_until

pytestmark = pytest.mark.integration
RESET = 3.0


stack = module_stack(breaker_threshold=3, breaker_reset_seconds=RESET)


def transitions(stack: Any) -> list[tuple[str, str]]:
    path = Path(stack.events_file("cart"))
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    return [(e["from"].lower(), e["to"].lower()) for e in lines if e.get("kind") == "breaker"]


def metric(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`."""
    total, seen = 0.0, False
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(got.get(k, "").lower() == v for k, v in labels.items()):
            total, seen = total + float(m.group(2)), True
    return total if seen else None


def test_cut_sidecar_link_opens_then_half_opens_then_closes(stack: Any) -> None:
    with PosClient(stack.service_urls()) as pos, ToxiproxyClient(stack.toxiproxy_url, timeout=5.0) as toxi:
        prov = pos.provision(terminals=1, items=3)
        t = prov.terminals[0]
        pos.sale(t, [("ITEM000", 1)])  # healthy: no transition yet
        assert transitions(stack) == []
        proxy = stack.link("sidecar@cart")["proxy"]
        toxi.disable(proxy)
        try:
            # Each sale still answers 200 (publish failure is skipped), until the breaker opens.
            opened = wait_until(lambda: pos.sale(t, [("ITEM001", 1)]) and ("closed", "open") in transitions(stack),
                                40.0, "cart breaker CLOSED -> OPEN while sidecar@cart is down")
            assert opened
            metrics = pos.http.get(stack.service_url("cart") + "/metrics").text
            assert metric(metrics, "kugeldrill_breaker_state", service="cart") == 2
            assert metric(metrics, "kugeldrill_breaker_transitions_total", **{"from": "closed", "to": "open"}) >= 1
            # While OPEN, calls are rejected without reaching the sidecar.
            pos.sale(t, [("ITEM001", 1)])
            metrics = pos.http.get(stack.service_url("cart") + "/metrics").text
            assert (metric(metrics, "kugeldrill_breaker_rejections_total", service="cart") or 0) >= 1
        finally:
            toxi.enable(proxy)
        time.sleep(RESET + 0.5)
        wait_until(lambda: pos.sale(t, [("ITEM002", 1)]) and ("half_open", "closed") in transitions(stack),
                   30.0, "cart breaker HALF_OPEN -> CLOSED after the link is back")
        seq = transitions(stack)
        i_open = seq.index(("closed", "open"))
        i_half = seq.index(("open", "half_open"), i_open)
        assert ("half_open", "closed") in seq[i_half:]
        metrics = pos.http.get(stack.service_url("cart") + "/metrics").text
        assert metric(metrics, "kugeldrill_breaker_state", service="cart") == 0
        for frm, to in (("closed", "open"), ("open", "half_open"), ("half_open", "closed")):
            assert metric(metrics, "kugeldrill_breaker_transitions_total", **{"from": frm, "to": to}) >= 1
