"""The mutation suite: plant defects in the stand-in's source and prove each is caught.

A checker is as good as the defects it catches. Each mutant below is a source change to a
copy of the project (business effects — whole or one event in N —, idempotency, routing,
the publisher's outbox and republish job, the breaker's state machine and timing; some show
only under a fault or a crash), run through the drill that should expose it
(bench/drills/), on real daprd. What caught it is recorded apart:

* violation   -- a checker found the defect (its `valid` is false): what the score counts;
* unknown     -- no checker said false, one could not judge (listed apart, not counted);
* expectation -- only an expectation outside the checkers failed (convergence, a breaker
                 sequence, load): listed apart, not counted;
* missed      -- the drill passed.

Every drill is also run unmutated, at least three times (`--healthy-runs`), in the same pool
and at the same concurrency as its mutants (`--jobs`): each run must pass, or a "caught"
mutant would prove nothing. A mutant the system heals by design (the outbox republish
repairs a dropped publish) is marked equivalent, with the reason, and not counted.

    .venv/bin/python bench/mutants.py [--jobs 2] [--only ID,ID] [--healthy-runs 3] [--check]
    → bench/results/mutants.json: per mutant its drill and how it was caught (violation by
      which checkers, unknown, expectation); every healthy run's verdict; the score.

`--check` only verifies that every mutant applies (each text is found exactly once).
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
HEALTHY_RUNS = 3
SCORE_GOAL = 0.95


@dataclass(frozen=True)
class Mutant:
    id: str
    category: str  # business | partial | idempotency | fault-only | routing | outbox | breaker | tolerance
    description: str
    file: str  # relative to the project root
    old: str  # exact text, found exactly once
    new: str
    drill: str  # bench/drills/<drill>.yaml
    expect: tuple[str, ...]  # checkers (or expectation groups) expected to catch it
    equivalent: str = ""  # why the system heals it by design (not counted)
    more: tuple[tuple[str, str, str], ...] = ()  # further (file, old, new) edits of the same defect

    def edits(self) -> tuple[tuple[str, str, str], ...]:
        return ((self.file, self.old, self.new), *self.more)


# One event in N (transaction numbers count per terminal from 1: 3, 10, 17, ... of every terminal).
EVERY_7TH = '% 7 == 3'


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
           "        ok = await dapr.save_state(STATESTORE, event_id, {\"event_id\": event_id})\n",
           "        ok = True  # never saved\n", "mut-subscriber-down", ("duplicates", "outcomes")),
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
    Mutant("subscriber-acks-failed-write", "routing",
           "a subscriber whose business write failed answers SUCCESS: the event is acknowledged and lost",
           f"{STACK}/common/subscriber.py",
           'return self._answer("RETRY", 500, message=f"{type(exc).__name__}: {exc}")',
           'return JSONResponse({"status": "SUCCESS"})', "mut-write-failures", ("fanout", "outcomes")),
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
    Mutant("outbox-delivered-before-publish", "outbox",
           "a publish that failed marks its event delivered: the republish job never sends it",
           f"{STACK}/common/outbox.py",
           '''" last_updated_at = ?, status = CASE WHEN status = 'published' THEN 'failed' ELSE status END,"''',
           '''" last_updated_at = ?, status = 'delivered',"''', "mut-sidecar-cut", ("fanout", "outcomes")),
    Mutant("republish-duplicates-delivered", "outbox",
           "the republish job sends delivered events again, under a new event id",
           f"{STACK}/common/outbox.py",
           '''"SELECT * FROM delivery_outbox WHERE status != 'delivered' AND created_at >= ? ORDER BY created_at",''',
           '''"SELECT * FROM delivery_outbox WHERE created_at >= ? ORDER BY created_at",''',
           "mut-terminal-cut", ("fanout", "outcomes"),
           more=((f"{STACK}/common/publisher.py",
                  '''        if services and all(s.get("status") == "received" for s in services.values()):
            await outbox.set_status(db, row["event_id"], "delivered")
            continue
''', ""),
                 (f"{STACK}/common/publisher.py", 'payload=row["payload"], attempt="republish", helper=helper,',
                  'payload={**row["payload"], "event_id": row["event_id"] + "-again"}, attempt="republish", helper=helper,'))),
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
    Mutant("breaker-reset-10pct-early", "tolerance",
           "the breaker half-opens after 90 % of its reset time (just outside the 0.05 s reset slack)",
           f"{STACK}/common/breaker.py", "self._clock() - self._opened_at >= self.reset_seconds:",
           "self._clock() - self._opened_at >= 0.9 * self.reset_seconds:", "mut-sidecar-cut", ("breaker",)),
    Mutant("dapr-http-error-is-success", "tolerance",
           "the Dapr client takes the sidecar's HTTP errors for success (a Redis cut longer than the client "
           "timeout, just outside the short cuts that only may fail calls)",
           f"{STACK}/common/dapr_client.py",
           "good = resp.status_code in ok_statuses if ok_statuses else 200 <= resp.status_code < 300",
           "good = True", "mut-terminal-cut", ("fanout", "outcomes")),
    Mutant("breaker-opens-one-late", "breaker", "the breaker opens at threshold + 1 failures",
           f"{STACK}/common/breaker.py", "if self._failures >= self.threshold:",
           "if self._failures > self.threshold:", "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-failed-trial-keeps-clock", "breaker",
           "a failed HALF_OPEN trial re-opens the breaker without restarting its OPEN period",
           f"{STACK}/common/breaker.py",
           "                    self._failures += 1\n                    self._opened_at = self._clock()\n"
           "                    self._transition(BreakerState.OPEN, f\"trial",
           "                    self._failures += 1\n"
           "                    self._transition(BreakerState.OPEN, f\"trial", "mut-sidecar-cut", ("breaker",)),
    Mutant("breaker-half-open-refuses-trial", "breaker", "HALF_OPEN admits no trial (one fewer than allowed)",
           f"{STACK}/common/breaker.py",
           "if self.unlimited_half_open or self._trials_in_flight < self.half_open_max_calls:",
           "if self.unlimited_half_open or self._trials_in_flight < self.half_open_max_calls - 1:",
           "mut-sidecar-cut", ("breaker",)),
    # ---- one event in N: lost, doubled, off by one yen, half applied ----------------------
    Mutant("journal-drops-every-7th", "partial", "journal acknowledges one transaction in 7 without applying it",
           f"{STACK}/common/subscriber.py", "        # 2. apply (business effect + applied record, one transaction)\n",
           "        if self.name == \"journal\" and int(data.get(\"transaction_no\") or 0) " + EVERY_7TH + ":\n"
           "            return JSONResponse({\"status\": \"SUCCESS\"})\n", "mut-sales", ("fanout", "outcomes")),
    Mutant("stock-doubles-every-7th", "partial", "stock moves one transaction in 7 twice",
           f"{STACK}/stock/app.py", "        after = before + sign * qty\n",
           "        after = before + sign * qty * (2 if int(data.get(\"transaction_no\") or 0) " + EVERY_7TH
           + " else 1)\n", "mut-sales", ("outcomes",)),
    Mutant("report-one-yen-off-every-7th", "partial", "report adds 1 yen to one transaction in 7",
           f"{STACK}/report/app.py", 'amount, qty = row["total_amount_with_tax"], row["total_quantity"]',
           'amount, qty = row["total_amount_with_tax"] + (1 if row["transaction_no"] ' + EVERY_7TH
           + ' else 0), row["total_quantity"]', "mut-sales", ("outcomes",)),
    Mutant("report-half-applies-every-5th", "partial",
           "report stores one transaction in 5 without its amount: its count moves, its amount does not",
           f"{STACK}/common/logstore.py", '_num(sales, "total_amount"), _num(sales, "total_amount_with_tax"),',
           '_num(sales, "total_amount"), _num(sales, "total_amount_with_tax") '
           'if _int(data, "transaction_no") % 5 != 2 else 0.0,', "mut-sales", ("outcomes",)),
    # ---- defects that show only under a fault or a crash ----------------------------------
    Mutant("redelivery-applied-again", "fault-only",
           "a redelivered event (not its first delivery) is applied again though its mark is there",
           f"{STACK}/common/subscriber.py", "            if result.found:\n",
           "            if result.found and attempt == 1:\n", "mut-subscriber-down", ("duplicates", "outcomes")),
    Mutant("mark-before-effect", "fault-only",
           "the idempotency mark is saved before the effect: a crash in between loses the event",
           f"{STACK}/common/subscriber.py", "        if self.mark_first and not self.no_idempotency:\n",
           "        if not self.no_idempotency:\n", "mut-crash", ("fanout", "outcomes")),
)


@dataclass
class Outcome:
    """One drill run: a mutant's, or a healthy one (id `healthy:<drill>#<n>`)."""

    id: str
    drill: str
    category: str
    description: str
    counted: bool
    caught: str  # violation | unknown | expectation | missed | error | pass (healthy) | fail (healthy)
    verdict: str
    violations: list[str] = field(default_factory=list)  # checkers whose valid was false
    unknown: list[str] = field(default_factory=list)  # checkers that could not judge
    expectations: list[str] = field(default_factory=list)  # other expectations that failed or were unknown
    expected_checker_caught: bool | None = None
    equivalent: str = ""
    seconds: float = 0.0
    convergence_seconds: float | None = None  # how long the system took to quiesce (sizes the drills' bounds)
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
    """Every edit of the mutant, each text found exactly once (checked before any is written)."""
    texts: dict[str, str] = {}
    for rel, old, new in m.edits():
        text = texts.get(rel) or (tree / rel).read_text(encoding="utf-8")
        found = text.count(old)
        if found != 1:
            raise SystemExit(f"mutant {m.id}: its text occurs {found} times in {rel} (must be exactly once)")
        texts[rel] = text.replace(old, new)
    for rel, text in texts.items():
        (tree / rel).write_text(text, encoding="utf-8")


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


def judged(verdict: dict) -> tuple[list[str], list[str], list[str]]:
    """(checkers that found a violation, checkers that could not judge, other expectations not met)."""
    violations, unknown, others = [], [], []
    for e in verdict.get("expectations", []):
        if e.get("passed") is True:
            continue
        if e["name"].endswith(".check"):
            (violations if e.get("passed") is False else unknown).append(e["checker"])
        elif e["name"] not in others:
            others.append(e["name"])
    return violations, unknown, others


def classify(violations: list[str], unknown: list[str], others: list[str]) -> str:
    if violations:
        return "violation"
    if unknown:
        return "unknown"
    return "expectation" if others else "missed"


def run_one(m: Mutant | None, drill: str, work: Path, label: str = "") -> Outcome:
    tree = work / (m.id if m else f"healthy-{drill}-{label}")
    copy_tree(tree)
    if m is not None:
        apply(tree, m)
    verdict, seconds, error = run_drill(tree, drill, tree / "run")
    name = m.id if m else f"healthy:{drill}#{label}"
    category, description = (m.category, m.description) if m else ("healthy", "unmutated")
    if verdict is None:
        return Outcome(name, drill, category, description, counted=False, caught="error", verdict="error",
                       seconds=round(seconds, 1), error=error)
    violations, unknown, others = judged(verdict)
    v = verdict.get("verdict", "error")
    out = Outcome(name, drill, category, description, counted=m is not None and not m.equivalent,
                  caught=classify(violations, unknown, others) if m else ("pass" if v == "pass" else "fail"),
                  verdict=v, violations=violations, unknown=unknown, expectations=others,
                  seconds=round(seconds, 1), equivalent=m.equivalent if m else "",
                  convergence_seconds=verdict.get("convergence_seconds"))
    if m is not None:
        out.expected_checker_caught = any(g in m.expect for g in violations)
    if v == "error":
        out.error = verdict.get("error") or ""
        out.caught, out.counted = "error", False  # a mutant that stops the drill proves nothing about checkers
    # A run folder worth reading stays: a mutant not caught by a violation, or a healthy drill that did not pass.
    keep = (m is not None and out.counted and out.caught != "violation") or (m is None and out.verdict != "pass")
    if keep:
        out.error = (out.error + f" run folder kept: {tree / 'run'}").strip()
    else:
        shutil.rmtree(tree, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="drills at once, mutants and healthy runs alike")
    parser.add_argument("--only", help="comma-separated mutant ids (their drills' healthy runs too)")
    parser.add_argument("--healthy-runs", type=int, default=HEALTHY_RUNS,
                        help=f"unmutated runs of each drill, every one must pass (default {HEALTHY_RUNS})")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--repeat-healthy", metavar="DRILL=N", action="append", default=[],
                        help="run a drill unmutated N times in all instead (e.g. mut-sidecar-cut=10)")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.id in args.only.split(",")]
    ids = [m.id for m in MUTANTS]
    assert len(set(ids)) == len(ids), "mutant ids must be unique"
    if args.only and len(mutants) != len(set(args.only.split(","))):
        unknown_ids = sorted(set(args.only.split(",")) - set(ids))
        raise SystemExit(f"unknown mutant id(s): {', '.join(unknown_ids)}")
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
    runs = {drill: args.healthy_runs for drill in sorted({m.drill for m in mutants})}
    runs.update((spec.split("=", 1)[0], int(spec.split("=", 1)[1])) for spec in args.repeat_healthy)
    # One pool for everything: the healthy runs meet the same concurrency (and the same
    # neighbours) as the mutants they vouch for; they are spread between the mutants.
    tasks: list[tuple[Mutant | None, str, str]] = [(m, m.drill, "") for m in mutants]
    healthy_tasks = [(None, drill, str(i)) for i in range(1, max(runs.values(), default=0) + 1)
                     for drill, n in runs.items() if i <= n]
    step = max(1, len(tasks) // max(1, len(healthy_tasks))) if healthy_tasks else 1
    for k, task in enumerate(healthy_tasks):
        tasks.insert(min(len(tasks), k * (step + 1)), task)
    healthy: list[Outcome] = []
    results: list[Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, m, drill, work, label) for m, drill, label in tasks]
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            if r.category == "healthy":
                healthy.append(r)
                print(f"{'healthy':<11} {r.id:<34} {r.verdict:<7} {', '.join(r.violations + r.unknown + r.expectations)} "
                      f"({r.seconds:g} s, quiet after {r.convergence_seconds} s) {r.error}", flush=True)
                continue
            results.append(r)
            mark = "EQUIVALENT" if r.equivalent else r.caught.upper()
            print(f"{mark:<11} {r.id:<34} {r.drill:<20} by {', '.join(r.violations) or '-'}"
                  f"{' (unknown: ' + ', '.join(r.unknown) + ')' if r.unknown else ''}"
                  f"{' (expectations: ' + ', '.join(r.expectations) + ')' if r.expectations else ''}"
                  f" ({r.seconds:g} s) {r.error}", flush=True)
    results.sort(key=lambda r: ids.index(r.id))
    healthy.sort(key=lambda h: h.id)
    counted = [r for r in results if r.counted]
    by_violation = [r for r in counted if r.caught == "violation"]
    score = len(by_violation) / len(counted) if counted else 0.0
    healthy_ok = bool(healthy) and all(h.verdict == "pass" for h in healthy)
    doc = {
        "what": "source mutants of the stand-in, each run through the drill that should expose it (bench/mutants.py)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "wall_seconds": round(time.monotonic() - t0, 1),
        "jobs": args.jobs,
        "score": {"counted": len(counted), "caught_by_violation": len(by_violation), "ratio": round(score, 3),
                  "goal": SCORE_GOAL,
                  "unknown_only": [r.id for r in counted if r.caught == "unknown"],
                  "expectation_only": [r.id for r in counted if r.caught == "expectation"],
                  "missed": [r.id for r in counted if r.caught == "missed"],
                  "equivalent": [r.id for r in results if r.equivalent],
                  "errors": [r.id for r in results if r.caught == "error" and not r.equivalent],
                  "categories": {c: sum(1 for r in counted if r.category == c) for c in
                                 sorted({r.category for r in counted})}},
        "healthy": {"runs_per_drill": runs, "all_pass": healthy_ok,
                    "verdicts": {d: [h.verdict for h in healthy if h.drill == d] for d in runs},
                    "runs": [asdict(h) for h in healthy]},
        "mutants": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nmutation score (violations only) {len(by_violation)}/{len(counted)} = {score:.0%}; "
          f"unknown only: {len(doc['score']['unknown_only'])}, expectation only: {len(doc['score']['expectation_only'])}, "
          f"missed: {len(doc['score']['missed'])}; healthy drills {'all pass' if healthy_ok else 'NOT all pass'} "
          f"({sum(len(v) for v in doc['healthy']['verdicts'].values())} runs); {doc['wall_seconds']:g} s → {args.out}")
    return 0 if healthy_ok and score >= SCORE_GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
