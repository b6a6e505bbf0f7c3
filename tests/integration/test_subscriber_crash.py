"""The crash knob on a real service process: `crash_before_effect_every` with and without
`mark_before_effect`.

Healthy order (check → apply → mark): the process dies before the effect, nothing is
written, the redelivery after a restart applies the event exactly once. Defect order
(mark → apply): the marker is already in the state store when the process dies, so the
redelivery is skipped as a duplicate and the event is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.services.common.settings import ServiceConfig
from subscriber_fakes import FakeSidecar
from test_subscriber_apps import cloudevent, tranlog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sidecar():
    fake = FakeSidecar().start()
    try:
        yield fake
    finally:
        fake.stop()


class ServiceProcess:
    def __init__(self, cfg: ServiceConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.path = workdir / f"{cfg.name}.json"
        self.path.write_text(cfg.to_json())
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.port}"

    def start(self) -> "ServiceProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kugeldrill.stack.services", "--config", str(self.path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited at start: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/dapr/subscribe", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("service did not start in 30 s")

    def wait_exit(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def deliver(url: str, data: dict) -> httpx.Response:
    return httpx.post(url + "/api/v1/tranlog", json=cloudevent(data), timeout=10.0,
                      headers={"content-type": "application/cloudevents+json"})


@pytest.mark.parametrize("defects,expected", [([], 1), (["mark_before_effect"], 0)])
def test_crash_before_effect_then_redelivery(tmp_path: Path, sidecar: FakeSidecar, defects: list[str], expected: int) -> None:
    cfg = ServiceConfig(
        name="stock", port=free_port(), data_dir=str(tmp_path / "data"), log_file=str(tmp_path / "stock.log"),
        events_file=str(tmp_path / "stock.events.jsonl"), dapr_url=sidecar.url, dapr_max_attempts=1,
        defects=defects, crash_before_effect_every=2,
    )
    svc = ServiceProcess(cfg, tmp_path).start()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert deliver(svc.url, tranlog(first, 1)).json() == {"status": "SUCCESS"}
        with pytest.raises(httpx.HTTPError):  # the 2nd effect: the process exits mid-request
            deliver(svc.url, tranlog(second, 2))
        assert svc.wait_exit() == 70
        assert (second in sidecar.state.store) == bool(defects)  # the marker exists only under the defect
        svc.start()  # the stand-in's supervisor restarts it; the sidecar redelivers
        assert deliver(svc.url, tranlog(second, 2)).json() == {"status": "SUCCESS"}
        rows = httpx.get(svc.url + "/api/v1/diagnostics/applied", timeout=5.0).json()["applied"]
        assert [r["event_id"] for r in rows].count(first) == 1
        assert [r["event_id"] for r in rows].count(second) == expected
    finally:
        svc.stop()
    log = (tmp_path / "stock.log").read_text()
    assert "crash_before_effect_every=2: exiting before the effect of event_id: " + second in log


def test_crash_waits_for_committed_effects_to_be_recorded(tmp_path: Path, sidecar: FakeSidecar,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while another delivery's effect is committed but its `applied` event not yet
    written must not lose that event: the events file is what the checkers read, and a
    healthy crash drill would otherwise report a lost event that was applied."""
    import asyncio

    from kugeldrill.stack.services.common import effect_knobs
    from test_subscriber_apps import build, config, deliver as deliver_async

    events = tmp_path / "stock.events.jsonl"
    app = build("stock", config("stock", tmp_path, sidecar, events_file=str(events), crash_before_effect_every=2))
    sub = app.state.subscriber
    real_write = sub.db.write

    async def slow_write(fn):  # committed in the DB thread, the result comes back late
        result = await real_write(fn)
        await asyncio.sleep(0.5)
        return result

    monkeypatch.setattr(sub.db, "write", slow_write)

    class Exited(BaseException):
        pass

    seen_at_exit: list[str] = []

    def fake_exit(code: int) -> None:
        seen_at_exit.append(events.read_text() if events.exists() else "")
        raise Exited(code)

    monkeypatch.setattr(effect_knobs.os, "_exit", fake_exit)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=10) as c:
            try:
                slow = asyncio.create_task(deliver_async(c, tranlog(first, 1)))
                await asyncio.sleep(0.3)  # the first effect is in its commit → record window
                with pytest.raises(Exited):
                    await deliver_async(c, tranlog(second, 2))
                await slow
            finally:
                await app.state.dapr.close()

    asyncio.run(main())
    assert len(seen_at_exit) == 1
    applied_at_exit = [line for line in seen_at_exit[0].splitlines() if '"applied"' in line]
    assert len(applied_at_exit) == 1 and first in applied_at_exit[0]
    assert second not in "\n".join(applied_at_exit)  # the crash came before its effect
    crash_lines = [line for line in seen_at_exit[0].splitlines() if '"crash"' in line]
    assert len(crash_lines) == 1 and second in crash_lines[0]  # written before the exit, naming it
