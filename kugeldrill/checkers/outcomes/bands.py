"""The comparison of one figure and one part: a band of allowed values and a table of rows.

Every part (report, journal, stock) turns the load's operations into bands — the values a
figure may take given which operations certainly, maybe or owedly took effect — and compares
what it observed with them in a `Table`. One type for all three parts keeps a figure's
verdict (pass, mismatch, pending, unknown) decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kugeldrill.checkers.model import Op
from kugeldrill.checkers.wholes import Row

#: Why a band is wider than the operations alone say: a duplicate the duplicate checker tolerates.
TOLERATED = "a tolerated duplicate (its own record says why: see duplicates) may add it again"


@dataclass(slots=True)
class Band:
    """The values a figure may take: ok effects move both ends, info effects one.

    Effects still due for republish (checkers.pending) are maybe-effects of the band and
    certain ones of `full` (the band once they land): a value in the band but not in `full`
    is pending, not wrong."""

    lo: float = 0.0
    hi: float = 0.0
    full_lo: float = 0.0
    full_hi: float = 0.0
    unknown: str = ""  # why the band cannot be trusted (an info effect of unknown size)
    note: str = ""  # why it is wider than the operations alone say (a tolerated duplicate)
    info: dict[str, float] = field(default_factory=dict)  # info operation -> its effect here (checkers.wholes)

    def add(self, value: float, certain: bool, pending: bool = False, info_op: str | None = None) -> None:
        """One effect: `certain` (an ok one), owed (`pending`: due for republish), or maybe;
        `info_op` names the info operation a maybe-effect belongs to (weighed as a whole)."""
        if info_op is not None and not certain and not pending:
            self.info[info_op] = self.info.get(info_op, 0.0) + value
        self.lo, self.hi = _moved(self.lo, self.hi, value, certain)
        self.full_lo, self.full_hi = _moved(self.full_lo, self.full_hi, value, certain or pending)

    def without_info(self) -> tuple[float, float]:
        """The band as the other operations alone make it (no info operation applied)."""
        return (self.lo - sum(v for v in self.info.values() if v < 0),
                self.hi - sum(v for v in self.info.values() if v > 0))

    def holds(self, observed: float, tol: float) -> bool:
        return self.lo - tol <= observed <= self.hi + tol

    def holds_full(self, observed: float, tol: float) -> bool:
        return self.full_lo - tol <= observed <= self.full_hi + tol

    def text(self) -> str:
        def span(lo: float, hi: float) -> str:
            return fmt(lo) if abs(hi - lo) < 1e-9 else f"{fmt(lo)} … {fmt(hi)}"

        base = span(self.full_lo, self.full_hi)
        if abs(self.full_lo - self.lo) > 1e-9 or abs(self.full_hi - self.hi) > 1e-9:
            return f"{base} (or {span(self.lo, self.hi)} while republish is pending)"
        return base


def _moved(lo: float, hi: float, value: float, certain: bool) -> tuple[float, float]:
    """A span after one effect: a certain one moves both ends, a maybe-effect only the end
    it would push out."""
    if certain:
        return lo + value, hi + value
    return (lo + value, hi) if value < 0 else (lo, hi + value)


def fmt(v: float) -> str:
    return str(int(v)) if abs(v - round(v)) < 1e-9 else f"{v:.2f}"


@dataclass
class Table:
    """One part's comparison: rows of (key, expected, observed, verdict)."""

    part: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)  # text, or records for one terminal (contracts §9)
    wholes: list[Row] = field(default_factory=list)  # figures info operations touch (checkers.wholes)

    def add(self, key: str, band: Band, observed: float | None, tol: float) -> bool | None:
        pending = ""
        if band.unknown or observed is None:
            verdict: bool | None = None
        elif band.holds_full(observed, tol):
            verdict = True
        elif band.holds(observed, tol):
            verdict, pending = None, "effects still due for republish are not in it yet"
        else:
            verdict = False
        note = band.unknown or pending or band.note or ("" if observed is not None else "not observed")
        self.rows.append({"key": key, "expected": band.text(), "observed": "–" if observed is None else fmt(observed),
                          "ok": verdict, **({"note": note} if note else {})})
        if band.info and not band.unknown and observed is not None:
            lo, hi = band.without_info()
            self.wholes.append(Row(self.part, key, observed, lo, hi, tol, dict(band.info), failed=verdict is False))
        return verdict


def certainty(op: Op) -> bool | None:
    """True: its effect must be there; None: may be; False (a `fail`): must not."""
    if op.outcome == "ok":
        return True
    if op.outcome == "fail":
        return False
    return None
