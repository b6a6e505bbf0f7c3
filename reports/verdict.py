"""verdict.json: the machine-readable outcome of a drill (the whole RunSummary)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.summary import RunSummary


def write_verdict(run_dir: Path, summary: RunSummary) -> Path:
    """Write atomically (temp + rename) so a reader never sees half a verdict."""
    path = RunFolder(run_dir).verdict_json
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
