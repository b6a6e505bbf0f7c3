"""Column stores give the same verdicts as record lists, and round-trip records (None floats too)."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.checkers import run_all
from kugeldrill.checkers.adapters.standin import events_files, read_events_files
from kugeldrill.checkers.columns import application_columns, op_columns, publication_columns, rows
from kugeldrill.checkers.model import TOPIC_TRANLOG, Application, Op
from kugeldrill.checkers.synthetic import full_fanout_run
from kugeldrill.ground.jsonl import JsonlWriter


def _verdicts(inp):
    return [(r.checker, r.valid, r.counts.get("totals"), r.counts.get("duplicated_events")) for r in run_all(inp)]


def test_round_trip_and_none_floats():
    op = Op("o1", "sale", None, "w", "u", 1.5, 2.5, None, None, {"transaction_no": 1})
    cols = op_columns([op])
    assert len(cols) == 1 and cols[0] == op and list(cols) == [op]
    apps = application_columns([Application("report", "e1", TOPIC_TRANLOG, "k", 1.0, 2.0, 1, "miss")])
    assert list(rows(apps, "subscriber", "mono")) == [("report", 1.0)]
    assert not publication_columns()


def test_compact_and_list_inputs_give_identical_verdicts():
    assert _verdicts(full_fanout_run(300, compact=True)) == _verdicts(full_fanout_run(300))
    broken_lists = full_fanout_run(300)
    broken_lists.applications = broken_lists.applications[3:] + broken_lists.applications[:1]
    broken_cols = full_fanout_run(300, compact=True)
    keep = list(broken_cols.applications)[3:] + list(broken_cols.applications)[:1]
    broken_cols.applications = application_columns(keep)
    assert _verdicts(broken_cols) == _verdicts(broken_lists)
    assert _verdicts(broken_cols)[2][1] is False


def test_standin_events_read_compact(tmp_path: Path):
    path = tmp_path / "stock.jsonl"
    with JsonlWriter(path) as w:
        for mono in (1.0, 2.0):
            w.write({"ts": mono, "mono": mono, "service": "stock", "kind": "applied", "event_id": "e1",
                     "topic": TOPIC_TRANLOG, "subscriber": "stock", "attempt": 1, "dedup": "miss",
                     "payload_keys": {"tenant_id": "T", "store_code": "S", "terminal_no": 1, "transaction_no": 2}})
    inp = read_events_files(events_files(None, {"services": {"stock": {"events": str(path)}}}), compact=True)
    assert len(inp.applications) == 2 and inp.applications[0].event_id == inp.applications[1].event_id
    # Equal strings from different lines are one object (shared through the adapter's pool).
    keys = inp.applications.column("key")
    assert keys[0] is keys[1]
    res = {r.checker: r for r in run_all(inp)}
    assert res["duplicates"].valid is False and res["duplicates"].counts["duplicated_events"] == 1


def test_republished_event_in_columns_counts_once_and_recovers():
    from kugeldrill.checkers.fanout import check_fanout
    from kugeldrill.checkers.model import Publication

    inp = full_fanout_run(10, compact=True)
    pubs = list(inp.publications)
    pubs[1].outcome = "failed"
    pubs.append(Publication(pubs[1].publisher, pubs[1].event_id, pubs[1].topic, pubs[1].key, 900.0, 900.0, "ok",
                            "republish"))
    inp.publications = publication_columns(pubs)
    r = check_fanout(inp)
    assert r.valid is True and r.counts["events"] == 10
    assert r.counts["matrix"][TOPIC_TRANLOG]["report"]["recovered"] == 1
    assert r.counts["totals"]["expected"] == 29
