"""Terminal leases and worker partitioning (no Locust import: plain fake runners)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kugeldrill.errors import ConfigError
from kugeldrill.loadconfig import LoadConfig
from locustfiles.runtime import Runtime, Settings, load_settings

PROV = {"tenant_id": "T1", "store_code": "1", "urls": {"cart": "http://127.0.0.1:1"},
        "items": [{"item_code": "ITEM000", "unit_price": 100}],
        "terminals": {"cart": [{"terminal_id": f"T1-1-{i}", "terminal_no": i, "api_key": "k"} for i in range(1, 8)]}}


class WorkerRunner:  # same class name as Locust's, which is what the runtime checks
    def __init__(self, index: int) -> None:
        self.worker_index = index


def _runtime(runner: Any, workers: int = 0, processes: int = 0, history: Path | None = None) -> Runtime:
    rt = Runtime(Settings(PROV, LoadConfig(workers=workers), PROV["urls"], history))
    rt.environment = SimpleNamespace(runner=runner, parsed_options=SimpleNamespace(processes=processes))
    return rt


def test_local_runner_leases_each_terminal_once() -> None:
    rt = _runtime(SimpleNamespace(worker_index=0))
    got = [rt.acquire("cart") for _ in range(8)]
    assert [t.terminal_no for t in got[:7]] == [1, 2, 3, 4, 5, 6, 7] and got[7] is None
    rt.release(got[2])
    assert rt.acquire("cart").terminal_no == 3
    assert rt.acquire("nope") is None


def test_workers_get_disjoint_slices() -> None:
    slices = []
    for index in range(3):
        rt = _runtime(WorkerRunner(index), processes=3)
        mine = []
        while (t := rt.acquire("cart")) is not None:
            mine.append(t.terminal_no)
        slices.append(mine)
        assert rt.worker_id() == f"w{index}"
    assert slices == [[1, 4, 7], [2, 5], [3, 6]]


def test_worker_count_from_config_and_missing_count_is_an_error() -> None:
    assert _runtime(WorkerRunner(1), workers=2).worker_slot() == (1, 2)
    with pytest.raises(ConfigError, match="KUGELDRILL_WORKERS"):
        _runtime(WorkerRunner(0)).worker_slot()
    with pytest.raises(ConfigError, match="worker index 2"):
        _runtime(WorkerRunner(2), workers=2).worker_slot()


def test_history_shard_is_named_after_the_worker(tmp_path: Path) -> None:
    rt = _runtime(WorkerRunner(1), processes=2, history=tmp_path)
    rt.history().invoke("sale", "w1.u1").ok()
    rt.close()
    assert (tmp_path / "w1.jsonl").exists()


def test_settings_errors_are_specific(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no credentials"):
        load_settings({})
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_settings({"KUGELDRILL_PROVISION_JSON": "{"})
    with pytest.raises(Exception, match="does not exist"):
        load_settings({"KUGELDRILL_PROVISION": str(tmp_path / "none.json")})
    bad = dict(PROV, urls={"cart": "http://10.0.0.1:8003"})
    import json

    with pytest.raises(Exception, match="not loopback"):
        load_settings({"KUGELDRILL_PROVISION_JSON": json.dumps(bad)})
    ok = load_settings({"KUGELDRILL_PROVISION_JSON": json.dumps(bad), "KUGELDRILL_ALLOW_HOSTS": "10.0.0.1"})
    assert ok.urls["cart"] == "http://10.0.0.1:8003"
