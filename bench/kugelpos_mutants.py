"""Planted defects in the real Kugelpos code: each one must turn `kugeldrill kugelpos drill` red.

A checker is as good as the defects it catches, on the code users care about too. Each mutant
below is a one-place change to a copy of a Kugelpos checkout (report, journal, stock, terminal,
cart's publish path: the business effects, the events and what subscribers do with them). For
each, the copy is drilled exactly as a nightly job would drill it —

    kugeldrill kugelpos drill --src <copy> --known kugelpos-known.yaml bench/drills/kugelpos-mutants.yaml

— and the mutant is *caught by a violation* when the command exits 1 with a new failure that
is a checker's violation (not an unknown, not a drill that could not run). The unmodified
checkout is drilled the same way `--healthy` times (3) and must pass every time: known
defects aside, nothing new. One drill at a time (each starts its own deployment: ~2 minutes at load average 5–10).

    .venv/bin/python bench/kugelpos_mutants.py [--src ../shared/kugelpos-backend] [--only ID,ID]
        [--healthy 3] [--check] [--out bench/results/kugelpos_mutants.json]

`--check` only verifies that every mutant applies to the checkout (its text found exactly once).
"""

from __future__ import annotations

import argparse
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
DEFAULT_SRC = ROOT.parent / "shared" / "kugelpos-backend"
DRILL = ROOT / "bench" / "drills" / "kugelpos-mutants.yaml"
KNOWN = ROOT / "kugelpos-known.yaml"
RESULT = ROOT / "bench" / "results" / "kugelpos_mutants.json"
SUITE_TIMEOUT = 1800.0
NOT_VIOLATIONS = ("unknown", "failed", "error", "interrupted")  # failure kinds that are not a checker's violation


@dataclass(frozen=True)
class Mutant:
    id: str
    service: str  # report | journal | stock | terminal | cart
    description: str
    file: str  # relative to the checkout's services/
    old: str  # exact text, found exactly once
    new: str
    expect: tuple[str, ...]  # checkers expected to catch it


MUTANTS: tuple[Mutant, ...] = (
    Mutant("stock-sale-counted-twice", "stock", "a sale takes every item's quantity off twice",
           "stock/app/services/stock_service.py",
           "quantity_change=quantity * sign,  # negative for sales, positive for returns",
           "quantity_change=quantity * sign * 2,  # negative for sales, positive for returns", ("outcomes",)),
    Mutant("stock-return-removes-stock", "stock", "a return takes stock off instead of putting it back",
           "stock/app/services/stock_service.py",
           "                update_type = UpdateType.RETURN\n                sign = 1",
           "                update_type = UpdateType.RETURN\n                sign = -1", ("outcomes",)),
    Mutant("stock-skips-first-line", "stock", "the first line of every transaction is never applied",
           "stock/app/services/stock_service.py",
           "            for item in line_items:", "            for item in line_items[1:]:", ("outcomes",)),
    Mutant("journal-cash-amount-off", "journal", "a cash movement's journal entry is one yen off",
           "journal/app/services/log_service.py",
           "            amount=cashlog.amount,", "            amount=cashlog.amount + 1,", ("outcomes",)),
    Mutant("journal-cancel-as-sale", "journal", "a cancelled cart is journalled as a sale (101, not -101)",
           "journal/app/services/log_service.py",
           "                tran_type = TransactionType.NormalSalesCancel.value",
           "                tran_type = TransactionType.NormalSales.value", ("outcomes",)),
    Mutant("report-cash-out-ignored", "report", "the sales report leaves cash-outs out of its cash totals",
           "report/app/services/plugins/sales_report_maker.py",
           "        cash_out_amount = sum([cash.amount for cash in results if cash.amount < 0])",
           "        cash_out_amount = sum([0 for cash in results if cash.amount < 0])", ("outcomes",)),
    Mutant("report-drops-events", "report", "report acknowledges every event and stores none of them",
           "report/app/api/v1/tran.py",
           "        await receive_method(log_data)\n        logger.info(f\"{log_type} received successfully.",
           "        logger.info(f\"{log_type} received successfully.", ("outcomes", "fanout")),
    Mutant("terminal-cash-event-doubled", "terminal", "the published cash log carries twice the counted amount",
           "terminal/app/services/terminal_service.py",
           "        message[\"event_id\"] = event_id\n        message[\"event_type\"] = \"cash_in_out\"",
           "        message[\"event_id\"] = event_id\n        message[\"event_type\"] = \"cash_in_out\"\n"
           "        message[\"amount\"] = message[\"amount\"] * 2", ("outcomes",)),
    Mutant("cart-tranlog-total-off", "cart", "the published tranlog of a sale or cancel says one yen more than the bill",
           "cart/app/services/tran_service.py",
           "        event_message = self.convert_datetime(tranlog.model_dump())\n"
           "        event_message[\"event_id\"] = event_id  # add event_id to tranlog dict\n"
           "        event_distinations = [\n            {\"service_name\": \"report\", \"status\": \"pending\"},\n"
           "            {\"service_name\": \"journal\", \"status\": \"pending\"},\n",
           "        event_message = self.convert_datetime(tranlog.model_dump())\n"
           "        event_message[\"event_id\"] = event_id  # add event_id to tranlog dict\n"
           "        event_message[\"sales\"][\"total_amount_with_tax\"] += 1\n"
           "        event_distinations = [\n            {\"service_name\": \"report\", \"status\": \"pending\"},\n"
           "            {\"service_name\": \"journal\", \"status\": \"pending\"},\n", ("outcomes",)),
)


@dataclass
class Run:
    label: str
    exit_code: int | None
    seconds: float
    line: str = ""  # the suite's one line
    new: list[str] = field(default_factory=list)  # new failures: "<checker> <kind>"
    unknown: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    suite_dir: str = ""
    error: str = ""

    @property
    def violations(self) -> list[str]:
        return [f for f in self.new if f.split(" ", 1)[-1] not in NOT_VIOLATIONS]


def copy_checkout(src: Path, dest: Path) -> Path:
    """The checkout's files (no VCS metadata, no caches), writable."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "node_modules",
                                                             "results_backup", ".venv"))
    return dest


def apply(tree: Path, m: Mutant) -> None:
    path = tree / "services" / m.file
    text = path.read_text(encoding="utf-8")
    if text.count(m.old) != 1:
        raise SystemExit(f"mutant {m.id}: expected its text exactly once in {m.file}, found {text.count(m.old)} "
                         "(the checkout changed: update the mutant)")
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")


def drill(src: Path, out: Path, label: str) -> Run:
    """`kugeldrill kugelpos drill` on `src` with the mutants' drill and the known defects."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "kugeldrill", "kugelpos", "drill", "--src", str(src), "--known", str(KNOWN),
           "--runs-dir", str(out), "--plain", str(DRILL)]
    log = out.parent / f"{out.name}.log"
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT,
                                  env=dict(os.environ, PYTHONUNBUFFERED="1"))
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    run = Run(label, code, round(time.monotonic() - t0, 1), suite_dir=str(out))
    try:
        suite = json.loads((out / "suite.json").read_text())
    except (OSError, ValueError) as exc:
        run.error = f"no suite.json: {exc}; see {log}"
        return run
    run.line = suite.get("line", "")
    for d in suite.get("drills", []):
        for f in d.get("failures", []):
            label_ = f"{f['checker']} {f['kind']}"
            {"new": run.new, "unknown": run.unknown, "known": run.known}[f["class"]].append(label_)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(os.environ.get("KUGELPOS_SRC") or DEFAULT_SRC))
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--healthy", type=int, default=3, help="runs of the unmodified checkout (3)")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies")
    parser.add_argument("--keep", type=Path, help="keep the copies and suite folders here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.id in args.only.split(",")]
    if args.only and len(mutants) != len(args.only.split(",")):
        known = ", ".join(m.id for m in MUTANTS)
        raise SystemExit(f"--only names an unknown mutant; known: {known}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kd-kugelpos-mutants-"))
    work.mkdir(parents=True, exist_ok=True)
    for m in mutants:  # every mutant applies before anything runs
        tree = copy_checkout(args.src, work / f"check-{m.id}")
        apply(tree, m)
        shutil.rmtree(tree)
    if args.check:
        print(f"all {len(mutants)} mutants apply to {args.src}")
        return 0
    t0 = time.time()
    healthy: list[Run] = []
    clean = copy_checkout(args.src, work / "healthy")
    for i in range(args.healthy):
        run = drill(clean, work / f"healthy-{i + 1}", f"healthy {i + 1}")
        healthy.append(run)
        print(f"healthy {i + 1}: exit {run.exit_code} in {run.seconds:.0f}s — {run.line or run.error}", flush=True)
    results = []
    for m in mutants:
        tree = copy_checkout(args.src, work / m.id)
        apply(tree, m)
        run = drill(tree, work / f"{m.id}-suite", m.id)
        caught = run.exit_code == 1 and bool(run.violations)
        results.append({**asdict(m), "exit_code": run.exit_code, "seconds": run.seconds, "line": run.line,
                        "new_failures": run.new, "violations": run.violations, "unknown": run.unknown,
                        "caught_by_violation": caught,
                        "caught_by_expected_checker": caught and any(v.split(" ")[0] in m.expect for v in run.violations),
                        "error": run.error, "suite_dir": run.suite_dir})
        print(f"{m.id}: {'CAUGHT' if caught else 'not caught'} (exit {run.exit_code}, {run.seconds:.0f}s) — "
              f"{run.line or run.error}", flush=True)
    passed = sum(1 for r in healthy if r.exit_code == 0)
    caught = sum(1 for r in results if r["caught_by_violation"])
    report = {
        "generated_wall": round(t0, 1), "seconds": round(time.time() - t0, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "checkout": str(args.src), "drill": str(DRILL.relative_to(ROOT)), "known_defects": str(KNOWN.relative_to(ROOT)),
        "command": "kugeldrill kugelpos drill --src <copy> --known kugelpos-known.yaml bench/drills/kugelpos-mutants.yaml",
        "healthy": {"runs": [asdict(r) for r in healthy], "passed": passed, "of": len(healthy)},
        "mutants": results,
        "score": {"planted": len(results), "caught_by_violation": caught,
                  "services": sorted({r["service"] for r in results})},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"healthy {passed}/{len(healthy)}; caught {caught}/{len(results)} planted defects by a violation → {args.out}")
    return 0 if passed == len(healthy) and caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
