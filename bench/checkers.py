"""Benchmark: read and check a synthetic drill of N operations with full fan-out, from its files.

Goals (issue 23): 1,000,000 operations in <= 6 s with peak RSS <= 300 MiB, and 10,000,000 in
<= 60 s with <= 2 GiB, on this 2-core machine. The run folder (`history.jsonl`, one events file
per service: N operations, N publications, 2.9 N applications) is written first, streamed to
disk (`checkers.synthetic.write_full_fanout_run`: ~1.8 GB per million operations), then a
child process reads it as a drill does (`load_standin_inputs`) and runs every checker
(`run_all`); its time is the goal's time (reading included), its peak RSS (getrusage, the
child and any process it started) the goal's memory. The healthy run must get today's
verdicts (fan-out and duplicates pass; breaker and outcomes unknown: no breaker records, no
business reads) with every delivery counted once, or the timing means nothing.

    .venv/bin/python bench/checkers.py [--ops N] [--uuids] [--run-dir DIR] [--keep]

Results go to bench/results/checkers.json under `runs.<N>` (one entry per size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "checkers.json"
MIB = 1 << 20
GOALS = {1_000_000: (6.0, 300 * MIB), 10_000_000: (60.0, 2048 * MIB)}  # ops -> (seconds, peak bytes)
EXPECTED = {"breaker": None, "duplicates": True, "fanout": True, "outcomes": None}


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (a forked reader)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(run_dir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from kugeldrill.checkers import CheckParams, run_all
    from kugeldrill.checkers.adapters.standin import load_standin_inputs

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0, c0 = time.perf_counter(), _cpu()
    inputs = load_standin_inputs(run_dir, None)
    t1, c1 = time.perf_counter(), _cpu()
    results = run_all(inputs, CheckParams())
    t2, c2 = time.perf_counter(), _cpu()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    fanout = next(r for r in results if r.checker == "fanout")
    return {
        "ops": len(inputs.ops),
        "publications": len(inputs.publications),
        "applications": len(inputs.applications),
        "read_seconds": round(t1 - t0, 3),
        "check_seconds": round(t2 - t1, 3),
        "total_seconds": round(t2 - t0, 3),
        "cpu_seconds": round(c2 - c0, 3),
        "read_cpu_seconds": round(c1 - c0, 3),
        "peak_rss_bytes": own + kids,  # the child's peak plus its own children's (an upper bound)
        "peak_rss_own_bytes": own,
        "baseline_rss_bytes": rss0,
        "verdicts": {r.checker: r.valid for r in results},
        "fanout_once": fanout.counts.get("totals", {}).get("once"),
        "fanout_expected": fanout.counts.get("totals", {}).get("expected"),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--uuids", action="store_true", help="36-character event ids, as in a real run")
    ap.add_argument("--run-dir", type=Path, help="write (or reuse, if it holds N operations) the run folder here")
    ap.add_argument("--keep", action="store_true", help="keep the generated run folder")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    sys.path.insert(0, str(ROOT))
    from kugeldrill.checkers.synthetic import write_full_fanout_run

    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="kd-bench-checkers-"))
    marker = run_dir / "bench-run.json"
    shape = {"ops": args.ops, "uuids": args.uuids}
    gen_seconds = None
    if not (marker.is_file() and json.loads(marker.read_text()) == shape):
        t = time.perf_counter()
        write_full_fanout_run(run_dir, args.ops, uuids=args.uuids)
        gen_seconds = round(time.perf_counter() - t, 1)
        marker.write_text(json.dumps(shape))
    size = sum(p.stat().st_size for p in run_dir.rglob("*.jsonl"))
    try:
        load_before = _load()
        proc = subprocess.run([sys.executable, __file__, "--child", str(run_dir)], capture_output=True, text=True,
                              timeout=1800, cwd=ROOT)
        load_after = _load()
    finally:
        if not args.keep and args.run_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    goal = GOALS.get(args.ops)
    res.update({
        "uuid_event_ids": args.uuids,
        "files_bytes": size,
        "generate_seconds": gen_seconds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
        "goal_seconds": goal[0] if goal else None,
        "goal_peak_bytes": goal[1] if goal else None,
        "met_time": res["total_seconds"] <= goal[0] if goal else None,
        "met_memory": res["peak_rss_bytes"] <= goal[1] if goal else None,
        "verdicts_as_expected": res["verdicts"] == EXPECTED and res["fanout_once"] == res["fanout_expected"],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = saved.get("runs", {}) if isinstance(saved.get("runs"), dict) else {}
    runs[str(args.ops)] = res
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": dict(sorted(runs.items(), key=lambda kv: int(kv[0])))}, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    ok = res["verdicts_as_expected"] and res["met_time"] is not False and res["met_memory"] is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
