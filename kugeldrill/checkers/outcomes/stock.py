"""The stock's part of the outcome check: each item's quantity moved by the load's items.

A sale takes its items' quantities off, a void or a return puts them back; an item without
a row before the drill had none (Kugelpos upserts the row on its first movement).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.keys import op_key
from kugeldrill.checkers.model import BusinessSnapshot, Op
from kugeldrill.checkers.outcomes.bands import TOLERATED, Band, Table, certainty, fmt
from kugeldrill.checkers.params import OutcomePolicy
from kugeldrill.ground.numbers import number_or_none

STOCK_SIGN = {"sale": -1, "void": 1, "return": 1}



def judge_stock(ops: list[Op], before: BusinessSnapshot, after: BusinessSnapshot, p: OutcomePolicy,
                ex: Examples, tolerated: Mapping[str, Counter[str]], pending: set[str]) -> Table:
    table = Table("stock")
    assert before.stock is not None and after.stock is not None
    bands: dict[str, Band] = defaultdict(Band)
    extras = tolerated.get("stock", Counter())
    unseen = ""  # an operation moved items the load never saw: any item's row may be off by it
    for op in ops:
        certain = certainty(op)
        sign = STOCK_SIGN.get(op.f)
        if certain is False or sign is None:
            continue
        items = op.value.get("items")
        if not items:
            table.unknown.append(f"{op.f} {op.op_id} carries no items")
            if items is None:
                unseen = unseen or f"a {op.f} whose items the load never saw ({op.op_id})"
            continue
        extra = extras.get(op_key(op.f, op.value), 0)
        owed = op.op_id in pending
        whole = op.op_id if certain is None and not owed else None
        for it in items:
            if it.get("item_code") is None:
                unseen = unseen or f"a {op.f} with an item line whose code the load never saw ({op.op_id})"
                continue
            band = bands[str(it.get("item_code"))]
            quantity = number_or_none(it.get("quantity"))
            if quantity is None:
                band.unknown = f"a {op.f} whose item quantity the load never saw"
                continue
            for i in range(1 + extra):
                band.add(sign * quantity, bool(certain) and i == 0 and not owed, owed and i == 0,
                         whole if i == 0 else None)
            if extra:
                band.note = TOLERATED
    for item in sorted(set(bands) | set(after.stock) | set(before.stock)):
        # An item without a stock row has none yet (Kugelpos upserts the row on its first
        # movement): 0 before. A row read before and not after is not 0 but unseen.
        now, then = after.stock.get(item, None if item in before.stock else 0.0), before.stock.get(item, 0.0)
        observed = None if now is None or then is None else now - then  # a quantity not carried: unknown
        band = bands.get(item, Band())
        if unseen and not band.unknown:
            band = Band(band.lo, band.hi, band.full_lo, band.full_hi, unseen, band.note, band.info)
        if table.add(item, band, observed, 1e-9) is False:
            ex.add("stock_mismatch", {"key": f"stock {item}", "expected": band.text(), "observed": fmt(observed)})  # type: ignore[arg-type]
    return table
