"""The streaming reader (publications and applications folded as they are read) gives the
same verdicts, counts and examples as records converted one by one (`iter_records`, the
path of the diagnostics endpoints and the live tail), on histories of many shapes."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from kugeldrill.checkers import CheckParams, run_all
from kugeldrill.checkers.adapters.standin import iter_records, read_events_files
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG
from kugeldrill.checkers.params import FanoutPolicy

SUBS = {TOPIC_TRANLOG: ("report", "journal", "stock"), TOPIC_CASHLOG: ("report", "journal"),
        TOPIC_OPENCLOSELOG: ("report", "journal")}


def _pk(topic: str, i: int) -> dict[str, Any]:
    base = {"tenant_id": "T1", "store_code": "S1", "terminal_no": i % 3 + 1}
    if topic == TOPIC_TRANLOG:
        return {**base, "transaction_no": i, "transaction_type": 101}
    if topic == TOPIC_CASHLOG:
        return {**base, "generate_date_time": f"2026-01-01T00:00:{i % 60:02d}", "description": f"drill kd{i:x}"}
    return {**base, "business_date": "20260101", "open_counter": i, "operation": "open"}


def _publish(i: int, topic: str, *, eid: str | None = None, outcome: str = "ok", attempt: str = "initial",
             mono: float | None = None) -> dict[str, Any]:
    m = 100.0 + i if mono is None else mono
    return {"ts": 1e9 + m, "mono": m, "service": "cart" if topic == TOPIC_TRANLOG else "terminal",
            "kind": "publish", "event_id": f"e{i}" if eid is None else eid, "pubsub": "p", "topic": topic,
            "outcome": outcome, "attempt": attempt, "payload_keys": _pk(topic, i)}


def _applied(i: int, topic: str, sub: str, *, eid: str | None = None, dedup: str = "miss", dt: float = 0.5,
             attempt: int = 1) -> dict[str, Any]:
    m = 100.0 + i + dt
    rec = {"ts": 1e9 + m, "mono": m, "service": sub, "kind": "applied", "topic": topic, "subscriber": sub,
           "attempt": attempt, "dedup": dedup, "payload_keys": _pk(topic, i), "row": i}
    if eid != "":
        rec["event_id"] = f"e{i}" if eid is None else eid
    return rec


def _healthy(n: int = 30) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        topic = (TOPIC_TRANLOG, TOPIC_TRANLOG, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG)[i % 4]
        out.append(_publish(i, topic))
        out.append({"ts": 1e9 + 100 + i, "mono": 100.0 + i, "service": out[-1]["service"], "kind": "breaker_call",
                    "breaker": "dapr", "state": "closed", "op": "publish", "outcome": "ok"})
        for sub in SUBS[topic]:
            out.append(_applied(i, topic, sub))
            out.append({"ts": 1e9 + 100.6 + i, "mono": 100.6 + i, "service": sub, "kind": "marked",
                        "event_id": f"e{i}", "subscriber": sub, "ok": True, "started_mono": 100.55 + i})
    return out


def _shape(name: str) -> list[dict[str, Any]]:
    ev = _healthy()
    if name == "healthy":
        return ev
    if name == "missing":
        return [r for r in ev if not (r["kind"] == "applied" and r["event_id"] == "e4" and r["subscriber"] == "stock")]
    if name == "duplicates":
        return ev + [_applied(5, TOPIC_TRANLOG, "report", dedup="error", dt=3.0, attempt=2),
                     _applied(8, TOPIC_CASHLOG, "journal", dt=4.0, attempt=2),  # its mark was written: a violation
                     _applied(9, TOPIC_TRANLOG, "stock", dedup="db_existing", dt=5.0)]
    if name == "unknown_ids":
        return ev + [_applied(90, TOPIC_TRANLOG, "report", eid="never-published"),
                     _applied(90, TOPIC_TRANLOG, "report", eid="never-published", dt=1.0),
                     _applied(91, TOPIC_TRANLOG, "journal", eid=""),
                     _applied(91, TOPIC_TRANLOG, "journal", eid="", dt=1.0),
                     _publish(92, TOPIC_TRANLOG, eid=""),
                     _applied(1, TOPIC_TRANLOG, "report", eid="e1x") | {"topic": TOPIC_CASHLOG}]
    if name == "republish":
        ev = [r for r in ev if not (r["kind"] == "publish" and r["event_id"] in ("e0", "e2"))]
        ev = [r for r in ev if not (r["kind"] == "applied" and r["event_id"] == "e6")]
        return ev + [_publish(0, TOPIC_TRANLOG, outcome="failed"), _publish(0, TOPIC_TRANLOG, attempt="republish", mono=400.0),
                     _publish(2, TOPIC_CASHLOG, outcome="rejected_open"),
                     _publish(6, TOPIC_OPENCLOSELOG, outcome="rejected_open"),
                     _publish(6, TOPIC_OPENCLOSELOG, outcome="failed", attempt="republish", mono=500.0)]
    if name == "unexpected_subscriber":
        return ev + [_applied(2, TOPIC_CASHLOG, "stock")]
    raise AssertionError(name)


def _write(tmp_path: Path, events: list[dict[str, Any]], order: tuple[str, ...]) -> dict[str, Path]:
    lines: dict[str, list[str]] = {app: [] for app in order}
    for rec in events:
        lines.setdefault(rec["service"], []).append(json.dumps(rec, separators=(",", ":")))
    files = {}
    for app in order:
        path = tmp_path / f"{app}.jsonl"
        path.write_text("".join(line + "\n" for line in lines[app]))
        files[app] = path
    return files


def _reference(files: dict[str, Path]) -> list[dict[str, Any]]:
    """The records one by one, files in the order the streaming reader takes them."""
    out = []
    for path in files.values():
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out


def _results(inputs: Any) -> list[dict[str, Any]]:
    out = []
    for r in run_all(inputs, CheckParams(fanout=FanoutPolicy(use_history=False))):
        d = r.to_dict()
        d["details"].pop("provenance", None)
        out.append(d)
    return out


ORDER = ("cart", "terminal", "journal", "report", "stock")


@pytest.mark.parametrize("shape", ["healthy", "missing", "duplicates", "unknown_ids", "republish",
                                   "unexpected_subscriber"])
def test_streamed_events_give_the_records_verdicts(tmp_path: Path, shape: str):
    files = _write(tmp_path, _shape(shape), ORDER)
    streamed = read_events_files(files)
    reference = iter_records(_reference(files))
    assert len(streamed.applications) == len(reference.applications)
    assert len(streamed.publications) == len(reference.publications)
    assert list(streamed.publications) == reference.publications
    assert list(streamed.applications) == reference.applications
    assert streamed.mark_writes == reference.mark_writes and streamed.breaker_calls == reference.breaker_calls
    assert _results(streamed) == _results(reference)


def test_expected_verdicts_of_the_shapes(tmp_path: Path):
    """The shapes do what they say (so the equality above compares failures, not only passes)."""
    verdicts = {}
    for shape in ("healthy", "missing", "duplicates", "unknown_ids", "republish"):
        sub = tmp_path / shape
        sub.mkdir()
        res = {r.checker: r for r in run_all(read_events_files(_write(sub, _shape(shape), ORDER)))}
        verdicts[shape] = (res["fanout"].valid, res["duplicates"].valid)
    assert verdicts["healthy"] == (True, True)
    assert verdicts["missing"][0] is False
    assert verdicts["duplicates"][1] is False
    assert verdicts["unknown_ids"] == (False, False)
    assert verdicts["republish"][0] is False


def test_subscribers_files_before_the_publishers_give_the_same_verdicts(tmp_path: Path):
    events = _shape("duplicates")
    first = read_events_files(_write(tmp_path, events, ("stock", "report", "journal", "cart", "terminal")))
    later = tmp_path / "b"
    later.mkdir()
    usual = read_events_files(_write(later, events, ORDER))
    a, b = _results(first), _results(usual)
    for ra, rb in zip(a, b):
        assert (ra["checker"], ra["valid"], ra["counts"]) == (rb["checker"], rb["valid"], rb["counts"])


def test_odd_lines_are_read_like_the_records_reader(tmp_path: Path):
    """A value of an unexpected type, a blank line and a torn last line."""
    events = _shape("healthy")
    files = _write(tmp_path, events, ORDER)
    with open(files["report"], "a") as fh:
        fh.write("\n" + json.dumps(_applied(3, TOPIC_TRANLOG, "report", dt=2.0) | {"mono": "105.5", "attempt": "2"})
                 + "\n" + '{"ts": 1, "mono": 2, "kind": "appl')
    streamed = read_events_files(files)
    from kugeldrill.ground.jsonl import read_jsonl
    reference = iter_records([r for p in files.values() for r in read_jsonl(p)])
    assert list(streamed.applications) == reference.applications
    assert _results(streamed) == _results(reference)


def test_republished_event_counts_once_and_recovers(tmp_path: Path):
    res = {r.checker: r for r in run_all(read_events_files(_write(tmp_path, _shape("republish"), ORDER)))}
    fan = res["fanout"].counts
    assert fan["matrix"][TOPIC_TRANLOG]["report"]["recovered"] == 1  # e0: failed, then republished
    assert fan["events"] == 30
    assert fan["matrix"][TOPIC_CASHLOG]["journal"]["recovered"] == 1  # e2: rejected while OPEN, yet applied
    assert fan["matrix"][TOPIC_CASHLOG]["report"]["missing"] == 1  # e6: published, never applied


# ------------------------------------------------------------------ the history


def _history_lines(shape: str) -> list[dict[str, Any]]:
    def line(kind: str, op: str, mono: float, **value: Any) -> dict[str, Any]:
        rec = {"type": kind, "op": op, "f": "sale", "worker": "w1", "user": "u1", "wall": 1e9 + mono, "mono": mono,
               "value": value}
        if kind != "invoke":
            rec["error"] = None if kind == "ok" else "boom"
        return rec

    out = []
    for i in range(40):
        out.append(line("invoke", f"op{i}", i, tenant_id="T1", store_code="S1", terminal_no=1))
        if i % 7 == 3:
            continue  # in flight when the worker died: outcome None
        kind = ("ok", "ok", "fail", "info")[i % 4]
        out.append(line(kind, f"op{i}", i + 0.5, transaction_no=i, amount=110, items=[{"item_code": "x", "quantity": 1}]))
    if shape == "unsorted":  # shards merged out of order: ops come back ordered by invoke time
        out = out[20:] + out[:20]
    if shape == "interleaved":  # completions long after their invokes
        out = [r for r in out if r["type"] == "invoke"] + [r for r in out if r["type"] != "invoke"]
    return out


@pytest.mark.parametrize("shape", ["plain", "unsorted", "interleaved"])
def test_history_columns_give_load_ops_records(tmp_path: Path, shape: str):
    from kugeldrill.checkers.adapters.history import load_history
    from kugeldrill.ground.history_read import load_ops

    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _history_lines(shape)))
    cols = load_history(path).ops
    ops = load_ops(path)
    assert list(cols) == ops and len(cols) == 40
    assert [cols[i] for i in range(len(cols))] == ops
    assert list(cols.rows("op_id", "outcome", "value", "complete_mono")) == [
        (o.op_id, o.outcome, o.value, o.complete_mono) for o in ops]
    assert sum(o.outcome is None for o in ops) == 6 and {o.outcome for o in ops} == {None, "ok", "fail", "info"}


@pytest.mark.parametrize("lines, match", [
    ([{"type": "invoke", "op": "x", "mono": 1, "wall": 1}, {"type": "ok", "op": "x", "mono": 2, "wall": 2},
      {"type": "invoke", "op": "x", "mono": 3, "wall": 3}], "invoked twice"),
    ([{"type": "ok", "op": "x", "mono": 1, "wall": 1}, {"type": "invoke", "op": "x", "mono": 2, "wall": 2}],
     "never invoked"),
    ([{"type": "invoke", "op": "x", "mono": 1, "wall": 1}, {"type": "ok", "op": "x", "mono": 2, "wall": 2},
      {"type": "info", "op": "x", "mono": 3, "wall": 3}], r"completed twice \(ok, then info\)"),
    ([{"type": "invoke", "op": "x", "wall": 1}], "mono"),
])
def test_corrupt_histories_are_named(tmp_path: Path, lines: list[dict[str, Any]], match: str):
    from kugeldrill.checkers.adapters.history import load_history
    from kugeldrill.ground.history_read import load_ops

    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(Exception, match=match):
        load_ops(path)
    inp = load_history(path)
    assert not inp.has("ops") and match.split("\\")[0].split(" (")[0] in inp.missing["ops"]


def test_history_values_stay_on_disk_until_asked(tmp_path: Path):
    """What a large run keeps per operation: columns and two line positions, not the values."""
    from kugeldrill.checkers.adapters.history import load_history

    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _history_lines("plain")))
    cols = load_history(path).ops
    assert not hasattr(cols, "value_completed") and len(cols.invoked_at) == 40
    assert cols[1].value["items"] == [{"item_code": "x", "quantity": 1}]


def test_applications_read_again_stop_where_the_first_read_did(tmp_path: Path):
    """A subscriber still writing after the checkers read its file: the records read again
    (duplicate groups, reports) are the ones that were counted."""
    files = _write(tmp_path, _shape("healthy"), ORDER)
    inputs = read_events_files(files)
    counted = len(inputs.applications)
    with open(files["report"], "a") as fh:
        fh.write(json.dumps(_applied(1, TOPIC_TRANLOG, "report", dt=9.0)) + "\n")
    assert len(list(inputs.applications)) == counted


def test_publications_replaced_after_reading_are_the_ones_judged(tmp_path: Path):
    """An adapter (or a test) that sets the publications itself: the applications are
    counted again against them, not against the table the files gave."""
    files = _write(tmp_path, [r for r in _shape("healthy") if r["kind"] != "publish"], ORDER)
    streamed = read_events_files(files)
    reference = iter_records(_reference(files))
    pubs = iter_records([_publish(i, TOPIC_TRANLOG) for i in (0, 1)]).publications
    for inp in (streamed, reference):
        inp.publications = list(pubs)
    assert _results(streamed) == _results(reference)
    assert {r["checker"]: r["valid"] for r in _results(streamed)}["fanout"] is False  # the others: unexpected


def test_publications_in_a_file_read_after_the_subscribers_are_counted(tmp_path: Path):
    """A publisher the reader does not know by name (its file read last): the applications
    counted before its publications were read are moved onto their rows."""
    events = [r | {"service": "zz-terminal"} if r["service"] == "terminal" else r for r in _shape("duplicates")]
    files = _write(tmp_path, events, ("cart", "journal", "report", "stock", "zz-terminal"))
    streamed = read_events_files(files)
    reference = iter_records(_reference(files))
    a, b = _results(streamed), _results(reference)
    for ra, rb in zip(a, b):
        assert (ra["checker"], ra["valid"], ra["counts"]) == (rb["checker"], rb["valid"], rb["counts"])


def _forked_history(path: Path, monkeypatch: pytest.MonkeyPatch):
    """The history read in a forked child (adapters.aside), however small the file."""
    from kugeldrill.checkers.adapters import aside
    from kugeldrill.checkers.adapters.history import HistoryReading

    monkeypatch.setattr(aside, "MIN_BYTES", 0)
    reading = HistoryReading(path)
    assert reading._aside is not None, "this test needs fork, two cores and no other thread"
    return reading


@pytest.mark.parametrize("shape", ["plain", "unsorted", "interleaved"])
def test_a_history_read_in_a_forked_child_equals_one_read_here(tmp_path: Path, shape: str,
                                                               monkeypatch: pytest.MonkeyPatch):
    from kugeldrill.checkers.adapters.history import load_history

    path = tmp_path / "history.jsonl"
    lines = _history_lines(shape)
    lines[5]["value"] = {"tenant_id": "T1", "store_code": "S1", "terminal_no": 1, "transaction_no": 2}  # lacks figures
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    here = load_history(path)
    there = _forked_history(path, monkeypatch).result()
    assert list(there.ops) == list(here.ops) and len(there.ops) == 40
    for name in ("match_kind", "match_hash", "lacking", "errors"):
        assert getattr(there.ops, name) == getattr(here.ops, name), name
    assert there.notes == here.notes and here.notes and there.sources == here.sources


@pytest.mark.parametrize("lines, match", [
    ([{"type": "invoke", "op": "x", "mono": 1, "wall": 1}, {"type": "ok", "op": "x", "mono": 2, "wall": 2},
      {"type": "info", "op": "x", "mono": 3, "wall": 3}], r"completed twice \(ok, then info\)"),
    ([{"type": "ok", "op": "x", "mono": 1, "wall": 1}, {"type": "invoke", "op": "x", "mono": 2, "wall": 2}],
     "never invoked"),
])
def test_a_corrupt_history_read_in_a_forked_child_is_named_the_same(tmp_path: Path, lines: list[dict[str, Any]],
                                                                    match: str, monkeypatch: pytest.MonkeyPatch):
    from kugeldrill.checkers.adapters.history import load_history

    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    there = _forked_history(path, monkeypatch).result()
    assert not there.has("ops") and there.missing["ops"] == load_history(path).missing["ops"]


def test_a_reading_child_that_dies_makes_the_history_unknown_not_short(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    import os
    import signal

    from kugeldrill.checkers.adapters import history

    def die(emit, path):  # noqa: ANN001 - what a child killed half way leaves
        emit(object())
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(history, "_forward_rows", die)
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _history_lines("plain")))
    there = _forked_history(path, monkeypatch).result()
    assert not there.has("ops") and "ended (exit code -9) before it finished" in there.missing["ops"]


def test_bulk_counting_gives_the_per_row_verdict_in_every_detail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fan-out counts clean rows and matched ok operations column-wise from BULK_FROM events on:
    on a run broken in each way fan-out knows, its result equals the one judged row by row."""
    from kugeldrill.checkers import fanout
    from kugeldrill.checkers.adapters.standin import load_standin_inputs
    from kugeldrill.checkers.synthetic import write_full_fanout_run

    run = write_full_fanout_run(tmp_path / "run", 1500)
    events = run.events_dir
    report = (events / "report.jsonl").read_text().splitlines(keepends=True)
    stock = (events / "stock.jsonl").read_text().splitlines(keepends=True)
    cart = (events / "cart.jsonl").read_text().splitlines(keepends=True)
    terminal = (events / "terminal.jsonl").read_text().splitlines(keepends=True)
    del report[10]  # a missing delivery
    report.append(report[20])  # a duplicated one
    cash = json.loads(terminal[3])
    stock.append(json.dumps({**cash, "kind": "applied", "service": "stock", "subscriber": "stock"}) + "\n")  # unexpected
    failed = json.loads(cart[30])
    cart[30] = json.dumps({**failed, "outcome": "failed"}) + "\n"  # published never, applied anyway: recovered
    skipped = json.loads(cart[40])
    cart[40] = json.dumps({**skipped, "outcome": "rejected_open"}) + "\n"
    eid = skipped["event_id"]
    for name, lines in (("report", report), ("stock", stock)):
        lines[:] = [ln for ln in lines if f'"{eid}"' not in ln]
    journal = [ln for ln in (events / "journal.jsonl").read_text().splitlines(keepends=True) if f'"{eid}"' not in ln]
    for name, lines in (("report", report), ("stock", stock), ("cart", cart), ("journal", journal)):
        (events / f"{name}.jsonl").write_text("".join(lines))
    history = run.history_jsonl.read_text().splitlines(keepends=True)
    fail_op = json.loads(history[101])  # an operation the client was told failed, applied all the same
    history[101] = json.dumps({**fail_op, "type": "fail", "error": "boom"}) + "\n"
    info_op = json.loads(history[201])
    history[201] = json.dumps({**info_op, "type": "info", "error": "timeout"}) + "\n"
    lost = json.loads(history[301])  # an ok sale nobody published
    history[301] = json.dumps({**lost, "value": {**lost["value"], "transaction_no": 10**9}}) + "\n"
    run.history_jsonl.write_text("".join(history))

    inputs = load_standin_inputs(run.root, None)
    bulk = fanout.check_fanout(inputs)
    monkeypatch.setattr(fanout, "BULK_FROM", 10**9)
    inputs.cache.clear()
    one_by_one = fanout.check_fanout(inputs)
    assert bulk.valid is False and bulk.summary == one_by_one.summary
    assert bulk.counts == one_by_one.counts and bulk.examples == one_by_one.examples
    assert set(bulk.counts["failures"]) == {"missing", "unexpected", "missing_publication", "fail_op_applied"}
    assert bulk.counts["history"]["ok_with_event"] > 1000


@pytest.mark.parametrize("chunked", [False, True])
def test_hash_index_compares_strings_where_hashes_clash(monkeypatch: pytest.MonkeyPatch, chunked: bool):
    """Different strings with one 64-bit hash: lookups and `get` answer by the strings, and a
    lookup by hashes alone says it cannot tell (-2); the same with the chunk-local layer."""
    import numpy as np

    from kugeldrill.checkers import columnar, hashindex

    monkeypatch.setattr(hashindex, "hash_of", lambda s: 7 if s != "d" else 9)
    monkeypatch.setattr(hashindex, "hashes", lambda strs: np.array([hashindex.hash_of(s) for s in strs], dtype=np.int64))
    if chunked:
        monkeypatch.setattr(hashindex.HashIndex, "CHUNKS_FROM", 0)
        monkeypatch.setattr(hashindex.HashIndex, "CHUNK", 2)
    col = columnar.StrColumn(["a", "b", "c", "b", "d"])
    index = hashindex.HashIndex(col, hashindex.hashes(list(col)))
    assert (index._chunks is not None) == chunked
    many = ["b", "x", "c", "d", "a"] * 20  # a block large enough for the chunks to be tried
    assert index.lookup(many).tolist() == [1, -1, 2, 4, 0] * 20
    assert index.get("c") == 2 and index.get("x") is None and "a" in index
    assert index.rows_of_hashes(np.array([7, 9, 8] * 30, dtype=np.int64)).tolist() == [-2, 4, -1] * 30
    assert sorted(index.firsts().tolist()) == [0, 1, 2, 4]


def test_a_block_with_lines_of_other_types_is_read_as_text_and_floats(tmp_path: Path):
    """Lines the typed decoder refuses (a number as a name, a time as numeric text) are read
    loosely, as always: names as text, times as floats, in columns as in `load_ops`."""
    from kugeldrill.checkers.adapters.history import load_history
    from kugeldrill.ground.history_read import load_ops

    lines = _history_lines("plain")
    lines[2] |= {"user": 7, "wall": "12.5", "f": "sale"}
    lines[3] |= {"mono": 4}
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    ops = load_ops(path)
    assert (ops[1].user, ops[1].invoke_wall, type(ops[1].complete_mono)) == ("7", 12.5, float)
    assert list(load_history(path).ops) == ops


def test_chunk_local_lookups_equal_whole_index_ones(monkeypatch: pytest.MonkeyPatch):
    """Blocks in position order, scattered, repeated and with absent strings: the chunk-local
    layer answers what the whole index answers (repeated strings: their first position)."""
    import random

    from kugeldrill.checkers import columnar, hashindex

    strings = [f"e{i}" for i in range(5000)] + ["e7", "e4100"]  # two held twice
    col = columnar.StrColumn(strings)
    whole = hashindex.HashIndex(col, hashindex.hashes(strings))
    monkeypatch.setattr(hashindex.HashIndex, "CHUNKS_FROM", 0)
    monkeypatch.setattr(hashindex.HashIndex, "CHUNK", 256)
    monkeypatch.setattr(hashindex, "_PIECE", 100)  # a block of 300 in three pieces
    local = hashindex.HashIndex(col, hashindex.hashes(strings))
    assert whole._chunks is None and local._chunks is not None
    rng = random.Random(3)
    wanted = [f"e{i}" for i in range(0, 5000, 3)]
    blocks = [wanted[i:i + 300] for i in range(0, len(wanted), 300)]
    blocks += [rng.sample(strings, 200) + ["nope", "e7", "e4100"] for _ in range(5)] + [list(reversed(wanted))]
    for block in blocks:
        assert local.lookup(block).tolist() == whole.lookup(block).tolist()
    assert local.lookup(["e7", "e4100"] * 40).tolist() == [7, 4100] * 40


def _shared_with_a_fork(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """read_events_files with the subscribers' files shared with a forked reader, however small."""
    from kugeldrill.checkers.adapters import aside, standin_stream

    started = []

    class Counting(aside.Aside):
        def __init__(self, *args: Any) -> None:
            started.append(args)
            super().__init__(*args)

    monkeypatch.setattr(aside, "MIN_BYTES", 0)
    monkeypatch.setattr(standin_stream, "PIECE_BYTES", 700)  # every file cut into pieces of a few lines
    monkeypatch.setattr(standin_stream, "Aside", Counting)
    take_front = standin_stream._Claims.take_front

    def after_the_reader_took_one(claims: Any) -> int | None:
        """This process starts once the forked reader claimed a piece (else, with files this
        small, it may read them all before the reader starts)."""
        deadline = time.monotonic() + 10
        while claims.boundary() == claims.n and time.monotonic() < deadline:
            time.sleep(0.001)
        return take_front(claims)

    monkeypatch.setattr(standin_stream._Claims, "take_front", after_the_reader_took_one)
    inputs = read_events_files(files)
    assert started, "this test needs fork, two cores and no other thread"
    return inputs


@pytest.mark.parametrize("shape", ["healthy", "duplicates", "unknown_ids", "republish", "unexpected_subscriber"])
def test_subscribers_files_shared_with_a_forked_reader_give_the_same_records(tmp_path: Path, shape: str,
                                                                              monkeypatch: pytest.MonkeyPatch):
    files = _write(tmp_path, _shape(shape), ORDER)
    here = read_events_files(files)
    shared = _shared_with_a_fork(files, monkeypatch)
    reference = iter_records(_reference(files))
    assert list(shared.publications) == list(here.publications) == reference.publications
    assert list(shared.applications) == reference.applications
    for name in ("breaker_calls", "mark_writes", "duplicate_skips", "notes"):
        assert getattr(shared, name) == getattr(here, name), name
    assert shared.breaker_calls == reference.breaker_calls  # numbered per service in file order
    a, b = shared.applications.index, here.applications.index
    assert {s: list(c) for s, c in a.counts.items()} == {s: list(c) for s, c in b.counts.items()}
    assert (a.extra, a.extra_key, a.noid_by_key, a.total, a.db_existing) == (
        b.extra, b.extra_key, b.noid_by_key, b.total, b.db_existing)
    assert _results(shared) == _results(here) == _results(reference)


def test_a_shared_file_with_publications_is_read_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A publisher the reader does not know by name, its file among the forked reader's share:
    the share is read here, against the table its publications grow."""
    events = [r | {"service": "zz-terminal"} if r["service"] == "terminal" else r for r in _shape("duplicates")]
    files = _write(tmp_path, events, ("cart", "journal", "report", "stock", "zz-terminal"))
    shared = _shared_with_a_fork(files, monkeypatch)
    reference = iter_records(_reference(files))
    assert sorted(shared.applications, key=repr) == sorted(reference.applications, key=repr)
    a, b = _results(shared), _results(reference)
    for ra, rb in zip(a, b):
        assert (ra["checker"], ra["valid"], ra["counts"]) == (rb["checker"], rb["valid"], rb["counts"])


def test_typed_lines_read_as_the_loose_ones(tmp_path: Path):
    """Every line the typed decoder takes gives the values the loose path computes from it:
    a publication all of them, an application those counting reads (the others it lacks)."""
    from kugeldrill.checkers.adapters.event_lines import (
        AppliedLine,
        PublishLine,
        decode_events,
        decode_loose,
        payload_of,
        wall_of,
    )
    from kugeldrill.checkers.adapters.standin import EventConverter
    from kugeldrill.checkers.inputs import CheckInputs
    from kugeldrill.checkers.keys import event_key

    events = _shape("unknown_ids") + _shape("republish") + [
        {"ts": 1.0, "mono": 2.0, "service": "report", "kind": "breaker", "breaker": "dapr", "from": "closed",
         "to": "open", "failures": 3}, {"ts": 1.0, "mono": 2, "service": "stock", "kind": "crash", "reason": "x"}]
    # A typed publication or application has an id (one without is loose: the block with it too).
    events = [r for r in events if r.get("event_id") or r["kind"] not in ("publish", "applied")]
    block = "".join(json.dumps(r) + "\n" for r in events).encode()
    typed, loose = decode_events(block), decode_loose(block)
    assert {type(t) for t in typed} >= {PublishLine, AppliedLine} and len(typed) == len(loose) == len(events)
    for t, lo in zip(typed, loose):
        assert t.kind == lo.kind
        if t.kind == "publish":
            assert (t.service, t.event_id, t.topic, float(t.mono), wall_of(t)) == (
                lo.service, lo.event_id, lo.topic, float(lo.mono), wall_of(lo))
            assert event_key(t.topic, payload_of(t.payload_keys)) == event_key(lo.topic, payload_of(lo.payload_keys))
            assert (t.outcome, t.attempt) == (lo.outcome or "ok", lo.attempt or "initial")
        elif t.kind == "applied":
            assert (t.service, t.event_id, t.subscriber, t.dedup) == (lo.service, lo.event_id, lo.subscriber, lo.dedup)
            assert not hasattr(t, "payload_keys")  # read again, loose, where an application needs it
        else:
            records = []
            for line in (t, lo):
                conv = EventConverter(CheckInputs())
                conv.add_line(line)
                records.append([getattr(conv.inputs, f) for f in ("breaker_transitions", "breaker_calls", "crashes",
                                                                  "mark_writes", "duplicate_skips")])
            assert records[0] == records[1] and any(records[0])
    odd = block + json.dumps(_publish(1, TOPIC_TRANLOG) | {"payload_keys": {"tenant_id": "T1", "store_code": "S1",
                                                                            "terminal_no": "1"}}).encode() + b"\n"
    assert all(type(r).__name__ == "LooseLine" for r in decode_events(odd))  # one line that does not fit: all loose


def test_cash_tokens_hashed_as_read_equal_the_ones_fanout_computes(tmp_path: Path):
    from kugeldrill.checkers.fanout import _cash_keys, _CashMap

    events = _shape("healthy") + [_publish(400 + i, TOPIC_CASHLOG) | {"payload_keys": {
        "tenant_id": "T1", "store_code": "S1", "terminal_no": 2, "generate_date_time": "g|1",
        "description": desc}} for i, desc in enumerate(("kd1 kd1", "", " a;b (c) ", "kd2"))]
    table = read_events_files(_write(tmp_path, events, ORDER)).publications.table
    computed = _CashMap(lambda: _cash_keys(table.by_key(), table, True)).token_hashes()
    assert len(computed) > 20 and table.cash_token_hashes.tolist() == computed.tolist()


def test_stable_argsort_is_numpys_stable_argsort():
    """Runs of equal hashes (few, many, none) keep their positions' order."""
    import numpy as np

    from kugeldrill.checkers.hashindex import stable_argsort

    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 5, 1000, 20000):
        for high in (3, 50, 2**62):
            h = rng.integers(-high, high, n, dtype=np.int64)
            assert stable_argsort(h).tolist() == np.argsort(h, kind="stable").tolist(), (n, high)


def test_subscribers_bytes_are_cut_into_pieces_at_line_starts_and_covered_once(tmp_path: Path):
    """Every byte of every file once, in file order, a plain file cut at line starts about
    every PIECE_BYTES, a gzipped file whole; claimed from both ends, each piece once, this
    process's a run from the first, the forked reader's the run after it."""
    import gzip

    from kugeldrill.checkers.adapters.standin_stream import _Claims, _pieces

    files = _write(tmp_path, _shape("healthy"), ORDER)
    paths = [files[a] for a in ("journal", "report", "stock")]
    with open(paths[0], "a") as fh:
        fh.write("".join(json.dumps(_applied(100 + i, TOPIC_TRANLOG, "journal")) + "\n" for i in range(40)))
    zipped = tmp_path / "report.jsonl.gz"
    zipped.write_bytes(gzip.compress(paths[1].read_bytes(), compresslevel=0))
    paths = [paths[0], zipped, paths[2]]
    parts = _pieces(paths, 1000)
    assert list(dict.fromkeys(p for p, _, _ in parts)) == paths  # in file order
    assert [(p, s, e) for p, s, e in parts if p == zipped] == [(zipped, 0, None)]  # not cut
    for path in (paths[0], paths[2]):
        data = path.read_bytes()
        mine = [(start, len(data) if stop is None else stop) for p, start, stop in parts if p == path]
        assert len(mine) > 3 and mine[0][0] == 0 and mine[-1][1] == len(data)
        assert all(a[1] == b[0] and data[b[0] - 1:b[0]] == b"\n" for a, b in pairwise(mine))
        assert all(stop - start < 1000 + 400 for start, stop in mine)  # about a piece (a line more at most)
    claims = _Claims(7)
    taken = [claims.take_front(), claims.take_back(), claims.take_back(), claims.take_front(), claims.take_front(),
             claims.take_back(), claims.take_front(), claims.take_back(), claims.take_front()]
    assert taken == [0, 6, 5, 1, 2, 4, 3, None, None] and claims.boundary() == 4




def test_sorted_unique_is_numpys_unique():
    import numpy as np

    from kugeldrill.checkers.hashindex import sorted_unique

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 3, 1000):
        for high in (2, 40, 2**62):
            values = rng.integers(-high, high, n, dtype=np.int64)
            got = sorted_unique(values)
            assert got.dtype == values.dtype and got.tolist() == np.unique(values).tolist(), (n, high)
    assert sorted_unique(np.array([3, 1, 3], dtype=np.uint8)).tolist() == [1, 3]


def test_typed_event_keys_and_cash_tokens_are_the_ones_made_from_the_payload():
    """plain_event_keys formats a typed publication's key and cash tokens from its fields:
    the same strings event_key and scoped_cash_tokens make from the payload as a dict."""
    import itertools

    import msgspec

    from kugeldrill.checkers.adapters.event_lines import Keys
    from kugeldrill.checkers.keys import event_key, plain_event_keys, scoped_cash_tokens

    topics, ids = [], []
    for topic, tenant, gdt, desc, txno in itertools.product(
            (TOPIC_TRANLOG, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, "topic-other"), ("T1", "T|2"),
            (None, "2026-01-01T00:00:01", "g|1"), (None, "", "drill kd1", " a;b (c) kd2 kd2 ", "x|y"), (None, 7)):
        topics.append(topic)
        ids.append(Keys(tenant_id=tenant, store_code="S1", terminal_no=3, transaction_no=txno,
                        generate_date_time=gdt, description=desc, business_date="2026-01-01", open_counter=1,
                        operation="open"))
    topics.append(TOPIC_CASHLOG)
    ids.append(None)
    keys, tokens = plain_event_keys(topics, ids)
    want = [event_key(t, msgspec.structs.asdict(v)) if v is not None else "" for t, v in zip(topics, ids)]
    assert keys == want and len(set(want)) > 20
    assert tokens == [tok for t, k in zip(topics, want) if t == TOPIC_CASHLOG and k.startswith("cash|")
                      for tok in scoped_cash_tokens(k)] and len(tokens) > 10
