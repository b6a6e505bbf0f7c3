"""The operation history: what the load did, as Jepsen-style invoke/completion records.

Checkers judge a drill by comparing what the load *believes* happened with what the
system recorded, so every logical operation (a sale, a cash-in, an open...) is written
twice (docs/contracts.md §4): an `invoke` line before the first request, then exactly one
completion — `ok` (confirmed), `fail` (definitely not applied) or `info` (unknown: the
effecting request may or may not have taken effect).

Each Locust worker process writes its own shard (`<dir>/<worker>.jsonl`), one flushed
`os.write` per line, so a crashed worker loses nothing it already recorded and no two
processes share a file. The runner merges shards with `merge_shards` and checkers read
`load_ops`, which pairs lines into `Op` records (the one reader of a history).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.gzfiles import stored
from kugeldrill.ground.jsonfile import atomic_file
from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.ground.runfolder import RunFolder

COMPLETIONS = ("ok", "fail", "info")
Outcome = Literal["ok", "fail", "info"]


@dataclass(slots=True)
class Op:
    """One logical load operation: its invoke and (if any) its completion, merged.

    outcome is None when the history has an invoke and no completion (the process died):
    such an op counts like `info` (may or may not have taken effect).
    """

    op_id: str
    f: str  # sale | cancel | void | return | cash_in | cash_out | open | close | ...
    outcome: Outcome | None
    worker: str
    user: str
    invoke_mono: float
    invoke_wall: float
    complete_mono: float | None = None
    complete_wall: float | None = None
    value: dict[str, Any] = field(default_factory=dict)  # business ids (see docs/contracts.md)
    error: str | None = None


OP_KINDS = ("sale", "cancel", "void", "return", "cash_in", "cash_out", "open", "close")


class HistoryError(DrillError):
    """A history file or directory is missing or inconsistent."""


class OpRecord:
    """One logical operation in flight; complete it exactly once with ok/fail/info.

    The business ids known at invoke time are kept in `value`; each completion merges
    what was learnt since (transaction number, receipt number, amounts...).
    """

    __slots__ = ("writer", "op_id", "f", "user", "value", "done")

    def __init__(self, writer: "HistoryWriter", f: str, user: str, value: dict[str, Any]) -> None:
        self.writer = writer
        self.op_id = str(uuid.uuid4())
        self.f = f
        self.user = user
        self.value = value
        self.done: str | None = None

    def ok(self, **value: Any) -> None:
        self._complete("ok", None, value)

    def fail(self, error: str, **value: Any) -> None:
        self._complete("fail", error, value)

    def info(self, error: str, **value: Any) -> None:
        self._complete("info", error, value)

    def _complete(self, kind: str, error: str | None, value: dict[str, Any]) -> None:
        if self.done is not None:
            raise HistoryError(f"operation {self.op_id} ({self.f}) completed twice: {self.done}, then {kind}")
        self.done = kind
        self.value.update(value)
        self.writer._write(kind, self.op_id, self.f, self.user, self.value, error)


class HistoryWriter:
    """Writes one worker's shard. Thread/greenlet safe: a single os.write per line."""

    def __init__(self, directory: str | Path, worker: str) -> None:
        self.directory = Path(directory)
        self.worker = worker
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{worker}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self._dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode

    def invoke(self, f: str, user: str, **value: Any) -> OpRecord:
        """Record the start of an operation; returns the handle that completes it."""
        record = OpRecord(self, f, user, value)
        self._write("invoke", record.op_id, f, user, value, None, invoke=True)
        return record

    def _write(self, kind: str, op_id: str, f: str, user: str, value: dict[str, Any],
               error: str | None, invoke: bool = False) -> None:
        line: dict[str, Any] = {
            "type": kind, "op": op_id, "f": f, "worker": self.worker, "user": user,
            "wall": time.time(), "mono": time.monotonic(), "value": value,
        }
        if not invoke:
            line["error"] = error
        data = (self._dumps(line) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                raise HistoryError(f"history shard {self.path} is closed")
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def shard_paths(directory: str | Path) -> list[Path]:
    """The shard files of a history directory, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HistoryError(f"history directory {directory} does not exist")
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


def first_record(directory: str | Path) -> tuple[float, float] | None:
    """(wall, mono) of the earliest first complete line among the shards (None: nothing yet).

    The drill's t0 while the load runs: fault times count from the load's first operation.
    A shard whose first line is still being written is skipped until it is complete.
    """
    best: tuple[float, float] | None = None
    for shard in Path(directory).glob("*.jsonl"):
        try:
            with open(shard, "rb") as fh:
                line = fh.readline()
        except OSError:
            continue
        if not line.endswith(b"\n"):
            continue
        try:
            rec = json.loads(line)
            cand = (float(rec["wall"]), float(rec["mono"]))
        except (ValueError, KeyError, TypeError):
            continue
        if best is None or cand[1] < best[1]:
            best = cand
    return best


def merge_shards(directory: str | Path, out: str | Path | None = None) -> Path:
    """Merge every shard of `directory` into one file ordered by monotonic time.

    Default output: `<directory>/../history.jsonl` (the run folder layout, contracts §7).
    Lines are kept verbatim; a torn last line of a crashed worker is dropped. The merge
    is written to a temporary file and renamed, so readers never see half a merge.
    """
    directory = Path(directory)
    shards = shard_paths(directory)
    target = Path(out) if out is not None else RunFolder(directory.parent).history_jsonl
    records: list[dict[str, Any]] = []
    for shard in shards:
        records.extend(read_jsonl(shard))
    # Within one op the invoke comes first even if two records share a timestamp.
    records.sort(key=lambda r: (float(r.get("mono", 0.0)), r.get("type") != "invoke"))
    with atomic_file(target) as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
    return target


def _iter_records(path: Path) -> Iterable[dict[str, Any]]:
    if path.is_dir():
        for shard in shard_paths(path):
            yield from read_jsonl(shard)
    elif stored(path).is_file():  # the merged history, or its gzip in a compacted run folder
        yield from read_jsonl(path)
    else:
        raise HistoryError(f"history {path} does not exist")


def load_ops(path: str | Path) -> list[Op]:
    """Pair invoke and completion lines into `Op` records, ordered by invoke time.

    `path` is a merged history file or a directory of shards. An invoke without a
    completion (the worker died) gives `outcome=None`, which checkers treat like info.
    A completion without an invoke, a second invoke or a second completion of one op
    means the history is corrupt: HistoryError names the op and the file.
    """
    path = Path(path)
    ops: dict[str, Op] = {}
    for rec in _iter_records(path):
        kind, op_id = rec.get("type"), rec.get("op")
        if not op_id or kind not in ("invoke", *COMPLETIONS):
            raise HistoryError(f"{path}: malformed history line {rec!r}")
        if kind == "invoke":
            if op_id in ops:
                raise HistoryError(f"{path}: operation {op_id} invoked twice")
            ops[op_id] = Op(
                op_id=op_id, f=str(rec.get("f", "")), outcome=None, worker=str(rec.get("worker", "")),
                user=str(rec.get("user", "")), invoke_mono=float(rec["mono"]), invoke_wall=float(rec["wall"]),
                value=dict(rec.get("value") or {}),
            )
            continue
        op = ops.get(op_id)
        if op is None:
            raise HistoryError(f"{path}: {kind} for operation {op_id} that was never invoked")
        if op.outcome is not None:
            raise HistoryError(f"{path}: operation {op_id} completed twice ({op.outcome}, then {kind})")
        op.outcome = kind  # type: ignore[assignment]
        op.complete_mono = float(rec["mono"])
        op.complete_wall = float(rec["wall"])
        op.value.update(rec.get("value") or {})
        op.error = rec.get("error")
    return sorted(ops.values(), key=lambda o: o.invoke_mono)


def summarize(ops: Iterable[Op]) -> dict[str, dict[str, int]]:
    """Counts per operation kind and outcome (`pending` = no completion), Jepsen's `stats`."""
    out: dict[str, dict[str, int]] = {}
    for op in ops:
        row = out.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0, "pending": 0})
        row[op.outcome or "pending"] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m kugeldrill.ground.history merge DIR [OUT]` / `stats FILE|DIR`."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) in (2, 3) and args[0] == "merge":
            print(merge_shards(args[1], args[2] if len(args) == 3 else None))
            return 0
        if len(args) == 2 and args[0] == "stats":
            print(json.dumps(summarize(load_ops(args[1])), indent=2))
            return 0
    except DrillError as err:
        print(f"kugeldrill.ground.history: error: {err}", file=sys.stderr)
        return 2
    print("usage: python -m kugeldrill.ground.history merge DIR [OUT] | stats FILE|DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
