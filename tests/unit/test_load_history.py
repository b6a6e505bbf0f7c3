"""History shards: invoke/completion pairing, merging, and corrupt-history errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kugeldrill.ground.history import HistoryWriter, merge_shards
from kugeldrill.ground.history_read import HistoryError, load_ops, summarize


def test_writer_pairs_invoke_and_completion(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "history", "w0")
    op = w.invoke("sale", "u1", terminal_no=1, items=[{"item_code": "ITEM001", "quantity": 2}])
    op.ok(transaction_no=7, receipt_no=111112, amount=330)
    w.invoke("sale", "u1", terminal_no=1).fail("POST /api/v1/carts: HTTP 400")
    w.invoke("cash_in", "u2", cash_token="kd-x").info("timeout")
    w.invoke("open", "u3").durable()  # its effect was sent, then the worker died
    w.invoke("close", "u3")  # never reached its effecting request: nothing to record
    w.close()
    lines = [json.loads(x) for x in (tmp_path / "history" / "w0.jsonl").read_text().splitlines()]
    # The durable invoke went out at once; the completed operations waited for their batch,
    # each one's invoke (never made durable) just before its completion.
    assert [(x["type"], x["f"]) for x in lines] == [("invoke", "open"), ("invoke", "sale"), ("ok", "sale"),
                                                    ("invoke", "sale"), ("fail", "sale"), ("invoke", "cash_in"),
                                                    ("info", "cash_in")]
    assert all(x["worker"] == "w0" and "mono" in x and "wall" in x for x in lines)
    assert "error" not in lines[1] and lines[2]["error"] is None
    ops = load_ops(tmp_path / "history")
    assert [o.outcome for o in ops] == ["ok", "fail", "info", None]
    assert ops[0].value["transaction_no"] == 7 and ops[0].value["items"][0]["quantity"] == 2
    assert lines[1]["value"] == {"terminal_no": 1, "items": [{"item_code": "ITEM001", "quantity": 2}]}
    assert lines[2]["value"] == {"terminal_no": 1, "items": [{"item_code": "ITEM001", "quantity": 2}],
                                 "transaction_no": 7, "receipt_no": 111112, "amount": 330}  # all it knew
    assert ops[0].complete_mono is not None and ops[0].complete_mono >= ops[0].invoke_mono
    assert ops[1].error == "POST /api/v1/carts: HTTP 400"
    assert summarize(ops)["sale"] == {"ok": 1, "fail": 1, "info": 0, "pending": 0}


def test_completing_twice_is_refused(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path, "w0")
    op = w.invoke("sale", "u1")
    op.ok()
    with pytest.raises(HistoryError, match="completed twice"):
        op.info("late")


def test_merge_orders_by_monotonic_time_and_keeps_every_line(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    a, b = HistoryWriter(hist, "w0"), HistoryWriter(hist, "w1")
    ops = []
    for i in range(20):
        writer = a if i % 2 else b
        op = writer.invoke("sale", f"u{i}")
        ops.append(op)
    for op in ops:
        op.ok()
    a.close(), b.close()
    merged = merge_shards(hist)
    assert merged == tmp_path / "history.jsonl"
    recs = [json.loads(x) for x in merged.read_text().splitlines()]
    assert len(recs) == 40
    monos = [r["mono"] for r in recs]
    assert monos == sorted(monos)
    loaded = load_ops(merged)
    assert sorted(o.op_id for o in loaded) == sorted(o.op_id for o in ops)
    assert {o.worker for o in loaded} == {"w0", "w1"}


def test_torn_last_line_is_dropped(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h", "w0")
    w.invoke("sale", "u1").ok()
    w.close()
    with open(tmp_path / "h" / "w0.jsonl", "a") as fh:
        fh.write('{"type": "invoke", "op": "abc", "f"')  # crash mid-write
    assert len(load_ops(merge_shards(tmp_path / "h"))) == 1


@pytest.mark.parametrize(
    "lines, message",
    [
        ([{"type": "ok", "op": "x", "mono": 1, "wall": 1}], "never invoked"),
        ([{"type": "invoke", "op": "x", "mono": 1, "wall": 1}] * 2, "invoked twice"),
        ([{"type": "invoke", "op": "x", "mono": 1, "wall": 1}, {"type": "ok", "op": "x", "mono": 2, "wall": 2},
          {"type": "fail", "op": "x", "mono": 3, "wall": 3}], "completed twice"),
        ([{"type": "weird", "op": "x"}], "malformed"),
    ],
)
def test_corrupt_histories_are_named(tmp_path: Path, lines: list[dict], message: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(HistoryError, match=message):
        load_ops(path)


def test_missing_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="does not exist"):
        merge_shards(tmp_path / "nope")
    with pytest.raises(HistoryError, match="does not exist"):
        load_ops(tmp_path / "nope.jsonl")


def test_shards_from_separate_processes_do_not_interleave(tmp_path: Path) -> None:
    """Two forked writers append to their own shards; the merge holds every op once."""
    hist = tmp_path / "history"
    pids = []
    for idx in range(2):
        pid = os.fork()
        if pid == 0:  # child
            try:
                w = HistoryWriter(hist, f"w{idx}")
                for _ in range(200):
                    w.invoke("cash_in", "u1").ok()
                w.close()
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    ops = load_ops(merge_shards(hist))
    assert len(ops) == 400 and len({o.op_id for o in ops}) == 400
    assert all(o.outcome == "ok" for o in ops)


@pytest.fixture(autouse=True)
def _own_journals(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's journals where no other test's `sweep` finds them: a test that kills a
    writer asserts what its own reading recovers, and tests run side by side."""
    from kugeldrill.ground import journal

    with tempfile.TemporaryDirectory(dir=journal.SHM if journal.SHM.is_dir() else None) as shm:
        monkeypatch.setattr(journal, "SHM", Path(shm))
        yield Path(shm)


def _in_a_process_that_dies(work) -> None:
    """Run `work(die)` in a child; `die()` ends it on the spot, closing nothing (like SIGKILL)."""
    pid = os.fork()
    if pid == 0:
        try:
            work(lambda: os._exit(0))
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_durable_invoke_outlives_its_process_and_completions_are_batched(tmp_path: Path) -> None:
    """Write-ahead: durable() puts the invoke (with what the body learnt so far) where the
    process's death cannot take it; a completion still waiting for its batch dies with the
    process, which leaves its operation without an outcome (info), never absent."""

    def work(die) -> None:
        w = HistoryWriter(tmp_path, "w0")
        assert w.invoke("sale", "u0").done is None  # never durable, never completed: no line
        op = w.invoke("sale", "u1", terminal_no=1)
        op.value["amount"] = 330  # learnt from the subtotal, before the bill
        op.durable()
        op.ok(transaction_no=9)  # waits in memory for its batch
        die()

    _in_a_process_that_dies(work)
    assert (tmp_path / "w0.jsonl").read_text() == ""  # nothing reached the shard file itself
    (op,) = load_ops(tmp_path)  # the dead process's journal is put back first
    assert op.outcome is None and op.value == {"terminal_no": 1, "amount": 330}
    assert not (tmp_path / "w0.jsonl.journal").exists()
    assert len((tmp_path / "w0.jsonl").read_text().splitlines()) == 1  # recovered once, not twice
    assert len(load_ops(tmp_path)) == 1


def test_batches_reach_the_shard_and_a_closed_writer_leaves_no_journal(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path, "w0")
    w.FLUSH_SECONDS = 0.0  # every durable line drains the journal (it waits up to 0.25 s otherwise)
    for i in range(3 * HistoryWriter.FLUSH_OPS):
        op = w.invoke("cash_in", f"u{i}", amount=i)
        op.durable()
        op.ok()
    assert len((tmp_path / "w0.jsonl").read_text().splitlines()) >= 2 * HistoryWriter.FLUSH_OPS
    w.close()
    ops = load_ops(tmp_path)
    assert [o.value["amount"] for o in ops] == list(range(3 * HistoryWriter.FLUSH_OPS))
    assert {o.outcome for o in ops} == {"ok"} and not (tmp_path / "w0.jsonl.journal").exists()


def test_completions_wait_for_a_full_batch_and_durable_invokes_do_not(tmp_path: Path) -> None:
    """An invoke made durable is in the shard's journal at once; completions are encoded and
    written together once FLUSH_OPS operations are waiting, after the invokes before them."""
    from kugeldrill.ground.journal import _DATA

    w = HistoryWriter(tmp_path, "w0")
    ops = [w.invoke("cash_in", f"u{i}", amount=i) for i in range(HistoryWriter.FLUSH_OPS)]
    for op in ops:
        op.durable()
    assert w._journal is not None
    journal = bytes(w._journal._mm[_DATA:_DATA + w._journal._used]).splitlines()
    assert [json.loads(x)["value"]["amount"] for x in journal] == list(range(HistoryWriter.FLUSH_OPS))
    for op in ops[:-1]:
        op.ok(change=0)
    assert (tmp_path / "w0.jsonl").read_text() == ""  # one operation short of a batch
    ops[-1].ok(change=0)
    lines = [json.loads(x) for x in (tmp_path / "w0.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines] == ["invoke"] * HistoryWriter.FLUSH_OPS + ["ok"] * HistoryWriter.FLUSH_OPS
    assert [x["op"] for x in lines[HistoryWriter.FLUSH_OPS:]] == [op.op_id for op in ops]
    assert all(x["value"] == {"amount": i, "change": 0} for i, x in enumerate(lines[HistoryWriter.FLUSH_OPS:]))
    assert w._journal._used == 0  # the batch's write took the journal with it
    w.close()


def test_a_drain_cut_short_by_death_is_recovered_exactly_once(tmp_path: Path) -> None:
    """The owner wrote the journal into the file and died before it marked the journal empty."""
    from kugeldrill.ground.journal import Journal, recover

    def work(die) -> None:
        w = HistoryWriter(tmp_path, "w0")
        for i in range(3):
            w.invoke("open", f"u{i}").durable()
        journal = w._journal
        assert isinstance(journal, Journal)
        from kugeldrill.ground.journal import _DATA

        os.write(w._fd, journal._mm[_DATA:_DATA + journal._used])  # the drain's write, and no more
        die()

    _in_a_process_that_dies(work)
    assert len((tmp_path / "w0.jsonl").read_text().splitlines()) == 3
    assert recover(tmp_path / "w0.jsonl") > 0
    assert [o.user for o in load_ops(tmp_path)] == ["u0", "u1", "u2"]


def test_an_old_waiting_line_goes_out_with_the_next_completion(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path, "w0")
    w.FLUSH_SECONDS = 0.0
    w.invoke("open", "u1").ok()
    assert len((tmp_path / "w0.jsonl").read_text().splitlines()) == 2
    w.close()


def test_lines_keep_their_invoke_time_and_take_the_clock_offset(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path, "w0")
    w.clock_offset = (1000.0, 50.0)
    op = w.invoke("sale", "u1")
    wall, mono = op.wall, op.mono
    op.ok()
    w.close()
    inv, ok = (json.loads(x) for x in (tmp_path / "w0.jsonl").read_text().splitlines())
    assert inv["wall"] == wall + 1000.0 and inv["mono"] == mono + 50.0
    assert ok["mono"] >= inv["mono"] and "error" in ok and "error" not in inv


def test_history_line_escapes_strings() -> None:
    from kugeldrill.ground.history import history_line

    line = history_line("fail", "op1", "sale", "w0", 'u"1', 1.5, 2.5, {"a": 1}, 'bad "x"\n')
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"type": "fail", "op": "op1", "f": "sale", "worker": "w0", "user": 'u"1',
                                "wall": 1.5, "mono": 2.5, "value": {"a": 1}, "error": 'bad "x"\n'}


def test_the_completion_is_the_last_word_on_the_value(tmp_path: Path) -> None:
    """A figure the subtotal lacked (named in `missing`, written with the invoke before the bill)
    that the bill then carried must not stay missing: the completion's value replaces it."""
    w = HistoryWriter(tmp_path, "w0")
    op = w.invoke("sale", "u1", terminal_no=1)
    op.value.update(amount=None, missing=["totalAmountWithTax"])
    op.durable()
    op.value.update(amount=330.0)
    op.value.pop("missing")
    op.ok(transaction_no=8)
    w.close()
    (loaded,) = load_ops(tmp_path)
    assert loaded.value == {"terminal_no": 1, "amount": 330.0, "transaction_no": 8}


def test_a_value_the_encoder_cannot_take_as_it_is_is_still_written() -> None:
    from kugeldrill.ground.history import history_line

    line = json.loads(history_line("ok", "o", "sale", "w0", "u", 1.0, 2.0, {1: "x", "d": Decimal("1.5")}))
    assert line["value"] == {"1": "x", "d": "1.5"}


def test_a_batch_holding_values_the_encoder_has_no_form_for_is_still_written(tmp_path: Path) -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no")

    w = HistoryWriter(tmp_path, "w0")
    w.invoke("sale", "u1", amount=Decimal("1.5")).ok(odd={(1, 2): Odd()}, bad=Unprintable())
    w.invoke("sale", "u2").ok()
    w.close()
    first, second = load_ops(tmp_path)
    assert first.value["amount"] == "1.5" and first.value["odd"] == {"(1, 2)": "odd"}
    assert first.value["bad"].startswith("<Unprintable") and second.outcome == "ok"  # one odd value loses no line


def test_a_dead_processs_journal_is_swept_into_its_shard_by_the_next_writer(tmp_path: Path) -> None:
    def work(die) -> None:
        w = HistoryWriter(tmp_path / "a", "w0")
        w.invoke("open", "u1").durable()
        die()

    _in_a_process_that_dies(work)
    assert (tmp_path / "a" / "w0.jsonl.journal").exists()
    HistoryWriter(tmp_path / "b", "w0").close()  # any journal opened sweeps the dead ones
    assert not (tmp_path / "a" / "w0.jsonl.journal").exists()
    assert [o.user for o in load_ops(tmp_path / "a")] == ["u1"]


def test_a_dead_processs_journal_found_by_several_processes_at_once_is_put_back_once(tmp_path: Path) -> None:
    """Every reader of a run folder and every writer opening a journal sweeps dead owners'
    journals: several at once must put it back exactly once (a lock on the journal), never
    twice, and never leave the shard cut back to its last drain by a late one."""
    from kugeldrill.ground.journal import sweep

    def work(die) -> None:
        w = HistoryWriter(tmp_path, "w0")
        for i in range(1000):
            w.invoke("open", f"u{i}").durable()
        die()

    _in_a_process_that_dies(work)
    start = tmp_path / "go"
    pids = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            try:
                while not start.exists():
                    pass
                sweep()
            finally:
                os._exit(0)
        pids.append(pid)
    start.touch()
    for pid in pids:
        os.waitpid(pid, 0)
    assert [o.user for o in load_ops(tmp_path)] == [f"u{i}" for i in range(1000)]


def test_a_writer_dropped_without_close_still_writes_its_durable_lines(tmp_path: Path) -> None:
    import gc

    w = HistoryWriter(tmp_path, "w0")
    w.invoke("open", "u1").durable()
    del w
    gc.collect()
    assert [o.user for o in load_ops(tmp_path)] == ["u1"]
    assert not (tmp_path / "w0.jsonl.journal").exists()
