"""Adapters: history, timeline, stand-in events files and diagnostics, MongoDB optional, provenance."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import httpx
import pytest

from kugeldrill.checkers import run_all
from kugeldrill.checkers.adapters.history import load_history
from kugeldrill.ground.history_read import load_ops
from kugeldrill.checkers.adapters.mongo import outbox_entry, read_outbox
from kugeldrill.checkers.adapters.standin import load_standin_inputs, read_diagnostics
from kugeldrill.checkers.adapters.timeline import load_timeline
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_TRANLOG
from kugeldrill.ground.errors import NotLoopbackError
from kugeldrill.ground.jsonl import JsonlWriter

PK = {"tenant_id": "T1", "store_code": "S1", "terminal_no": 1, "transaction_no": 7, "transaction_type": 101}


def _write_run(tmp_path: Path) -> dict:
    run = tmp_path / "run"
    (run / "events").mkdir(parents=True)
    with JsonlWriter(run / "history.jsonl") as w:
        base = {"op": "o1", "f": "sale", "worker": "w1", "user": "u1"}
        w.write({**base, "type": "invoke", "wall": 1.0, "mono": 101.0, "value": {"tenant_id": "T1"}})
        w.write({**base, "type": "ok", "wall": 1.5, "mono": 101.5, "error": None,
                 "value": {"tenant_id": "T1", "store_code": "S1", "terminal_no": 1, "transaction_no": 7}})
        w.write({"op": "o2", "f": "sale", "worker": "w1", "user": "u2", "type": "invoke", "wall": 2.0, "mono": 102.0,
                 "value": {}})
    (run / "history.jsonl").open("a").write('{"type": "ok", "op": "o2"')  # torn last line
    (run / "timeline.json").write_text(json.dumps({"t0_wall": 1000.0, "t0_mono": 100.0, "faults": [
        {"id": "f1", "link": "redis@stock", "proxy": "kugeldrill.redis@stock", "kind": "down", "params": {},
         "at": 5.0, "for": 10.0, "applied_wall": 1005.0, "applied_mono": 105.0, "healed_wall": 1015.0,
         "healed_mono": 115.0, "error": None},
        {"id": "f2", "link": "sidecar@cart", "proxy": "kugeldrill.sidecar@cart", "kind": "down", "params": {},
         "at": 5.0, "for": 10.0, "applied_wall": None, "applied_mono": None, "healed_wall": None,
         "healed_mono": None, "error": "proxy missing"}]}))
    cart_events = tmp_path / "live" / "cart.jsonl"
    with JsonlWriter(cart_events) as w:
        w.write({"ts": 1.6, "mono": 101.6, "service": "cart", "kind": "publish", "event_id": "e1", "pubsub": "p",
                 "topic": TOPIC_TRANLOG, "outcome": "ok", "attempt": "initial", "payload_keys": PK})
        w.write({"ts": 1.6, "mono": 101.6, "service": "cart", "kind": "breaker", "breaker": "dapr",
                 "from": "closed", "to": "open", "failures": 3, "reason": "x"})
        w.write({"ts": 1.6, "mono": 101.6, "service": "cart", "kind": "breaker_call", "breaker": "dapr",
                 "state": "half_open", "op": "publish", "outcome": "ok"})
    with JsonlWriter(run / "events" / "stock.jsonl") as w:
        for mono in (102.0, 106.0):
            w.write({"ts": mono - 100, "mono": mono, "service": "stock", "kind": "applied", "event_id": "e1",
                     "topic": TOPIC_TRANLOG, "subscriber": "stock", "attempt": 1, "dedup": "miss", "payload_keys": PK})
        w.write({"ts": 5.5, "mono": 105.5, "service": "stock", "kind": "marked", "event_id": "e1",
                 "subscriber": "stock", "ok": False, "started_mono": 102.1})
        w.write({"ts": 6.0, "mono": 106.0, "service": "stock", "kind": "state_unreachable", "op": "get", "key": "e1",
                 "error": "refused"})
        w.write({"ts": 7.0, "mono": 107.0, "service": "stock", "kind": "duplicate_skipped", "event_id": "e1",
                 "topic": TOPIC_TRANLOG, "subscriber": "stock"})
    return {"run": run, "state": {"services": {"cart": {"events": str(cart_events)},
                                               "stock": {"events": str(tmp_path / "gone.jsonl")}}}}


def test_history_pairs_invoke_and_completion(tmp_path: Path):
    setup = _write_run(tmp_path)
    ops = {o.op_id: o for o in load_ops(setup["run"] / "history.jsonl")}
    assert ops["o1"].outcome == "ok" and ops["o1"].complete_mono == 101.5 and ops["o1"].value["transaction_no"] == 7
    assert ops["o2"].outcome is None  # invoke without completion (torn line skipped)
    assert "ops" in load_history(tmp_path / "none.jsonl").missing


def test_timeline_keeps_applied_faults_and_notes_the_rest(tmp_path: Path):
    setup = _write_run(tmp_path)
    inp = load_timeline(setup["run"] / "timeline.json")
    assert [(f.fault_id, f.app, f.link_kind, f.start_mono, f.end_mono) for f in inp.faults] == [
        ("f1", "stock", "redis", 105.0, 115.0)]
    assert any("f2" in n and "proxy missing" in n for n in inp.notes)
    assert inp.clock_offset == -900.0 and [u.fault_id for u in inp.unapplied_faults] == ["f2"]
    assert "faults" in load_timeline(tmp_path / "missing.json").missing


def test_standin_inputs_from_stack_state_and_run_copies(tmp_path: Path):
    setup = _write_run(tmp_path)
    inp = load_standin_inputs(setup["run"], setup["state"])
    assert [(p.publisher, p.event_id, p.key) for p in inp.publications] == [("cart", "e1", tran_key("T1", "S1", 1, 7))]
    assert [(a.subscriber, a.mono) for a in inp.applications] == [("stock", 102.0), ("stock", 106.0)]
    t = inp.breaker_transitions[0]
    assert (t.service, t.from_state, t.to_state, t.failures) == ("cart", "CLOSED", "OPEN", 3)
    assert inp.breaker_calls[0].state == "HALF_OPEN"
    assert inp.duplicate_skips == [("stock", "e1", 107.0)]
    assert inp.state_unreachable[0].service == "stock"
    assert inp.has("applications") and "outbox" in inp.missing
    prov = inp.provenance()
    assert prov["records"]["applications"] == 2 and "events files" in prov["sources"]["applications"]
    assert [(m.subscriber, m.event_id, m.ok, m.started_mono) for m in inp.mark_writes] == [("stock", "e1", False, 102.1)]
    results = {r.checker: r for r in run_all(inp)}
    # The first application's mark could not be written while redis@stock was down: tolerated.
    dup = results["duplicates"]
    assert dup.valid is True and dup.counts["tolerated_by"] == {"mark_failed": 1}
    evidence = dup.details["tolerated"][0]["evidence"][0]
    assert evidence["mark_failed_mono"] == 105.5 and "f1" in evidence["store_out_of_reach"]
    # report and journal never applied e1: fan-out names them.
    assert results["fanout"].valid is False
    assert sorted(e["subscriber"] for e in results["fanout"].examples["missing"]) == ["journal", "report"]


def test_standin_without_events_is_missing_not_empty(tmp_path: Path):
    inp = load_standin_inputs(tmp_path, {"services": {}})
    assert "applications" in inp.missing and "ops" in inp.missing
    results = run_all(inp)
    assert [r.valid for r in results] == [None, None, None, None]


def test_diagnostics_endpoints_through_mock_transport():
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/applied"):
            return httpx.Response(200, json={"items": [{"ts": 1.0, "mono": 2.0, "kind": "applied", "event_id": "e1",
                                                        "topic": TOPIC_CASHLOG, "subscriber": "journal",
                                                        "payload_keys": PK}]})
        if path.endswith("/outbox"):
            return httpx.Response(200, json={"counts": {"failed": 1}, "service": "journal", "events": [
                {"event_id": "e9", "topic": TOPIC_TRANLOG, "status": "failed", "payload_keys": PK,
                 "services": {"report": {"status": "pending"}}}]})
        if path.endswith("/breaker"):
            return httpx.Response(200, json={"data": {"transitions": [
                {"ts": 1.0, "mono": 3.0, "breaker": "dapr", "from": "closed", "to": "open", "failures": 3}],
                "state": "open"}})
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    inp = read_diagnostics({"journal": "http://127.0.0.1:9"}, client=client)
    assert [(a.subscriber, a.topic) for a in inp.applications] == [("journal", TOPIC_CASHLOG)]
    assert [(t.service, t.to_state) for t in inp.breaker_transitions] == [("journal", "OPEN")]
    assert [(o.event_id, o.status, o.key, o.services) for o in inp.outbox] == [
        ("e9", "failed", tran_key("T1", "S1", 1, 7), {"report": "pending"})]
    assert inp.has("applications") and inp.has("outbox") and "publications" in inp.missing
    with pytest.raises(NotLoopbackError):
        read_diagnostics({"journal": "http://192.0.2.1:80"}, client=client)


def test_diagnostics_errors_mark_missing():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    inp = read_diagnostics({"report": "http://127.0.0.1:9"}, client=client)
    assert "applications" in inp.missing and "HTTP 500" in inp.missing["applications"]


def test_mongo_absent_is_unknown_with_reason(monkeypatch):
    real_import = builtins.__import__

    def no_pymongo(name, *args, **kwargs):
        if name == "pymongo":
            raise ImportError("no pymongo")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pymongo)
    inp = read_outbox("mongodb://127.0.0.1:27017")
    assert "pymongo is not installed" in inp.missing["outbox"]


def test_outbox_document_shape():
    doc = {"event_id": "e1", "status": "partially_delivered", "tenant_id": "T1", "store_code": "S1", "terminal_no": 1,
           "transaction_no": 7, "payload": {"transaction_type": 101},
           "services": [{"service_name": "report", "status": "received"}, {"service_name": "stock", "status": "pending"}]}
    e = outbox_entry("cart", TOPIC_TRANLOG, doc)
    assert e.key == tran_key("T1", "S1", 1, 7) and e.services == {"report": "received", "stock": "pending"}


def test_corrupt_history_is_missing_with_reason(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"type": "ok", "op": "x", "f": "sale", "wall": 1, "mono": 1}\n')
    inp = load_history(path)  # kugeldrill.ground.history.load_ops refuses a completion without invoke
    assert not inp.has("ops") and "unreadable" in inp.missing["ops"] and "never invoked" in inp.missing["ops"]


def test_a_history_record_lacking_figures_is_a_note_naming_it(tmp_path: Path):
    """The load's `missing` paths (contracts §4) reach the drill's notes, whatever it expects."""
    path = tmp_path / "history.jsonl"
    with JsonlWriter(path) as w:
        for op, f, value in (("c1", "cash_in", {"amount": 500}), ("p1", "open", {"missing": ["openCounter"]})):
            base = {"op": op, "f": f, "worker": "w1", "user": "u1", "value": value}
            w.write({"type": "invoke", "wall": 1.0, "mono": 1.0, **base})
            w.write({"type": "ok", "wall": 2.0, "mono": 2.0, **base})
    inputs = load_history(path)
    assert inputs.notes == ["1 load record(s) lack figures they should carry: openCounter (1); "
                            "e.g. ok open p1 lacks openCounter"]
