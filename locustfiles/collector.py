"""The Locust master's end of the history streams: shards in the run folder, and a ledger.

Each worker's batches (kugeldrill.locustfiles.stream) are written to its shard
`history/w<index>.jsonl` in sequence order: a batch after a gap waits until the missing
one is resent, a batch seen before is dropped, and the master acknowledges the highest
batch it holds without a gap. Operations whose invoke arrived and whose completion has not
are tracked ("open"), so that when a worker is lost — it never said its last batch was
sent — the collector completes each of them with an `info` line naming the worker: its
outcome is unknown, never silently absent.

`load_workers.json` (the ledger) says per worker what arrived and how its stream ended;
the drill reads it back with `read_ledger` to name lost workers in the verdict.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from kugeldrill.ground.history import HistoryWriter, history_line
from kugeldrill.ground.jsonfile import read_json, write_json_atomic

StreamState = Literal["streaming", "ended", "lost"]
# At the end of a run the master waits the users' stop timeout plus this for every worker's
# last batch (kugeldrill.locustfiles.nodes); whoever stops the master gives it that long.
FINISH_MARGIN = 15.0


@dataclass
class WorkerStream:
    """What the master knows of one worker's history stream (one ledger entry)."""

    worker: str  # w<index>: the shard's name and the prefix of its users' ids
    client_id: str  # Locust's id of the worker: "<hostname>_<hex>"
    state: StreamState = "streaming"
    batches: int = 0  # distinct batches written
    lines: int = 0
    last_seq: int = 0  # highest batch written with no gap before it
    end_seq: int | None = None  # the last batch the worker said it sent (its end message)
    operations: int | None = None  # operations the worker said it invoked (its end message)
    duplicates: int = 0  # batches that arrived again (resent before their acknowledgement came)
    held: int = 0  # batches waiting behind a gap when the ledger was written
    late: int = 0  # batches that arrived after the worker was declared lost (not in the history)
    dropped_lines: int = 0  # completions behind a gap that never closed, whose invoke never arrived
    lost_open: int = 0  # operations completed as info because the worker was lost
    first_wall: float | None = None
    last_wall: float | None = None  # when its last batch arrived
    missing_wall: float | None = None  # when Locust first found it missing (no heartbeat), if it did
    lost_wall: float | None = None
    lost_mono: float | None = None

    @property
    def host(self) -> str:
        return self.client_id.rsplit("_", 1)[0]

    @property
    def complete(self) -> bool:
        return self.end_seq is not None and self.last_seq >= self.end_seq

    def describe(self) -> str:
        return f"{self.worker} (host {self.host}, Locust client {self.client_id})"


@dataclass
class _Stream:
    record: WorkerStream
    shard: HistoryWriter
    open: dict[str, tuple[str, str, dict]] = field(default_factory=dict)  # op id -> (f, user, value)
    pending: dict[int, list[bytes]] = field(default_factory=dict)  # batches behind a gap


class HistoryCollector:
    """Writes the workers' shards into `history_dir` and the ledger beside it."""

    def __init__(self, history_dir: str | Path, ledger: str | Path) -> None:
        self.history_dir = Path(history_dir)
        self.ledger = Path(ledger)
        self._streams: dict[str, _Stream] = {}

    def stream(self, client_id: str, index: int) -> _Stream:
        st = self._streams.get(client_id)
        if st is None:
            worker = f"w{index}"
            st = _Stream(WorkerStream(worker, client_id), HistoryWriter(self.history_dir, worker, journal=False))
            self._streams[client_id] = st
        return st

    def on_batch(self, client_id: str, index: int, seq: int, lines: list[bytes]) -> int:
        """Write (or hold, or drop) one batch; return the sequence number to acknowledge."""
        st = self.stream(client_id, index)
        rec = st.record
        if rec.state == "lost":
            rec.late += 1
            return rec.last_seq
        if seq <= rec.last_seq or seq in st.pending:
            rec.duplicates += 1
            return rec.last_seq
        if seq > rec.last_seq + 1:
            st.pending[seq] = lines
            return rec.last_seq
        self._write(st, lines)
        rec.last_seq = seq
        while rec.last_seq + 1 in st.pending:
            rec.last_seq += 1
            self._write(st, st.pending.pop(rec.last_seq))
        if rec.state == "ended" and not rec.complete:
            rec.state = "streaming"
        return rec.last_seq

    def on_end(self, client_id: str, index: int, seq: int, operations: int) -> None:
        """The worker's users stopped and `seq` was its last batch."""
        st = self.stream(client_id, index)
        if st.record.state != "lost":
            st.record.end_seq, st.record.operations = seq, operations
            st.record.state = "ended"

    def _write(self, st: _Stream, lines: list[bytes], *, known_only: bool = False) -> None:
        """Track open operations and append `lines` to the shard. `known_only`: drop
        completions of operations whose invoke never arrived (behind a gap that never closed)."""
        keep: list[bytes] = []
        for line in lines:
            rec = json.loads(line)
            op, kind = rec["op"], rec["type"]
            if kind == "invoke":
                st.open[op] = (rec["f"], rec["user"], rec.get("value") or {})
            elif st.open.pop(op, None) is None and known_only:
                st.record.dropped_lines += 1
                continue
            keep.append(line)
        if keep:
            st.shard.write_lines(keep)
        now = time.time()
        st.record.batches += 1
        st.record.lines += len(keep)
        st.record.first_wall = st.record.first_wall or now
        st.record.last_wall = now

    def mark_missing(self, client_id: str) -> None:
        """Locust missed the worker's heartbeats (it may come back; the first time is kept)."""
        st = self._streams.get(client_id)
        if st is not None and st.record.missing_wall is None and st.record.state == "streaming":
            st.record.missing_wall = time.time()

    def unfinished(self) -> list[WorkerStream]:
        """Streams still owing batches (no end message yet, or a gap before it)."""
        return [st.record for st in self._streams.values() if st.record.state != "lost" and not st.record.complete]

    def declare_lost(self, client_id: str) -> WorkerStream:
        """The worker will send nothing more: its open operations become `info`."""
        st = self._streams[client_id]
        rec = st.record
        if rec.state == "lost":
            return rec
        for seq in sorted(st.pending):  # what arrived behind a gap is still evidence
            self._write(st, st.pending.pop(seq), known_only=True)
        rec.state, rec.lost_wall, rec.lost_mono = "lost", time.time(), time.monotonic()
        error = (f"load worker {rec.describe()} was lost after its history batch {rec.last_seq}: "
                 "the outcome is unknown")
        lines = [history_line("info", op, f, rec.worker, user, rec.lost_wall, rec.lost_mono, value, error)
                 for op, (f, user, value) in st.open.items()]
        rec.lost_open = len(lines)
        st.open.clear()
        if lines:
            st.shard.write_lines(lines)
            rec.lines += len(lines)
        return rec

    def finish(self) -> list[WorkerStream]:
        """Declare every unfinished stream lost and write the ledger; returns the lost ones."""
        lost = [self.declare_lost(rec.client_id) for rec in self.unfinished()]
        self.write_ledger()
        return lost

    def records(self) -> list[WorkerStream]:
        out = []
        for st in self._streams.values():
            st.record.held = len(st.pending)
            out.append(st.record)
        return sorted(out, key=lambda r: (len(r.worker), r.worker))

    def write_ledger(self) -> None:
        write_json_atomic(self.ledger, {"workers": [asdict(r) for r in self.records()]})

    def close(self) -> None:
        for st in self._streams.values():
            st.shard.close()


def read_ledger(path: str | Path) -> list[WorkerStream] | None:
    """The ledger's entries; None when there is none (a run without a master, or it died)."""
    data = read_json(Path(path))
    if not isinstance(data, dict) or not isinstance(data.get("workers"), list):
        return None
    known = {f.name for f in fields(WorkerStream)}
    out = []
    for entry in data["workers"]:
        if isinstance(entry, dict) and "worker" in entry and "client_id" in entry:
            out.append(WorkerStream(**{k: v for k, v in entry.items() if k in known}))
    return out


def ledger_notes(records: list[WorkerStream], t0_wall: float) -> list[str]:
    """What a reader of the verdict must know about the workers: lost ones by name, and
    batches that arrived too late to count."""
    notes = []
    for r in records:
        if r.state == "lost":
            def at(wall: float | None) -> str:
                return f"t={wall - t0_wall:.1f} s" if wall and t0_wall else "an unknown time"

            last = at(r.last_wall) if r.last_wall else "never"
            missing = f"Locust missed its heartbeats from {at(r.missing_wall)}; " if r.missing_wall else ""
            notes.append(f"load worker {r.describe()} was lost: its last history batch (#{r.last_seq}) arrived at "
                         f"{last}; {missing}declared lost at {at(r.lost_wall)}, when the load ended; "
                         f"{r.lost_open} of its operations had no recorded outcome and count as info (unknown)"
                         + (f"; {r.dropped_lines} completions behind a missing batch were dropped" if r.dropped_lines else ""))
        if r.late:
            notes.append(f"load worker {r.describe()}: {r.late} history batches arrived after it was declared lost "
                         "and are not in the history (their operations count as info)")
    return notes
