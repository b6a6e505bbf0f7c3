"""Collect the first N examples of each failure kind, and count all of them."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Examples:
    """kind -> first `limit` example dicts; `counts` keeps the true total per kind."""

    __slots__ = ("limit", "items", "counts")

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, example: dict[str, Any]) -> None:
        self.counts[kind] += 1
        bucket = self.items.setdefault(kind, [])
        if len(bucket) < self.limit:
            bucket.append(example)

    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)
