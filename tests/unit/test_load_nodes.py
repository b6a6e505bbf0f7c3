"""The master/worker wiring on fake Locust runners (the real protocol runs in
tests/integration/test_load_workers.py): setup, leases, acknowledgements, the end of a run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kugeldrill.ground.history import encode_lines
from kugeldrill.ground.history_read import load_ops
from kugeldrill.locustfiles.collector import read_ledger
from kugeldrill.locustfiles.loadconfig import LoadConfig
from kugeldrill.locustfiles.nodes import (MSG_FINISH, MSG_GRANT, MSG_HELLO, MSG_LEASE, MSG_RELEASE, MSG_SETUP,
                                          MasterNode, RemoteLeases, WorkerNode, is_worker_command)
from kugeldrill.locustfiles.runtime import Runtime, Settings
from kugeldrill.locustfiles.stream import MSG_ACK, HistoryStream

PROV = {"tenant_id": "T9", "store_code": "1", "urls": {"cart": "http://127.0.0.1:1"},
        "items": [{"item_code": "ITEM000", "unit_price": 100}],
        "terminals": {"cart": [{"terminal_id": f"T9-1-{i}", "terminal_no": i, "api_key": "k"} for i in (1, 2)]}}


class Events:
    def __init__(self) -> None:
        self.handlers: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return SimpleNamespace(add_listener=lambda fn: self.handlers.setdefault(name, []).append(fn))

    def fire(self, name: str, **kw: Any) -> None:
        for fn in self.handlers.get(name, []):
            fn(**kw)


class MasterRunner:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.sent: list[tuple[str, Any, str | None]] = []
        self.clients: dict[str, Any] = {}
        self.greenlet = SimpleNamespace(spawn=lambda fn: None)

    def register_message(self, msg_type: str, fn: Any, concurrent: bool = False) -> None:
        self.handlers[msg_type] = fn

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        self.sent.append((msg_type, data, client_id))

    def get_worker_index(self, client_id: str) -> int:
        return sorted(self.clients).index(client_id)

    def deliver(self, env: Any, msg_type: str, client: str, data: Any) -> None:
        self.handlers[msg_type](environment=env, msg=SimpleNamespace(data=data, node_id=client))


def _master(tmp_path: Path) -> tuple[MasterNode, MasterRunner, Any, Events]:
    runner, events = MasterRunner(), Events()
    env = SimpleNamespace(runner=runner, events=events, stop_timeout=0)
    rt = Runtime(Settings(PROV, LoadConfig(), PROV["urls"], tmp_path / "run" / "history", ("10.0.0.9",),
                          tmp_path / "leases"))
    node = MasterNode(rt, env)
    node.attach()
    return node, runner, env, events


def test_the_master_sets_up_leases_and_collects(tmp_path: Path) -> None:
    node, runner, env, events = _master(tmp_path)
    for client in ("a_1", "b_2"):
        runner.clients[client] = SimpleNamespace(state="running")
    runner.deliver(env, MSG_HELLO, "a_1", {"mono": 1.0})
    kind, setup, to = runner.sent[-1]
    assert kind == MSG_SETUP and to == "a_1" and setup["provision"] == PROV and setup["history"] is True
    assert setup["allow_hosts"] == ["10.0.0.9"] and setup["echo"] == 1.0 and setup["config"]["cart_pool"] == "cart"
    runner.deliver(env, MSG_LEASE, "a_1", {"req": 7, "pool": "cart"})
    assert runner.sent[-1] == (MSG_GRANT, {"req": 7, "terminal": PROV["terminals"]["cart"][0]}, "a_1")
    runner.deliver(env, MSG_LEASE, "b_2", {"req": 1, "pool": "cart"})
    runner.deliver(env, MSG_LEASE, "b_2", {"req": 2, "pool": "cart"})
    assert runner.sent[-1][1] == {"req": 2, "terminal": None}  # both terminals taken
    runner.deliver(env, MSG_RELEASE, "b_2", {"terminal_id": "T9-1-2"})
    # a_1 streams one sale and ends; b_2 goes silent with an operation in flight
    stream_a = HistoryStream("w0", lambda t, d: runner.deliver(env, t, "a_1", d))
    stream_b = HistoryStream("w1", lambda t, d: runner.deliver(env, t, "b_2", d))
    op = stream_a.start("sale", "w0.u1", {"terminal_no": 1})
    stream_a._batch(encode_lines((stream_a._invoke_record(op),)))
    assert runner.sent[-1] == (MSG_ACK, {"seq": 1}, "a_1")
    op.ok(transaction_no=5)
    stream_a.finish()
    lost = stream_b.start("cash_in", "w1.u1", {"terminal_no": 2})
    stream_b._batch(encode_lines((stream_b._invoke_record(lost),)))
    runner.clients["b_2"].state = "missing"
    events.fire("test_stop", environment=env)
    assert (MSG_FINISH, None, None) in runner.sent
    ops = {o.worker: o for o in load_ops(tmp_path / "run" / "history")}
    assert ops["w0"].outcome == "ok" and ops["w1"].outcome == "info" and "b_2" in ops["w1"].error
    ledger = {r.worker: r for r in read_ledger(tmp_path / "run" / "load_workers.json")}
    assert ledger["w0"].state == "ended" and ledger["w1"].state == "lost" and ledger["w1"].lost_open == 1
    events.fire("quit")


def test_a_worker_reads_the_setup_and_its_clocks() -> None:
    node = WorkerNode.__new__(WorkerNode)
    node.clock_error = 0.0
    same = {"boot_id": "x", "wall": 5.0, "mono": 5.0, "echo": 1.0, "received_mono": 2.0, "received_wall": 2.0}
    from kugeldrill.locustfiles import nodes

    orig = nodes.boot_id
    try:
        nodes.boot_id = lambda: "x"
        assert node._clock_offset(same) == (0.0, 0.0)
        nodes.boot_id = lambda: "y"  # another host: the master's clocks, read half a round trip ago
        wall, mono = node._clock_offset(same)
        assert (wall, mono) == (3.5, 3.5) and node.clock_error == 0.5
    finally:
        nodes.boot_id = orig
    settings = WorkerNode._settings({"provision": PROV, "config": LoadConfig(cart_wait=(0.0, 0.1)).to_dict(),
                                     "allow_hosts": []})
    assert settings.history_dir is None and settings.config.cart_wait == (0.0, 0.1)
    assert settings.urls == {"cart": "http://127.0.0.1:1"}


def test_remote_leases_hand_back_a_late_grant() -> None:
    sent: list[tuple[str, dict]] = []
    leases = RemoteLeases(lambda t, d: sent.append((t, d)))
    leases.on_grant({"req": 99, "terminal": PROV["terminals"]["cart"][0]})  # nobody waits for it
    assert sent == [(MSG_RELEASE, {"terminal_id": "T9-1-1"})]


def test_who_is_a_worker() -> None:
    assert is_worker_command(["locust", "--worker"], {})
    assert is_worker_command(["locust"], {"LOCUST_MODE_WORKER": "true"})
    assert not is_worker_command(["locust", "--processes", "2"], {})
