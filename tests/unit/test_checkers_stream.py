"""The streaming reader (publications and applications folded as they are read) gives the
same verdicts, counts and examples as records converted one by one (`iter_records`, the
path of the diagnostics endpoints and the live tail), on histories of many shapes."""

from __future__ import annotations

import json
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
