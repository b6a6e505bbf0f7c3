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

NODE_BUDGET = 60_000  # search nodes per component and question (about 3 s of the worst case)


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
    """Depth-first search for counts x_g in [0, len(ops)] with every row's sum inside its need.

    Rows are numbered 0..R-1 and every per-row figure is a plain list (this is the hot loop):
    the sums so far, and per search depth the least and most the groups still undecided can
    add to each row. A choice is extended only while every row it touches can still reach
    its need."""

    def __init__(self, groups: list[_Group], rows: list[Row]) -> None:
        self.groups = groups
        n_rows = len(rows)
        needs = [r.need for r in rows]
        self.need_lo = [lo - 1e-9 for lo, _ in needs]
        self.need_hi = [hi + 1e-9 for _, hi in needs]
        # Groups that touch the most (and the largest) effects first: they prune earliest.
        self.order = sorted(range(len(groups)),
                            key=lambda g: (-len(groups[g].effects), -max((abs(v) for v in groups[g].effects.values()),
                                                                          default=0.0)))
        n = len(self.order)
        self.effects = [sorted(groups[g].effects.items()) for g in self.order]
        self.rest_lo = [[0.0] * n_rows for _ in range(n + 1)]
        self.rest_hi = [[0.0] * n_rows for _ in range(n + 1)]
        for pos in range(n - 1, -1, -1):
            lo, hi = list(self.rest_lo[pos + 1]), list(self.rest_hi[pos + 1])
            k = len(groups[self.order[pos]].ops)
            for r, v in self.effects[pos]:
                if v < 0:
                    lo[r] += k * v
                else:
                    hi[r] += k * v
            self.rest_lo[pos], self.rest_hi[pos] = lo, hi
        self.nodes = 0

    def solve(self, domains: dict[int, list[int]] | None = None) -> dict[int, int] | None | str:
        """One consistent choice {group: count}, None if there is none, "budget" if the search ran out."""
        self.nodes = 0
        n, need_lo, need_hi = len(self.order), self.need_lo, self.need_hi
        lo0, hi0 = self.rest_lo[0], self.rest_hi[0]
        if any(lo0[r] > need_hi[r] or hi0[r] < need_lo[r] for r in range(len(need_lo))):
            return None
        sums = [0.0] * len(need_lo)
        choice = [0] * n
        doms = [((domains or {}).get(self.order[pos]) or list(range(len(self.groups[self.order[pos]].ops) + 1)))
                for pos in range(n)]

        def dfs(pos: int) -> bool | None:
            if pos == n:
                return True
            self.nodes += 1
            if self.nodes > NODE_BUDGET:
                return None
            eff = self.effects[pos]
            rest_lo, rest_hi = self.rest_lo[pos + 1], self.rest_hi[pos + 1]
            for x in doms[pos]:
                ok = True
                for r, v in eff:
                    sums[r] += x * v
                for r, _ in eff:
                    s = sums[r]
                    if s + rest_lo[r] > need_hi[r] or s + rest_hi[r] < need_lo[r]:
                        ok = False
                        break
                if ok:
                    choice[pos] = x
                    found = dfs(pos + 1)
                    if found is None:
                        return None
                    if found:
                        return True
                for r, v in eff:
                    sums[r] -= x * v
            return False

        found = dfs(0)
        if found is None:
            return "budget"
        return {self.order[pos]: choice[pos] for pos in range(n)} if found else None


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
