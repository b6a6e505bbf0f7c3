"""Cheap live observation during a drill: new lines of the stand-in's events files.

Read incrementally (byte offsets), so the console costs almost nothing each second
even when the files grow to millions of lines in a soak.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from kugeldrill.drill.locust import read_history


class EventTail:
    """Running counts (published/applied) and each breaker's last state."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = dict(files)
        self.offsets: dict[str, int] = {k: 0 for k in self.files}
        self.published = 0
        self.applied = 0
        self.breakers: dict[str, str] = {}

    def poll(self) -> None:
        for app, path in self.files.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets[app])
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n")
            if end < 0:
                continue
            self.offsets[app] += end + 1
            for raw in chunk[: end + 1].splitlines():
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                kind = rec.get("kind")
                if kind == "publish" and rec.get("outcome") == "ok":
                    self.published += 1
                elif kind == "applied":
                    self.applied += 1
                elif kind == "breaker":
                    key = f"{rec.get('service', app)}/{rec.get('breaker', '')}".rstrip("/")
                    self.breakers[key] = str(rec.get("to", "")).upper()


def latest_load(run_dir: Path, t0_wall: float) -> dict[str, float] | None:
    """The last Aggregated row of Locust's stats history (None before the first tick)."""
    rows = read_history(run_dir, t0_wall)
    return rows[-1] if rows else None
