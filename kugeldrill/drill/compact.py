"""A finished run folder keeps one copy of each file, the bulky ones gzipped.

Once the drill is over (Locust stopped, the stand-in down, the checkers and the report's
pictures fed), what is left is read again by people and, for events and history, by the
checkers' adapters if a run folder is ever judged again. So:

- `history/<worker>.jsonl` shards go once `history.jsonl` holds their merge (every line
  of them, ordered); when the merge failed they stay, and the report says so.
- `history.jsonl`, `business.json`, `events/*.jsonl`, `logs/*` and the stand-in's own logs
  under `stack/` are gzipped in place (about a tenth of their size); their one reader opens
  the gzipped form transparently (`ground.gzfiles`), and `zcat`/`zless` serve people.

Reports (verdict.json, junit.xml, report.html), Locust's files, timeline.json,
provision.json and stack.json stay as they are: small, or opened directly (a browser,
`kugeldrill report` and `compare` read verdict.json and Locust's CSV files).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kugeldrill.ground.gzfiles import GZ_SUFFIX, gzip_in_place, stored
from kugeldrill.ground.runfolder import RunFolder


@dataclass
class Compaction:
    """What compaction did, in bytes, and what it could not do (for the report's notes)."""

    bytes_before: int = 0
    bytes_after: int = 0
    gzipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _bulky_files(folder: RunFolder) -> list[Path]:
    """The files gzipped after a drill (those not gzipped yet)."""
    out = [folder.history_jsonl, folder.business_json]
    for directory, pattern in ((folder.events_dir, "*.jsonl"), (folder.logs_dir, "*"), (folder.stack_dir, "**/*.log")):
        if directory.is_dir():
            out += sorted(p for p in directory.glob(pattern) if p.is_file())
    return [p for p in out if p.is_file() and not p.name.endswith(GZ_SUFFIX)]


def compact_run_folder(run_dir: str | Path) -> Compaction:
    """Drop the history shards a merge repeats and gzip the bulky files; never raises for one
    file (a problem is recorded and that file stays as it was)."""
    folder = RunFolder(run_dir)
    result = Compaction()
    shards = folder.history_dir
    if shards.is_dir() and stored(folder.history_jsonl).is_file():
        size = sum(p.stat().st_size for p in shards.rglob("*") if p.is_file())
        try:
            shutil.rmtree(shards)
        except OSError as exc:
            result.problems.append(f"{shards}: {exc}")
        else:
            result.bytes_before += size
            result.removed.append(shards.name + "/")
    for path in _bulky_files(folder):
        size = path.stat().st_size
        try:
            gz = gzip_in_place(path)
        except OSError as exc:
            result.problems.append(f"{path}: {exc}")
            continue
        result.bytes_before += size
        result.bytes_after += gz.stat().st_size
        result.gzipped.append(str(gz.relative_to(folder.root)))
    return result
