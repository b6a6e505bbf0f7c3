"""Operations as wholes: an `info` operation took effect everywhere it should or nowhere.

The outcome checker widens each figure by what an `info` operation (outcome unknown) would
have moved, one figure at a time. Judged that way, a sale whose gross count moved but whose
amount did not passes: each figure alone is inside its band. A whole operation is one
event applied by every subscriber of its topic, so its figures move together: this module
asks whether *some* choice of which `info` operations took effect — each one wholly, in
every figure, journal entry and stock line it touches, or not at all — explains every
figure at once, and which way each operation must have gone.

Every figure touched by an `info` operation is one `Row`: the change observed, the bounds
the other operations allow (ok effects, effects still due for republish, tolerated
duplicates), and the `info` operations' effects on it. Operations with the same effects
everywhere are interchangeable (the figures cannot tell them apart) and are weighed as one
count. Rows that share an operation form a component; each component is searched (depth
first, with the bounds of what the undecided operations can still add, under a node budget)
for a consistent choice, and then once per operation for a choice that goes the other way:

* applied / not applied -- every consistent choice agrees
* either                -- consistent both ways (the figures cannot tell)
* m of n applied        -- n interchangeable operations, of which exactly m took effect
* inconsistent          -- no choice explains the figures: a half-applied operation (fails)
* undetermined          -- the search budget ran out (unknown)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

NODE_BUDGET = 200_000  # search nodes per component and question


@dataclass(slots=True)
class Row:
    """One figure an `info` operation touches: observed change, the bounds without any `info`
    effect, and each `info` operation's effect on it."""

    part: str
    key: str
    observed: float
    lo: float
    hi: float
    tol: float
    terms: dict[str, float] = field(default_factory=dict)
    failed: bool = False  # the figure alone is already outside its band (reported there)

    @property
    def need(self) -> tuple[float, float]:
        """The interval the `info` effects together must fall in."""
        return self.observed - self.hi - self.tol, self.observed - self.lo + self.tol


@dataclass(slots=True)
class Resolution:
    """Which way each `info` operation went, and the components no choice explains."""

    ops: dict[str, str] = field(default_factory=dict)  # op id -> applied | not applied | either | ...
    inconsistent: list[dict[str, Any]] = field(default_factory=list)
    undetermined: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    ops: list[str]
    effects: dict[int, float]  # row index -> effect of one operation


class _Search:
    """Depth-first search for counts x_g in [0, len(ops)] with every row's sum inside its need."""

    def __init__(self, groups: list[_Group], rows: list[Row]) -> None:
        self.groups, self.rows = groups, rows
        # Most effects first: big rows prune early.
        self.order = sorted(range(len(groups)), key=lambda g: -len(groups[g].effects))
        n = len(self.order)
        self.rest_lo: list[dict[int, float]] = [dict() for _ in range(n + 1)]
        self.rest_hi: list[dict[int, float]] = [dict() for _ in range(n + 1)]
        for pos in range(n - 1, -1, -1):
            g = groups[self.order[pos]]
            lo, hi = dict(self.rest_lo[pos + 1]), dict(self.rest_hi[pos + 1])
            k = len(g.ops)
            for r, v in g.effects.items():
                lo[r] = lo.get(r, 0.0) + min(0.0, k * v)
                hi[r] = hi.get(r, 0.0) + max(0.0, k * v)
            self.rest_lo[pos], self.rest_hi[pos] = lo, hi
        self.nodes = 0

    def _fits(self, sums: dict[int, float], pos: int, touched: dict[int, float]) -> bool:
        lo_rest, hi_rest = self.rest_lo[pos], self.rest_hi[pos]
        for r in touched:
            need_lo, need_hi = self.rows[r].need
            s = sums.get(r, 0.0)
            if s + lo_rest.get(r, 0.0) > need_hi + 1e-9 or s + hi_rest.get(r, 0.0) < need_lo - 1e-9:
                return False
        return True

    def solve(self, domains: dict[int, list[int]] | None = None) -> dict[int, int] | None | str:
        """One consistent choice {group: count}, None if there is none, "budget" if the search ran out."""
        self.nodes = 0
        choice: dict[int, int] = {}
        sums: dict[int, float] = {}
        # Rows no group touches at all have a fixed sum of 0.
        if not self._fits(sums, 0, {r: 0.0 for r in range(len(self.rows))}):
            return None

        def dfs(pos: int) -> bool | None:
            if pos == len(self.order):
                return True
            self.nodes += 1
            if self.nodes > NODE_BUDGET:
                return None
            gi = self.order[pos]
            g = self.groups[gi]
            values = (domains or {}).get(gi) or list(range(len(g.ops) + 1))
            for x in values:
                for r, v in g.effects.items():
                    sums[r] = sums.get(r, 0.0) + x * v
                if self._fits(sums, pos + 1, g.effects):
                    choice[gi] = x
                    found = dfs(pos + 1)
                    if found is not False:
                        if found is None:
                            return None
                        return True
                for r, v in g.effects.items():
                    sums[r] -= x * v
            return False

        found = dfs(0)
        if found is None:
            return "budget"
        return dict(choice) if found else None


def _components(groups: list[_Group]) -> list[list[int]]:
    """Groups that share a row, transitively."""
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for gi, g in enumerate(groups):
        for r in g.effects:
            if r in owner:
                parent[find(gi)] = find(owner[r])
            else:
                owner[r] = gi
    out: dict[int, list[int]] = defaultdict(list)
    for gi in range(len(groups)):
        out[find(gi)].append(gi)
    return list(out.values())


def resolve(rows: list[Row]) -> Resolution:
    """Weigh the `info` operations of `rows` as wholes (see the module docstring)."""
    res = Resolution()
    rows = [r for r in rows if r.terms]
    footprint: dict[str, dict[int, float]] = defaultdict(dict)
    for ri, row in enumerate(rows):
        for op, v in row.terms.items():
            if abs(v) > 1e-12:
                footprint[op][ri] = v
            else:
                footprint.setdefault(op, {})
    by_print: dict[tuple[tuple[int, float], ...], list[str]] = defaultdict(list)
    for op, eff in footprint.items():
        by_print[tuple(sorted((r, round(v, 6)) for r, v in eff.items()))].append(op)
    groups = [_Group(sorted(ops), dict(fp)) for fp, ops in by_print.items()]
    for comp in _components(groups):
        _resolve_component([groups[g] for g in comp], rows, res)
    return res


def _resolve_component(groups: list[_Group], all_rows: list[Row], res: Resolution) -> None:
    used = sorted({r for g in groups for r in g.effects})
    local = {r: i for i, r in enumerate(used)}
    rows = [all_rows[r] for r in used]
    local_groups = [_Group(g.ops, {local[r]: v for r, v in g.effects.items()}) for g in groups]
    if not any(g.effects for g in local_groups):  # operations that move no figure: nothing to tell
        for g in local_groups:
            for op in g.ops:
                res.ops[op] = "either"
        return
    search = _Search(local_groups, rows)
    first = search.solve()
    ops = [op for g in local_groups for op in g.ops]
    if first == "budget":
        for op in ops:
            res.ops[op] = "undetermined"
        res.undetermined.append(f"{len(ops)} info operation(s) touching {len(rows)} figure(s) could not be "
                                f"weighed as wholes within {NODE_BUDGET} search steps")
        return
    if first is None:
        for op in ops:
            res.ops[op] = "inconsistent"
        if not any(r.failed for r in rows):
            res.inconsistent.append({
                "operations": ops[:20],
                "figures": [{"part": r.part, "key": r.key, "observed": _num(r.observed),
                             "without_info": _span(r.lo, r.hi),
                             "info_effects": {op: _num(v) for op, v in list(r.terms.items())[:10]}}
                            for r in rows[:30]],
                "why": "no choice of these info operations, each applied wholly or not at all, explains "
                       "every figure they touch (an operation half applied)"})
        return
    assert isinstance(first, dict)
    for gi, g in enumerate(local_groups):
        k, x = len(g.ops), first[gi]
        others = [v for v in range(k + 1) if v != x]
        alt = search.solve({gi: others})
        if alt == "budget":
            verdict = "undetermined"
        elif alt is not None:
            verdict = "either" if k == 1 else f"{x} of {k} identical (or another count)"
        elif k == 1:
            verdict = "applied" if x == 1 else "not applied"
        else:
            verdict = "applied" if x == k else ("not applied" if x == 0 else f"{x} of {k} identical applied")
        for op in g.ops:
            res.ops[op] = verdict


def _num(v: float) -> float | int:
    return int(v) if abs(v - round(v)) < 1e-9 else round(v, 2)


def _span(lo: float, hi: float) -> str:
    return str(_num(lo)) if abs(hi - lo) < 1e-9 else f"{_num(lo)} … {_num(hi)}"
