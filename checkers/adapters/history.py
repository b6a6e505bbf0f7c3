"""Load history (contracts §4) -> Op records.

Prefers `kugeldrill.history.load_ops` (the writer's own reader); falls back to reading the
JSON lines here, so the checkers work on a history file even where that module is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from checkers.inputs import CheckInputs
from checkers.model import Op
from kugeldrill.jsonl import read_jsonl

_COMPLETIONS = {"ok", "fail", "info"}


def parse_history(path: str | Path) -> list[Op]:
    """invoke + completion lines -> one Op each; an invoke with no completion keeps outcome None."""
    ops: dict[str, Op] = {}
    for rec in read_jsonl(path):
        kind = rec.get("type")
        op_id = rec.get("op")
        if not op_id:
            continue
        value: dict[str, Any] = rec.get("value") or {}
        if kind == "invoke":
            ops[op_id] = Op(
                op_id=op_id,
                f=rec.get("f", ""),
                outcome=None,
                worker=rec.get("worker", ""),
                user=rec.get("user", ""),
                invoke_mono=float(rec.get("mono", 0.0)),
                invoke_wall=float(rec.get("wall", 0.0)),
                value=dict(value),
            )
        elif kind in _COMPLETIONS:
            op = ops.get(op_id)
            if op is None:  # completion without invoke (torn shard): keep it, times from completion
                op = ops[op_id] = Op(op_id, rec.get("f", ""), None, rec.get("worker", ""), rec.get("user", ""),
                                     float(rec.get("mono", 0.0)), float(rec.get("wall", 0.0)))
            op.outcome = kind  # type: ignore[assignment]
            op.complete_mono = float(rec.get("mono", 0.0))
            op.complete_wall = float(rec.get("wall", 0.0))
            op.value.update(value)
            op.error = rec.get("error")
    return list(ops.values())


def load_history(path: str | Path) -> CheckInputs:
    """CheckInputs with `ops` from one merged history file (missing file -> marked missing)."""
    inputs = CheckInputs()
    path = Path(path)
    if not path.is_file():
        inputs.mark_missing("ops", f"no history file at {path}")
        return inputs
    try:
        from kugeldrill.history import load_ops  # type: ignore[attr-defined]
    except ImportError:
        load_ops = parse_history
    try:
        inputs.ops = list(load_ops(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt history is "ops unknown", named, not a crash
        inputs.mark_missing("ops", f"history {path} unreadable: {type(exc).__name__}: {exc}")
        return inputs
    inputs.mark("ops", str(path))
    return inputs
