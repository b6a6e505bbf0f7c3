"""The breaker cycle on a real subscriber process whose sidecar link is cut by Toxiproxy.

report → Toxiproxy (`kugeldrill.sidecar@report`) → fake sidecar. With the link down the
idempotency reads and marks fail, the shared breaker opens and then rejects without
touching the link; after the link heals and the (shortened) reset time passes, one trial
closes it. The cycle must show in the events file, /metrics and the diagnostics endpoint.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.ground.ports import free_port
from kugeldrill.stack.services.common.settings import BreakerConfig, ServiceConfig
from subscriber_fakes import FakeSidecar
from test_subscriber_apps import tranlog
from test_subscriber_crash import ServiceProcess, deliver


def test_cut_sidecar_link_opens_half_opens_and_closes(tmp_path: Path, toxiproxy_server) -> None:
    sidecar = FakeSidecar().start()
    tp = ToxiproxyClient(toxiproxy_server.api, timeout=5.0)
    listen_port = free_port()
    proxy = "kugeldrill.sidecar@report"
    tp.create_proxy(proxy, upstream=f"127.0.0.1:{sidecar.port}", listen=f"127.0.0.1:{listen_port}")
    events_file = tmp_path / "report.events.jsonl"
    cfg = ServiceConfig(
        name="report", port=free_port(), data_dir=str(tmp_path / "data"), log_file=str(tmp_path / "report.log"),
        events_file=str(events_file), dapr_url=f"http://127.0.0.1:{listen_port}/v1.0",
        breaker=BreakerConfig(threshold=3, reset_seconds=1.0, half_open_max_calls=1),
        dapr_timeout_seconds=2.0, dapr_max_attempts=1,
    )
    svc = ServiceProcess(cfg, tmp_path).start()
    try:
        assert deliver(svc.url, tranlog(str(uuid.uuid4()), 1)).json() == {"status": "SUCCESS"}
        tp.disable(proxy)
        for n in (2, 3, 4):  # each delivery: a failed read (+ a failed mark while CLOSED)
            assert deliver(svc.url, tranlog(str(uuid.uuid4()), n)).json() == {"status": "SUCCESS"}
        metrics = httpx.get(svc.url + "/metrics", timeout=5.0).text
        assert 'kugeldrill_breaker_state{service="report",breaker="dapr"} 2' in metrics
        assert 'kugeldrill_breaker_rejections_total{service="report",breaker="dapr",op="get"}' in metrics
        tp.enable(proxy)
        time.sleep(1.2)  # the reset time
        assert deliver(svc.url, tranlog(str(uuid.uuid4()), 5)).json() == {"status": "SUCCESS"}
        metrics = httpx.get(svc.url + "/metrics", timeout=5.0).text
        assert 'kugeldrill_breaker_state{service="report",breaker="dapr"} 0' in metrics
        for frm, to in (("closed", "open"), ("open", "half_open"), ("half_open", "closed")):
            assert f'from="{frm}",to="{to}"}} 1' in metrics
        diag = httpx.get(svc.url + "/api/v1/diagnostics/breaker", timeout=5.0).json()
        assert [(t["from"], t["to"]) for t in diag["breakers"][0]["transitions"]] == [
            ("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
        applied = httpx.get(svc.url + "/api/v1/diagnostics/applied", timeout=5.0).json()["applied"]
        assert [r["dedup"] for r in applied] == ["miss", "error", "error", "error", "miss"]
        # The checkers' stand-in adapter reads the same facts from the diagnostics endpoints.
        from kugeldrill.checkers.adapters.standin import read_diagnostics

        inputs = read_diagnostics({"report": svc.url})
        assert [(t.from_state, t.to_state) for t in inputs.breaker_transitions] == [
            ("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
        assert len(inputs.applications) == 5
    finally:
        svc.stop()
        sidecar.stop()
        tp.close()
    records = list(read_jsonl(events_file))
    cycle = [(r["from"], r["to"]) for r in records if r["kind"] == "breaker"]
    assert cycle == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert all({"ts", "mono", "service", "kind"} <= r.keys() for r in records)
    rejected = [r for r in records if r["kind"] == "breaker_call" and r["outcome"] == "rejected"]
    assert rejected and all(r["state"] == "open" for r in rejected)
    log = (tmp_path / "report.log").read_text()
    assert "[WARNING] kugel_common.utils.dapr_client_helper: Circuit breaker OPEN after 3 failures" in log
    assert "Circuit breaker OPEN - rejecting get state for" in log
    assert "Circuit breaker CLOSED after successful operation" in log
