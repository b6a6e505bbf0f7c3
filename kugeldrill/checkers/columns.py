"""Columnar storage for millions of records: one list (or float array) per field.

A slots dataclass instance costs ~100 bytes plus 24 per float; at a million operations
with full fan-out (about five million records) that alone passes a gigabyte. A column per
field costs 8 bytes per value (floats unboxed in `array('d')`, strings shared), and the
checkers' hot loops read the columns directly. Iterating still yields ordinary records
(made on the fly), so every checker works on either form; records read from a column
store are copies: change the store with `append`, not by mutating what iteration yields.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import fields
from operator import attrgetter
from typing import Any, Generic, TypeVar

from kugeldrill.checkers.model import Application, Op, Publication

R = TypeVar("R")


class RecordColumns(Generic[R]):
    """A list-like store of `record_type` records kept as columns.

    float_fields are stored unboxed; `None` in an optional float field is stored as NaN
    and given back as None.
    """

    __slots__ = ("record_type", "names", "_cols", "_float", "_optional", "_get")

    def __init__(self, record_type: type[R], float_fields: Iterable[str] = (), optional_floats: Iterable[str] = (),
                 records: Iterable[R] = ()) -> None:
        self.record_type = record_type
        self.names = tuple(f.name for f in fields(record_type))  # type: ignore[arg-type]
        self._float = frozenset(float_fields) | frozenset(optional_floats)
        self._optional = frozenset(optional_floats)
        self._cols: dict[str, Any] = {n: array("d") if n in self._float else [] for n in self.names}
        self._get = attrgetter(*self.names)
        self.extend(records)

    def append(self, record: R) -> None:
        self.append_values(*self._get(record))

    def append_values(self, *values: Any) -> None:
        """Positional values in field order (the adapters' fast path, no record object)."""
        for name, value in zip(self.names, values):
            if value is None and name in self._optional:
                value = math.nan
            self._cols[name].append(value)

    def extend(self, records: Iterable[R]) -> None:
        for r in records:
            self.append(r)

    def column(self, name: str) -> Any:
        """The stored column (list or array('d')); NaN stands for None in optional floats."""
        return self._cols[name]

    def __len__(self) -> int:
        return len(self._cols[self.names[0]])

    def __bool__(self) -> bool:
        return len(self) > 0

    def _row(self, values: tuple[Any, ...]) -> R:
        if self._optional:
            values = tuple(None if n in self._optional and v != v else v for n, v in zip(self.names, values))
        return self.record_type(*values)

    def __iter__(self) -> Iterator[R]:
        for values in zip(*(self._cols[n] for n in self.names)):
            yield self._row(values)

    def __getitem__(self, i: int) -> R:
        return self._row(tuple(self._cols[n][i] for n in self.names))


def application_columns(records: Iterable[Application] = ()) -> RecordColumns[Application]:
    return RecordColumns(Application, ("mono", "wall"), (), records)


def publication_columns(records: Iterable[Publication] = ()) -> RecordColumns[Publication]:
    return RecordColumns(Publication, ("mono", "wall"), (), records)


def op_columns(records: Iterable[Op] = ()) -> RecordColumns[Op]:
    return RecordColumns(Op, ("invoke_mono", "invoke_wall"), ("complete_mono", "complete_wall"), records)


def rows(records: Iterable[Any], *names: str) -> Iterator[tuple[Any, ...]]:
    """Tuples of the named fields from a record list or a RecordColumns (hot-loop access).

    For a column store this zips the columns (no record objects); for a folded store
    (checkers.index) it asks the store; for a list it maps a C attrgetter. Optional float columns come back as NaN, not None.
    """
    if isinstance(records, RecordColumns):
        return zip(*(records.column(n) for n in names))
    folded = getattr(records, "rows", None)  # the folded stores of checkers.index
    if folded is not None:
        return folded(*names)
    return map(attrgetter(*names), records)
