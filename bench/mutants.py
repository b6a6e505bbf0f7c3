"""The mutation suite: plant defects in the stand-in's source and prove each is caught.

A checker is as good as the defects it catches. Each mutant below is a one-place source
change to a copy of the project (business effects, idempotency, routing, the publisher's
outbox and republish job, the breaker's state machine and timing), run through the drill
that should expose it (bench/drills/). Every one of those drills is also run unmutated:
its healthy verdict must be a pass, or a "caught" mutant would prove nothing. A mutant the
system heals by design (the outbox republish repairs a dropped publish) is marked
equivalent, with the reason, and not counted. Drills run on real daprd.

    .venv/bin/python bench/mutants.py [--jobs 2] [--only ID,ID] [--check]
    → bench/results/mutants.json: per mutant its drill, caught or not, by which checker;
      the healthy runs' verdicts; the mutation score.

`--check` only verifies that every mutant applies (its text is found exactly once).
The defect switches of the stand-in (scenarios/defects/) are a separate, older suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRILLS = ROOT / "bench" / "drills"
RESULT = ROOT / "bench" / "results" / "mutants.json"
COPY = ("kugeldrill", "chaos", "reports", "locustfiles", "scenarios", "bench/drills", "pyproject.toml")
DRILL_TIMEOUT = 240.0
STACK = "kugeldrill/stack/services"


@dataclass(frozen=True)
class Mutant:
    id: str
    category: str  # business | idempotency | routing | outbox | breaker
    description: str
    file: str  # relative to the project root
    old: str  # exact text, found exactly once
    new: str
    drill: str  # bench/drills/<drill>.yaml
    expect: tuple[str, ...]  # checkers (or expectation groups) expected to catch it
    equivalent: str = ""  # why the system heals it by design (not counted)


MUTANTS: tuple[Mutant, ...] = (
    # ---- business effects: counts, amounts, quantities, signs, which rows -------------
    Mutant("report-void-counted-as-sale", "business", "report: a voided sale adds to the gross count",
           f"{STACK}/report/app.py", 'gross["count"] += sign', 'gross["count"] += 1', "mut-sales", ("outcomes",)),
    Mutant("report-amount-without-tax", "business", "report: gross amount summed without tax",
           f"{STACK}/report/app.py", 'amount, qty = row["total_amount_with_tax"], row["total_quantity"]',
           'amount, qty = row["total_amount"], row["total_quantity"]', "mut-sales", ("outcomes",)),
    Mutant("report-returns-in-gross", "business", "report: returns counted into gross sales",
           f"{STACK}/report/app.py", "if t in (NORMAL_SALES, VOID_SALES):",
           "if t in (NORMAL_SALES, VOID_SALES, RETURN_SALES):", "mut-sales", ("outcomes",)),
    Mutant("report-return-payments-added", "business", "report: a return's payments added instead of refunded",
           f"{STACK}/report/app.py", "RETURN_SALES: -1, VOID_SALES: -1}", "RETURN_SALES: 1, VOID_SALES: -1}",
           "mut-sales", ("outcomes",)),
    Mutant("report-cash-out-as-cash-in", "business", "report: cash-outs counted as cash-ins",
           f"{STACK}/report/app.py",
           'cash_in = {"amount": sum(c["amount"] for c in cash if c["amount"] > 0), "count": sum(1 for c in cash if c["amount"] > 0)}',
           'cash_in = {"amount": sum(c["amount"] for c in cash if c["amount"] > 0), "count": sum(1 for c in cash if c["amount"] != 0)}',
           "mut-sales", ("outcomes",)),
    Mutant("journal-cancel-as-sale", "business", "journal: a cancelled cart journalled as a sale (101, not -101)",
           f"{STACK}/journal/app.py", "ttype = -101  # NormalSalesCancel, journal only", "ttype = 101",
           "mut-sales", ("outcomes",)),
    Mutant("journal-cash-amount-unsigned", "business", "journal: a cash-out's amount journalled without its sign",
           f"{STACK}/journal/app.py", "_entry(conn, data, 401 if amount > 0 else 402, amount, 0)",
           "_entry(conn, data, 401 if amount > 0 else 402, abs(amount), 0)", "mut-sales", ("outcomes",)),
    Mutant("journal-open-close-swapped", "business", "journal: open journalled as close and close as open",
           f"{STACK}/journal/app.py",
           '_entry(conn, data, 301 if (data.get("operation") or data.get("event_type")) == "open" else 302, 0, 0)',
           '_entry(conn, data, 302 if (data.get("operation") or data.get("event_type")) == "open" else 301, 0, 0)',
           "mut-sales", ("outcomes",)),
    Mutant("journal-void-amount-from-tax", "business", "journal: a transaction's amount taken from its tax",
           f"{STACK}/journal/app.py", 'float(sales.get("total_amount_with_tax") or 0)', 'float(sales.get("tax_amount") or 0)',
           "mut-sales", ("outcomes",)),
    Mutant("stock-sale-adds", "business", "stock: a sale adds its quantity instead of taking it away",
           f"{STACK}/stock/app.py", 'UPDATE_TYPES = {101: ("SALE", -1)', 'UPDATE_TYPES = {101: ("SALE", 1)',
           "mut-sales", ("outcomes",)),
    Mutant("stock-void-ignored", "business", "stock: a void does not put the items back",
           f"{STACK}/stock/app.py", '201: ("VOID", 1), ', "", "mut-sales", ("outcomes",)),
    Mutant("stock-first-line-only", "business", "stock: only the first line of a transaction is applied",
           f"{STACK}/stock/app.py", "for line in data.get(\"line_items\") or []:",
           "for line in (data.get(\"line_items\") or [])[:1]:", "mut-sales", ("outcomes",)),
    Mutant("stock-quantity-once", "business", "stock: every line moves one unit, whatever its quantity",
           f"{STACK}/stock/app.py", 'qty = float(line.get("quantity") or 0)', 'qty = 1.0 if line.get("quantity") else 0.0',
           "mut-sales", ("outcomes",)),
    # ---- idempotency ---------------------------------------------------------------------
    Mutant("dedup-by-cloudevent-id", "idempotency",
           "subscribers check the CloudEvent id (new on every republish) instead of the event id",
           f"{STACK}/common/subscriber.py", "result = await dapr.get_state_result(STATESTORE, event_id)",
           "result = await dapr.get_state_result(STATESTORE, cloudevent_id or event_id)",
           "mut-subscriber-down", ("duplicates", "outcomes")),
    Mutant("mark-never-saved", "idempotency", "subscribers never save their idempotency marker",
           f"{STACK}/common/subscriber.py",
           "        if not await dapr.save_state(STATESTORE, event_id, {\"event_id\": event_id}):\n",
           "        if False:\n", "mut-subscriber-down", ("duplicates", "outcomes")),
    Mutant("duplicate-applied-anyway", "idempotency", "a delivery recognised as a duplicate is applied again",
           f"{STACK}/common/subscriber.py",
           "                return await self._finish_duplicate(request, route, data, event_id)\n",
           "", "mut-subscriber-down", ("duplicates", "outcomes")),
    # ---- routing -------------------------------------------------------------------------
    Mutant("report-drops-cash-route", "routing", "report does not subscribe to cash logs",
           f"{STACK}/report/app.py", '        Route(*CASHLOG, apply=insert_cashlog, callback="terminal"),\n', "",
           "mut-sales", ("fanout", "outcomes")),
    Mutant("journal-cash-to-openclose", "routing", "journal files cash logs through the open/close route",
           f"{STACK}/journal/app.py", 'Route(*CASHLOG, apply=apply_cashlog, callback="terminal")',
           'Route(*CASHLOG, apply=apply_opencloselog, callback="terminal")', "mut-sales", ("outcomes",)),
    # ---- publisher outbox and republish ---------------------------------------------------
    Mutant("republish-skips-failed", "outbox", "the republish job skips events whose publish failed",
           f"{STACK}/common/outbox.py", "WHERE status != 'delivered' AND created_at >= ?",
           "WHERE status = 'published' AND created_at >= ?", "mut-sidecar-cut", ("outcomes",)),
    Mutant("republish-wrong-topic", "outbox", "the republish job sends every event to the tranlog topic",
           f"{STACK}/common/publisher.py", 'pubsub=row["pubsub"], topic=row["topic"],',
           'pubsub=row["pubsub"], topic="topic-tranlog",',
           "mut-terminal-cut", ("fanout", "outcomes")),
    Mutant("void-not-published", "outbox", "a void is stored in the outbox but never published at once",
           f"{STACK}/cart/transactions.py", "    await svc.publish(tran)\n    return ok(tran_answer(tran)",
           "    return ok(tran_answer(tran)", "mut-sales", ("fanout", "outcomes"),
           equivalent="the outbox keeps the void and the republish job publishes it within the drill "
                      "(Kugelpos' safety net, by design): report, journal and stock end up right"),
    # ---- the breaker's state machine and timing ---------------------------------------------
    Mutant("breaker-opens-one-early", "breaker", "the breaker opens at threshold − 1 failures",
           f"{STACK}/common/breaker.py", "if self._failures >= self.threshold:",
           "if self._failures >= self.threshold - 1:", "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-open-3x-reset", "breaker", "the breaker stays OPEN three times its reset time",
           f"{STACK}/common/breaker.py", "self._clock() - self._opened_at >= self.reset_seconds:",
           "self._clock() - self._opened_at >= 3 * self.reset_seconds:", "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-half-open-unlimited", "breaker", "HALF_OPEN admits every call, not one trial",
           f"{STACK}/common/breaker.py",
           "if self.unlimited_half_open or self._trials_in_flight < self.half_open_max_calls:",
           "if True:", "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-success-keeps-count", "breaker", "a success in CLOSED does not reset the failure count",
           f"{STACK}/common/breaker.py",
           "elif self._state is BreakerState.CLOSED and not self.cumulative_failures:",
           "elif self._state is BreakerState.CLOSED and self.cumulative_failures:", "mut-sidecar-flap", ("breaker",)),
    Mutant("breaker-trial-reopens", "breaker", "a successful HALF_OPEN trial opens the breaker again",
           f"{STACK}/common/breaker.py", 'self._transition(BreakerState.CLOSED, f"trial {admission.op} succeeded")',
           'self._opened_at = self._clock()\n                    self._transition(BreakerState.OPEN, "trial succeeded")',
           "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-open-admits", "breaker", "an OPEN breaker lets calls through",
           f"{STACK}/common/breaker.py", "            if state is BreakerState.CLOSED:\n",
           "            if state in (BreakerState.CLOSED, BreakerState.OPEN):\n", "mut-sidecar-cut", ("breaker",)),
)


@dataclass
class Outcome:
    id: str
    drill: str
    category: str
    description: str
    counted: bool
    caught: bool | None
    verdict: str
    caught_by: list[str] = field(default_factory=list)
    expected_checker_caught: bool | None = None
    equivalent: str = ""
    seconds: float = 0.0
    error: str = ""


def copy_tree(dest: Path) -> None:
    """A private copy of the code a drill runs (symlinks kept: kugeldrill/chaos -> ../chaos)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in COPY:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, symlinks=True, ignore=ignore)
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def apply(tree: Path, m: Mutant) -> None:
    path = tree / m.file
    text = path.read_text(encoding="utf-8")
    found = text.count(m.old)
    if found != 1:
        raise SystemExit(f"mutant {m.id}: its text occurs {found} times in {m.file} (must be exactly once)")
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")


def run_drill(tree: Path, drill: str, out: Path) -> tuple[dict | None, float, str]:
    """Run one drill from `tree` (its code first on the import path); (verdict.json, seconds, error)."""
    env = dict(os.environ, PYTHONPATH=str(tree), PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "kugeldrill", "run", str(tree / "bench" / "drills" / f"{drill}.yaml"),
           "--out", str(out), "--plain"]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=DRILL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0, f"drill did not finish within {DRILL_TIMEOUT:g} s"
    seconds = time.monotonic() - t0
    verdict = out / "verdict.json"
    if not verdict.exists():
        return None, seconds, f"exit {proc.returncode}, no verdict.json: {proc.stderr[-600:]}"
    return json.loads(verdict.read_text()), seconds, ""


def failed_groups(verdict: dict) -> list[str]:
    """Which checkers (or expectation groups: load, convergence, breaker sequences) said no."""
    groups = []
    for e in verdict.get("expectations", []):
        if e.get("passed") is not True:
            name = e["checker"] if e["name"].endswith(".check") else e["name"]
            if name not in groups:
                groups.append(name)
    return groups


def run_one(m: Mutant | None, drill: str, work: Path, label: str = "") -> Outcome:
    tree = work / (m.id if m else f"healthy-{label or drill}")
    copy_tree(tree)
    if m is not None:
        apply(tree, m)
    verdict, seconds, error = run_drill(tree, drill, tree / "run")
    name = m.id if m else f"healthy:{drill}"
    if verdict is None:
        return Outcome(name, drill, m.category if m else "healthy", m.description if m else "unmutated",
                       counted=False, caught=None, verdict="error", seconds=round(seconds, 1),
                       error=error)
    groups = failed_groups(verdict)
    v = verdict.get("verdict", "error")
    out = Outcome(name, drill, m.category if m else "healthy", m.description if m else "unmutated",
                  counted=m is not None and not m.equivalent, caught=v == "fail" if m else None, verdict=v,
                  caught_by=groups, seconds=round(seconds, 1),
                  equivalent=m.equivalent if m else "")
    if m is not None:
        out.expected_checker_caught = any(g in m.expect for g in groups)
    if v == "error":
        out.error = verdict.get("error") or ""
        out.caught, out.counted = None, False  # a mutant that stops the drill proves nothing about checkers
    # A run folder worth reading stays: a missed mutant's, or a healthy drill that did not pass.
    keep = (m is not None and out.counted and not out.caught) or (m is None and out.verdict != "pass")
    if keep:
        out.error = (out.error + f" run folder kept: {tree / 'run'}").strip()
    else:
        shutil.rmtree(tree, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutant drills at once (healthy runs go one at a time)")
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--repeat-healthy", metavar="DRILL=N", action="append", default=[],
                        help="run a drill unmutated N times in all (e.g. mut-sidecar-cut=10): each must pass")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.id in args.only.split(",")]
    ids = [m.id for m in MUTANTS]
    assert len(set(ids)) == len(ids), "mutant ids must be unique"
    tmp = tempfile.mkdtemp(prefix="kd-mutants-")
    try:
        return _run(args, mutants, ids, Path(tmp))
    finally:
        # Keep the folder only if a kept run folder is in it.
        if not any(Path(tmp).iterdir()):
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, mutants: list[Mutant], ids: list[str], work: Path) -> int:
    for m in mutants:  # every mutant applies before anything runs
        tree = work / "check"
        if not tree.exists():
            copy_tree(tree)
        apply(tree, m)
        shutil.rmtree(tree)
    if args.check:
        print(f"{len(mutants)} mutants apply")
        return 0
    t0 = time.monotonic()
    drills = sorted({m.drill for m in mutants})
    healthy = []
    # Alone, so a healthy pass is not a quiet-machine accident either way.
    for drill in drills:
        h = run_one(None, drill, work)
        healthy.append(h)
        print(f"healthy {h.id}: {h.verdict} ({h.seconds:g} s) {', '.join(h.caught_by)} {h.error}", flush=True)
    repeats = [(spec.split("=", 1)[0], int(spec.split("=", 1)[1])) for spec in args.repeat_healthy]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        extra = [pool.submit(run_one, None, drill, work, f"{drill}-{i}")
                 for drill, n in repeats for i in range(2 if drill in drills else 1, n + 1)]
        for fut in concurrent.futures.as_completed(extra):
            h = fut.result()
            healthy.append(h)
            print(f"healthy {h.drill} (again): {h.verdict} ({h.seconds:g} s) {', '.join(h.caught_by)} {h.error}",
                  flush=True)
    results: list[Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, m, m.drill, work): m for m in mutants}
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            results.append(r)
            mark = "EQUIVALENT" if r.equivalent else ("caught" if r.caught else ("ERROR" if r.caught is None else "MISSED"))
            print(f"{mark:<10} {r.id:<32} {r.drill:<20} {r.verdict:<5} by {', '.join(r.caught_by) or '-'} "
                  f"({r.seconds:g} s) {r.error}", flush=True)
    results.sort(key=lambda r: ids.index(r.id))
    counted = [r for r in results if r.counted]
    caught = [r for r in counted if r.caught]
    score = len(caught) / len(counted) if counted else 0.0
    doc = {
        "what": "source mutants of the stand-in, each run through the drill that should expose it (bench/mutants.py)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "wall_seconds": round(time.monotonic() - t0, 1),
        "jobs": args.jobs,
        "score": {"counted": len(counted), "caught": len(caught), "ratio": round(score, 3),
                  "equivalent": sum(1 for r in results if r.equivalent),
                  "errors": sum(1 for r in results if r.caught is None and not r.equivalent)},
        "healthy": [asdict(h) for h in healthy],
        "mutants": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    healthy_ok = all(h.verdict == "pass" for h in healthy)
    print(f"\nmutation score {len(caught)}/{len(counted)} = {score:.0%}; healthy drills "
          f"{'all pass' if healthy_ok else 'NOT all pass'}; {doc['wall_seconds']:g} s → {args.out}")
    return 0 if healthy_ok and score >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
