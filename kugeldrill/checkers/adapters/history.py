"""Load history (contracts §4) -> CheckInputs.ops, paired by the ground floor's one reader
(`ground.history_read.pair_history`) into columns (`checkers.columnar.OpColumns`: a few dozen
bytes per operation, the values left in the file until asked for, each value's event key and
lacking figures computed as it is read, checkers.op_facts); records lacking a figure they
should carry (their `missing` paths included) become a note.

A large history is read in a forked child (adapters.aside) while the caller reads the events
files: `HistoryReading(path)` starts it, `.result()` gives the inputs. The child pairs the
lines and computes the facts (the costly part), and hands each block's columns over
(`columnar.InvokeRows` / `CompletionRows`); this process only appends them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kugeldrill.checkers.adapters.aside import Aside, AsideFailed, can_fork
from kugeldrill.checkers.columnar import CompletionRows, InvokeRows, OpColumns, completion_rows, invoke_rows
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.load_figures import describe
from kugeldrill.ground.gzfiles import stored
from kugeldrill.ground.history_read import HistoryError, LineReader, pair_history


def load_history(path: str | Path) -> CheckInputs:
    """CheckInputs with `ops` from one merged history file (missing file -> marked missing)."""
    return HistoryReading(path, aside=False).result()


class HistoryReading:
    """A history being read: in a forked child when it pays (`aside.can_fork`), else here
    when `result()` is called."""

    def __init__(self, path: str | Path, *, aside: bool = True) -> None:
        self.path = stored(path)  # a compacted run folder keeps it gzipped
        self._aside: Aside | None = None
        if aside and self.path.is_file() and can_fork(self.path.stat().st_size):
            self._aside = Aside(_forward_rows, self.path)

    def close(self) -> None:
        """Stop a child still reading (the caller gave up)."""
        if self._aside is not None:
            self._aside.close()

    def result(self) -> CheckInputs:
        inputs = CheckInputs()
        path = self.path
        if not path.is_file():
            inputs.mark_missing("ops", f"no history file at {path}")
            return inputs
        try:
            ops = OpColumns(path)
            if self._aside is None:
                pair_history(path, ops)
            else:
                for rows in self._aside.records():
                    if isinstance(rows, InvokeRows):
                        ops.add_invokes(rows)
                    else:
                        ops.add_completions(rows)
            inputs.ops = ops.finish()  # type: ignore[assignment]
        except (HistoryError, OSError, ValueError, KeyError, TypeError, AsideFailed) as exc:
            # A corrupt history is "ops unknown", named, not a crash.
            inputs.mark_missing("ops", f"history {path} unreadable: {type(exc).__name__}: {exc}")
            return inputs
        finally:
            if self._aside is not None:
                self._aside.close()
        inputs.mark("ops", str(path))
        problems = ops.record_problems()  # load_figures.load_record_problems, from the facts read with the values
        if problems:
            # Named in the drill's notes whatever the scenario expects (the outcome checker,
            # when it runs, makes the figures unknown and lists the records).
            inputs.notes.append(describe(problems))
        return inputs


class _Forwarding:
    """`pair_history`'s sink in the child: each block's columns go to the parent; only what
    pairing asks again (an operation's id and outcome, to name a corrupt line) stays here."""

    def __init__(self, path: Path, emit: Callable[[Any], None]) -> None:
        self.emit = emit
        self.lines = LineReader(path)
        self.invoked_at = array("q")
        self.outcome = bytearray()  # position in `names`; 0: none yet
        self.names: list[str] = [""]

    def invoke_block(self, lines: list[Any], at: list[int]) -> int:
        first = len(self.invoked_at)
        self.invoked_at.extend(at)
        self.outcome.extend(bytes(len(at)))
        self.emit(invoke_rows(lines, at))
        return first

    def complete_block(self, indexes: list[int], lines: list[Any], at: list[int]) -> None:
        rows: CompletionRows = completion_rows(indexes, lines, at)
        names, outcome = self.names, self.outcome
        for i, r in zip(indexes, lines):
            if r.type not in names:
                names.append(r.type)
            outcome[i] = names.index(r.type)
        self.emit(rows)

    def op_id_of(self, i: int) -> str:
        return self.lines.op_id(self.invoked_at[i])

    def outcome_of(self, i: int) -> str | None:
        return self.names[self.outcome[i]] or None


def _forward_rows(emit: Callable[[Any], None], path: Path) -> None:
    sink = _Forwarding(path, emit)
    try:
        pair_history(path, sink)
    finally:
        sink.lines.close()
