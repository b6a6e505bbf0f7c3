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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kugeldrill.checkers.adapters.aside import Aside, AsideFailed, can_fork
from kugeldrill.checkers.columnar import InvokeRows, OpColumns, completion_rows, invoke_rows
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.load_figures import describe
from kugeldrill.ground.gcpause import gc_paused
from kugeldrill.ground.gzfiles import stored
from kugeldrill.ground.history_read import HistoryError, pair_history


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

    def ready(self) -> bool:
        """`result()` gives the inputs without waiting for a reader: its child has ended. (A
        history read here, without a child, is read by `result()`: never ready before.)"""
        return self._aside is not None and self._aside.ended()

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
            with gc_paused():
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
    """`pair_history`'s sink in the child: each block's columns go to the parent, and nothing
    per operation stays here. Only a corrupt history makes pairing ask an operation's id or
    outcome again (to name it): then the history is paired once more, here, into columns
    (`_name_the_error`), which raises the same error a reading in the parent would."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self.emit = emit
        self.count = 0

    def invoke_block(self, lines: list[Any], at: list[int]) -> int:
        first = self.count
        self.count += len(lines)
        self.emit(invoke_rows(lines, at))
        return first

    def complete_block(self, indexes: list[int], lines: list[Any], at: list[int]) -> None:
        self.emit(completion_rows(indexes, lines, at))

    def op_id_of(self, i: int) -> str:
        raise _Corrupt

    def outcome_of(self, i: int) -> str | None:
        raise _Corrupt


class _Corrupt(Exception):
    """Pairing needs what the child did not keep: the history is corrupt."""


def _forward_rows(emit: Callable[[Any], None], path: Path) -> None:
    try:
        with gc_paused():
            pair_history(path, _Forwarding(emit))
    except _Corrupt:
        pair_history(path, OpColumns(path))  # raises the HistoryError naming the operation
        raise HistoryError(f"{path}: corrupt history") from None
