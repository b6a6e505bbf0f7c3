"""A worker's history stream and the master's collector, wired by a fake channel that can
lose, repeat and reorder messages (no Locust: the node wiring is tested end to end in
tests/integration/test_load_workers.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kugeldrill.ground.history_read import load_ops
from kugeldrill.locustfiles.collector import HistoryCollector, ledger_notes, read_ledger
from kugeldrill.locustfiles.stream import MSG_BATCH, MSG_END, HistoryNotDurable, HistoryStream


class Channel:
    """worker -> master messages, delivered at once unless `drop` says otherwise; acks back."""

    def __init__(self, collector: HistoryCollector, client: str = "host-a_1", index: int = 0) -> None:
        self.collector, self.client, self.index = collector, client, index
        self.stream: HistoryStream | None = None
        self.drop: set[int] = set()  # batch seqs lost once
        self.held: list[dict[str, Any]] = []  # batches delayed until release()
        self.hold = False
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, msg_type: str, data: dict[str, Any]) -> None:
        self.sent.append((msg_type, data))
        if msg_type == MSG_BATCH:
            if data["seq"] in self.drop:
                self.drop.discard(data["seq"])
                return
            if self.hold:
                self.held.append(data)
                return
            self._deliver(data)
        elif msg_type == MSG_END:
            self.collector.on_end(self.client, self.index, data["seq"], data["operations"])

    def _deliver(self, data: dict[str, Any]) -> None:
        ack = self.collector.on_batch(self.client, self.index, data["seq"], data["lines"])
        assert self.stream is not None
        self.stream.on_ack(ack)

    def release(self) -> None:
        self.hold = False
        for data in self.held:
            self._deliver(data)
        self.held.clear()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _pair(tmp_path: Path, **kw: Any) -> tuple[HistoryStream, HistoryCollector, Channel, Clock]:
    collector = HistoryCollector(tmp_path / "history", tmp_path / "load_workers.json")
    channel = Channel(collector)
    clock = Clock()
    stream = HistoryStream("w0", channel.send, clock=clock, **kw)
    channel.stream = stream
    collector.stream(channel.client, channel.index)
    return stream, collector, channel, clock


def _sale(stream: HistoryStream, n: int) -> None:
    op = stream.invoke("sale", "w0.u1", terminal_no=n)
    op.durable()
    op.ok(transaction_no=n)


def test_batches_arrive_in_order_and_the_shard_holds_every_operation(tmp_path: Path) -> None:
    stream, collector, channel, _ = _pair(tmp_path)
    for n in range(10):
        _sale(stream, n)
    stream.finish()
    assert collector.unfinished() == [] and collector.finish() == []
    ops = load_ops(tmp_path / "history")
    assert [o.value["transaction_no"] for o in ops] == list(range(10)) and {o.outcome for o in ops} == {"ok"}
    assert stream.unacked == 0 and "10 operations" in stream.summary() and "all acknowledged" in stream.summary()
    (rec,) = read_ledger(tmp_path / "load_workers.json")
    assert rec.state == "ended" and rec.operations == 10 and rec.worker == "w0" and rec.host == "host-a"


def test_a_lost_batch_is_seen_held_behind_and_resent(tmp_path: Path) -> None:
    stream, collector, channel, clock = _pair(tmp_path)
    channel.drop = {2}
    ops = [stream.invoke("cash_in", "w0.u1", amount=i) for i in range(3)]
    ops[0].durable()  # batch 1
    stream.durable_timeout = 0.01
    with pytest.raises(HistoryNotDurable, match="batch 2"):
        ops[1].durable()  # batch 2 is lost: not acknowledged, the effect must not be sent
    with pytest.raises(HistoryNotDurable, match="batch 3"):
        ops[2].durable()  # batch 3 arrives, but waits behind the gap: not acknowledged either ...
    assert stream.acked == 1 and collector.unfinished()[0].last_seq == 1
    stream.tick()  # ... until the resend
    assert stream.acked == 1
    clock.t += stream.RESEND_SECONDS
    stream.tick()
    assert stream.acked == 3 and stream.unacked == 0
    for op in ops:
        op.fail("history not durable")  # what the user records when durable() raised
    stream.finish()
    assert collector.finish() == []
    assert [o.outcome for o in load_ops(tmp_path / "history")] == ["fail"] * 3
    (rec,) = read_ledger(tmp_path / "load_workers.json")
    assert rec.batches == 4 and rec.duplicates == 1  # batch 3 came twice: held, then resent


def test_a_repeated_batch_is_written_once(tmp_path: Path) -> None:
    stream, collector, channel, clock = _pair(tmp_path)
    channel.hold = True
    op = stream.invoke("open", "w0.u1")
    stream.durable_timeout = 0.01
    with pytest.raises(HistoryNotDurable):
        op.durable()
    clock.t += stream.RESEND_SECONDS
    stream.tick()  # resent while the first copy is still on its way
    channel.release()
    op.ok()
    stream.finish()
    collector.finish()
    assert len(load_ops(tmp_path / "history")) == 1
    assert read_ledger(tmp_path / "load_workers.json")[0].duplicates == 1


def test_a_lost_worker_leaves_its_open_operations_as_info_naming_it(tmp_path: Path) -> None:
    stream, collector, channel, _ = _pair(tmp_path)
    _sale(stream, 1)
    inflight = stream.invoke("sale", "w0.u2", terminal_no=2, amount=330)
    inflight.durable()  # the bill was sent; then the worker died
    stream.invoke("sale", "w0.u3").ok()  # completed but never sent: its effect was never requested
    # no finish(): the worker is gone
    (lost,) = collector.finish()
    assert lost.state == "lost" and lost.lost_open == 1
    ops = {o.value.get("terminal_no"): o for o in load_ops(tmp_path / "history")}
    assert ops[1].outcome == "ok" and ops[2].outcome == "info" and set(ops) == {1, 2}
    assert "w0 (host host-a" in ops[2].error and "lost after its history batch" in ops[2].error
    assert ops[2].value == {"terminal_no": 2, "amount": 330}  # what it would have moved
    notes = ledger_notes(read_ledger(tmp_path / "load_workers.json"), t0_wall=lost.first_wall or 0.0)
    assert len(notes) == 1 and "w0 (host host-a, Locust client host-a_1) was lost" in notes[0]
    assert "1 of its operations had no recorded outcome" in notes[0]
    assert collector.on_batch("host-a_1", 0, 9, []) == lost.last_seq  # too late: not in the history
    collector.write_ledger()
    assert read_ledger(tmp_path / "load_workers.json")[0].late == 1


def test_behind_a_gap_that_never_closes_invokes_count_and_orphan_completions_do_not(tmp_path: Path) -> None:
    collector = HistoryCollector(tmp_path / "h", tmp_path / "l.json")
    from kugeldrill.ground.history import history_line

    def line(kind: str, op: str) -> str:
        return history_line(kind, op, "sale", "w3", "w3.u1", 1.0, 1.0, {})

    assert collector.on_batch("c_9", 3, 1, [line("invoke", "a")]) == 1
    assert collector.on_batch("c_9", 3, 3, [line("ok", "b"), line("invoke", "c")]) == 1  # batch 2 never comes
    (lost,) = collector.finish()
    assert lost.dropped_lines == 1 and lost.lost_open == 2
    recs = [json.loads(x) for x in (tmp_path / "h" / "w3.jsonl").read_text().splitlines()]
    assert [(r["type"], r["op"]) for r in recs] == [("invoke", "a"), ("invoke", "c"), ("info", "a"), ("info", "c")]


def test_a_worker_that_never_sent_a_batch_is_still_in_the_ledger(tmp_path: Path) -> None:
    collector = HistoryCollector(tmp_path / "h", tmp_path / "l.json")
    collector.stream("quiet_7", 2)
    (lost,) = collector.finish()
    assert lost.worker == "w2" and lost.last_seq == 0 and lost.lost_open == 0
    assert read_ledger(tmp_path / "nope.json") is None
