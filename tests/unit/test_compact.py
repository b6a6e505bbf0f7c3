"""After a drill the run folder keeps one copy of each file, the bulky ones gzipped, and
every reader still reads them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kugeldrill.checkers.adapters.standin import load_standin_inputs
from kugeldrill.drill.compact import compact_run_folder
from kugeldrill.ground.history import merge_shards
from kugeldrill.ground.history_read import load_ops
from kugeldrill.ground.runfolder import RunFolder


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _run_folder(root: Path) -> RunFolder:
    folder = RunFolder(root)
    _write(folder.history_dir / "w0.jsonl", [{"type": "invoke", "op": "a", "f": "sale", "mono": 1.0, "wall": 1.0},
                                             {"type": "ok", "op": "a", "f": "sale", "mono": 2.0, "wall": 2.0}])
    _write(folder.history_dir / "w1.jsonl", [{"type": "invoke", "op": "b", "f": "sale", "mono": 1.5, "wall": 1.5},
                                             {"type": "ok", "op": "b", "f": "sale", "mono": 3.0, "wall": 3.0}])
    _write(folder.events_dir / "cart.jsonl", [{"kind": "publish", "service": "cart", "event_id": f"e{i}",
                                               "topic": "tranlog", "mono": float(i)} for i in range(200)])
    folder.logs_dir.mkdir()
    (folder.logs_dir / "cart.log").write_text("INFO started\n" * 500)
    (folder.logs_dir / "locust.out").write_text("locust says hi\n")
    (folder.stack_dir / "toxiproxy").mkdir(parents=True)
    (folder.stack_dir / "toxiproxy" / "toxiproxy.log").write_text("proxy created\n" * 300)
    (folder.stack_dir / "config").mkdir()
    (folder.stack_dir / "config" / "cart.json").write_text("{}")
    folder.verdict_json.write_text("{}")
    folder.timeline_json.write_text('{"events": []}')
    folder.business_json.write_text(json.dumps({"before": {"stock": {"I1": 1.0}}}, indent=1))
    return folder


def test_compaction_drops_merged_shards_and_gzips_history_events_and_logs(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    merge_shards(folder.history_dir, folder.history_jsonl)
    plain_events = folder.events_dir.joinpath("cart.jsonl").read_bytes()
    done = compact_run_folder(tmp_path)
    assert done.problems == []
    assert not folder.history_dir.exists() and done.removed == ["history/"]
    assert sorted(done.gzipped) == ["business.json.gz", "events/cart.jsonl.gz", "history.jsonl.gz", "logs/cart.log.gz",
                                    "logs/locust.out.gz", "stack/toxiproxy/toxiproxy.log.gz"]
    assert gzip.decompress((folder.events_dir / "cart.jsonl.gz").read_bytes()) == plain_events
    assert not (folder.events_dir / "cart.jsonl").exists()  # one copy, not two
    # Small files read directly by people or reports stay as they were.
    assert folder.verdict_json.exists() and folder.timeline_json.exists()
    assert (folder.stack_dir / "config" / "cart.json").exists()
    assert done.bytes_after < done.bytes_before / 4
    # The checkers' adapters read the compacted folder as they read the live one.
    inputs = load_standin_inputs(tmp_path, None)
    assert sorted(o.op_id for o in inputs.ops) == ["a", "b"]
    assert len(inputs.publications) == 200
    assert "ops" not in inputs.missing and "publications" not in inputs.missing
    assert "history.jsonl.gz" in folder.present() and "events/" in folder.present()


def test_shards_stay_when_there_is_no_merge(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    done = compact_run_folder(tmp_path)
    assert (folder.history_dir / "w0.jsonl").exists() and (folder.history_dir / "w1.jsonl").exists()
    assert done.removed == []
    assert sorted(o.op_id for o in load_ops(folder.history_dir)) == ["a", "b"]  # still readable from the shards


def test_compacting_twice_changes_nothing(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    merge_shards(folder.history_dir, folder.history_jsonl)
    compact_run_folder(tmp_path)
    again = compact_run_folder(tmp_path)
    assert again.gzipped == [] and again.removed == [] and again.problems == []
    assert not list(tmp_path.rglob("*.gz.gz"))
