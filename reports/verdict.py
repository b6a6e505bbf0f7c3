"""verdict.json: the machine-readable outcome of a drill (the whole RunSummary)."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.ground.jsonfile import write_json_atomic
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.summary import RunSummary


def write_verdict(run_dir: Path, summary: RunSummary) -> Path:
    """Write atomically (temp + rename) so a reader never sees half a verdict."""
    path = RunFolder(run_dir).verdict_json
    write_json_atomic(path, summary.to_dict())
    return path
