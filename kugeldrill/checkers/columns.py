"""Hot-loop access to record fields, whatever holds the records.

`rows(records, *names)` gives tuples of the named fields from a list of records (a C
attrgetter, no copies) or from one of the column stores that large runs use
(`checkers.index.PublicationStore` / `ApplicationStore`, `checkers.columnar.OpColumns`),
which answer from their columns without building a record per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any


def rows(records: Iterable[Any], *names: str) -> Iterator[tuple[Any, ...]]:
    """Tuples of the named fields from a record list or a column store (see the module docstring)."""
    stored = getattr(records, "rows", None)
    if stored is not None:
        return stored(*names)
    return map(attrgetter(*names), records)
