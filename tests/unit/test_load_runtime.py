"""Terminal leases, the master's lease desk, and worker ids (no Locust import: plain fake runners)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kugeldrill.ground.errors import ConfigError
from kugeldrill.locustfiles.loadconfig import LoadConfig
from kugeldrill.locustfiles.leases import LeaseBoard, LeaseDesk
from kugeldrill.locustfiles.runtime import Runtime, Settings, load_settings

PROV = {"tenant_id": "T1", "store_code": "1", "urls": {"cart": "http://127.0.0.1:1"},
        "items": [{"item_code": "ITEM000", "unit_price": 100}],
        "terminals": {"cart": [{"terminal_id": f"T1-1-{i}", "terminal_no": i, "api_key": "k"} for i in range(1, 8)]}}


class WorkerRunner:  # same class name as Locust's, which is what the runtime checks
    def __init__(self, index: int) -> None:
        self.worker_index = index


def _runtime(runner: Any, lease_dir: Path, history: Path | None = None) -> Runtime:
    rt = Runtime(Settings(PROV, LoadConfig(), PROV["urls"], history, (), lease_dir))
    rt.environment = SimpleNamespace(runner=runner)
    return rt


def _drain(rt: Runtime) -> list[int]:
    out = []
    while (t := rt.acquire("cart")) is not None:
        out.append(t.terminal_no)
    return out


def test_local_runner_leases_each_terminal_once(tmp_path: Path) -> None:
    rt = _runtime(SimpleNamespace(worker_index=0), tmp_path)
    got = [rt.acquire("cart") for _ in range(8)]
    assert [t.terminal_no for t in got[:7]] == [1, 2, 3, 4, 5, 6, 7] and got[7] is None
    rt.release(got[2])
    assert rt.acquire("cart").terminal_no == 3
    assert rt.acquire("nope") is None


def test_processes_sharing_a_lease_dir_never_share_a_terminal(tmp_path: Path) -> None:
    """Whatever worker indexes Locust hands out (15 is possible): the lease files decide."""
    a = _runtime(WorkerRunner(0), tmp_path)
    b = _runtime(WorkerRunner(15), tmp_path)
    first = [a.acquire("cart").terminal_no for _ in range(3)]
    rest = _drain(b)
    assert sorted(first + rest) == [1, 2, 3, 4, 5, 6, 7] and not set(first) & set(rest)
    assert b.worker_id() == "w15"
    a.close()  # a worker that ends releases its leases
    assert sorted(_drain(b)) == sorted(first)


def test_lease_is_held_against_another_process(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    go_fd_r, go_fd_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold terminal 1 until told to exit
        try:
            board = LeaseBoard(tmp_path)
            os.write(write_fd, b"1" if board.try_acquire("T1-1-1") else b"0")
            os.read(go_fd_r, 1)
        finally:
            os._exit(0)
    try:
        assert os.read(read_fd, 1) == b"1"
        board = LeaseBoard(tmp_path)
        assert not board.try_acquire("T1-1-1")
        assert board.try_acquire("T1-1-2")
    finally:
        os.write(go_fd_w, b"x")
        os.waitpid(pid, 0)
    assert board.try_acquire("T1-1-1")  # the kernel dropped the dead holder's lock


def test_the_master_desk_hands_each_terminal_to_one_worker_and_keeps_a_lost_ones(tmp_path: Path) -> None:
    desk = LeaseDesk(PROV["terminals"], LeaseBoard(tmp_path))
    a = [desk.grant("host-a_1", "cart")["terminal_no"] for _ in range(3)]
    b = []
    while (t := desk.grant("host-b_2", "cart")) is not None:
        b.append(t["terminal_no"])
    assert sorted(a + b) == [1, 2, 3, 4, 5, 6, 7] and desk.grant("host-a_1", "nope") is None
    assert not LeaseBoard(tmp_path).try_acquire("T1-1-1")  # held on this machine for the worker
    desk.release("host-b_2", "T1-1-1")  # not b's: ignored
    assert desk.grant("host-b_2", "cart") is None
    desk.release("host-a_1", "T1-1-1")
    assert desk.grant("host-b_2", "cart")["terminal_id"] == "T1-1-1"
    assert desk.lost("host-a_1") == ["T1-1-2", "T1-1-3"]
    desk.release("host-a_1", "T1-1-2")  # a lost worker's terminal stays out of use
    assert desk.grant("host-b_2", "cart") is None
    desk.close()


def test_history_shard_is_named_after_the_worker(tmp_path: Path) -> None:
    rt = _runtime(WorkerRunner(1), tmp_path / "leases", history=tmp_path / "h")
    rt.history().invoke("sale", "w1.u1").ok()
    rt.close()
    assert (tmp_path / "h" / "w1.jsonl").exists()


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
