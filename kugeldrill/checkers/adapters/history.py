"""Load history (contracts §4) -> CheckInputs.ops, paired by the ground floor's one reader
(`ground.history.pair_history`) into columns (`checkers.columnar.OpColumns`: a few dozen bytes
per operation, the values left in the file until asked for); records lacking a figure they should carry (their
`missing` paths included) become a note."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.load_figures import describe
from kugeldrill.ground.gzfiles import stored
from kugeldrill.checkers.columnar import OpColumns
from kugeldrill.ground.history_read import HistoryError, pair_history


def load_history(path: str | Path) -> CheckInputs:
    """CheckInputs with `ops` from one merged history file (missing file -> marked missing)."""
    inputs = CheckInputs()
    path = stored(path)  # a compacted run folder keeps it gzipped
    if not path.is_file():
        inputs.mark_missing("ops", f"no history file at {path}")
        return inputs
    try:
        ops = OpColumns(path)
        pair_history(path, ops)
        inputs.ops = ops.finish()  # type: ignore[assignment]
    except (HistoryError, OSError, ValueError, KeyError, TypeError) as exc:
        # A corrupt history is "ops unknown", named, not a crash.
        inputs.mark_missing("ops", f"history {path} unreadable: {type(exc).__name__}: {exc}")
        return inputs
    inputs.mark("ops", str(path))
    problems = ops.record_problems()  # load_figures.load_record_problems, from the facts read with the values
    if problems:
        # Named in the drill's notes whatever the scenario expects (the outcome checker,
        # when it runs, makes the figures unknown and lists the records).
        inputs.notes.append(describe(problems))
    return inputs
