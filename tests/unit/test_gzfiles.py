"""A compacted run folder's gzipped files read exactly like the files as written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kugeldrill.checkers.adapters.history import load_history
from kugeldrill.checkers.adapters.kugelpos_logs import parse_log_files
from kugeldrill.checkers.adapters.standin import events_files, load_standin_inputs
from kugeldrill.ground.gzfiles import gzip_in_place, gzipped, open_stored, plain_name, stored
from kugeldrill.ground.jsonl import read_jsonl


def _lines(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_gzip_in_place_replaces_the_file_and_keeps_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"line 1\nline 2\n" * 1000)
    out = gzip_in_place(path)
    assert out == tmp_path / "a.log.gz" and not path.exists()
    assert gzip.decompress(out.read_bytes()) == b"line 1\nline 2\n" * 1000
    assert out.stat().st_size < 1000  # compressed, not copied
    assert [p.name for p in tmp_path.iterdir()] == ["a.log.gz"]  # no temp file left


def test_stored_prefers_the_plain_file_then_the_gzip_then_names_the_plain_one(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    assert stored(path) == path  # neither: the error names the file as written
    gzipped(path).write_bytes(gzip.compress(b""))
    assert stored(path) == gzipped(path)
    path.write_text("")
    assert stored(path) == path
    assert plain_name(gzipped(path)) == "h.jsonl" and plain_name(path) == "h.jsonl"


def test_read_jsonl_reads_the_gzipped_form_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"n": 1}\n\n{"n": 2}\n{"n": 3, "tor')
    gzip_in_place(path)
    assert [r["n"] for r in read_jsonl(path)] == [1, 2]  # asked for the name as written
    assert [r["n"] for r in read_jsonl(gzipped(path))] == [1, 2]


def test_open_stored_text_mode_reads_gzipped_logs(tmp_path: Path) -> None:
    path = tmp_path / "cart.log"
    path.write_text("héllo\nworld\n", encoding="utf-8")
    gzip_in_place(path)
    with open_stored(path, "rt") as fh:
        assert fh.read() == "héllo\nworld\n"


def test_history_is_read_from_its_gzip(tmp_path: Path) -> None:
    hist = tmp_path / "history.jsonl"
    _lines(hist, [{"type": "invoke", "op": "o1", "f": "sale", "mono": 1.0, "wall": 10.0},
                  {"type": "ok", "op": "o1", "f": "sale", "mono": 2.0, "wall": 11.0}])
    gzip_in_place(hist)
    inputs = load_history(hist)
    assert "ops" not in inputs.missing
    assert [(o.op_id, o.outcome) for o in inputs.ops] == [("o1", "ok")]


def test_missing_history_is_still_missing_not_empty(tmp_path: Path) -> None:
    inputs = load_history(tmp_path / "history.jsonl")
    assert "ops" in inputs.missing and inputs.ops == []


def test_events_files_find_gzipped_events_by_state_path_and_in_the_run_folder(tmp_path: Path) -> None:
    cart = tmp_path / "events" / "cart.jsonl"
    report = tmp_path / "events" / "report.jsonl"
    _lines(cart, [{"kind": "publish", "service": "cart", "event_id": "e1", "topic": "tranlog", "mono": 1.0}])
    _lines(report, [{"kind": "applied", "service": "report", "event_id": "e1", "topic": "tranlog", "mono": 2.0}])
    gzip_in_place(cart)
    gzip_in_place(report)
    state = {"services": {"cart": {"events": str(cart)}}}
    assert events_files(tmp_path, state) == {"cart": gzipped(cart), "report": gzipped(report)}
    assert events_files(tmp_path, None) == {"cart": gzipped(cart), "report": gzipped(report)}
    inputs = load_standin_inputs(tmp_path, state)
    assert [p.event_id for p in inputs.publications] == ["e1"]
    assert [a.event_id for a in inputs.applications] == ["e1"]
    assert "applications" not in inputs.missing


def test_kugelpos_log_reader_reads_a_gzipped_log(tmp_path: Path) -> None:
    log = tmp_path / "cart.log"
    log.write_text("not a kugelpos line\n", encoding="utf-8")
    gzip_in_place(log)
    inputs = parse_log_files({"cart": [log]})
    assert not any("cannot read" in n for n in inputs.notes)
    assert any("not in Kugelpos' format" in n for n in inputs.notes)  # the line was read


def test_business_snapshots_read_back_from_their_gzip(tmp_path: Path) -> None:
    from kugeldrill.checkers.adapters.business import load_snapshots, save_snapshots
    from kugeldrill.checkers.model import BusinessSnapshot

    path = tmp_path / "business.json"
    snap = BusinessSnapshot(taken_wall=5.0, stock={"ITEM1": 7.0})
    save_snapshots(path, {"before": snap})
    gzip_in_place(path)
    back = load_snapshots(path)
    assert back["before"].taken_wall == 5.0 and back["before"].stock == {"ITEM1": 7.0}
