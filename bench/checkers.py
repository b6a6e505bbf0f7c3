"""Benchmark: check a synthetic history of 1,000,000 operations with full fan-out.

Goal (issue 6): <= 10 s and <= 1 GiB on this machine. The run happens in a child process
so its peak RSS (getrusage ru_maxrss) is the checkers' own, not this script's. Reported:
time to build the records (what adapters would hand over), time for `run_all` (breaker,
duplicates, fan-out incl. the history match), peak RSS of the child, and the verdicts
(the healthy synthetic run must pass fan-out and duplicates, or the timing means nothing).

    .venv/bin/python bench/checkers.py [--ops N] [--uuids]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "checkers.json"
GOAL_SECONDS = 10.0
GOAL_BYTES = 1 << 30


def _rss_now() -> int:
    """Current resident set size (bytes) from /proc, 0 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def child(n_ops: int, uuids: bool, compact: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    from kugeldrill.checkers import CheckParams, run_all
    from kugeldrill.checkers.synthetic import full_fanout_run

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    inputs = full_fanout_run(n_ops, uuids=uuids, compact=compact)
    rss_built = _rss_now()
    t1, c1 = time.perf_counter(), time.process_time()
    results = run_all(inputs, CheckParams())
    t2, c2 = time.perf_counter(), time.process_time()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "ops": n_ops,
        "publications": len(inputs.publications),
        "applications": len(inputs.applications),
        "uuid_event_ids": uuids,
        "compact_records": compact,
        "rss_after_records_bytes": rss_built,
        "build_seconds": round(t1 - t0, 3),
        "check_seconds": round(t2 - t1, 3),
        "check_cpu_seconds": round(c2 - c1, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "peak_rss_bytes": rss,
        "baseline_rss_bytes": rss0,
        "verdicts": {r.checker: r.valid for r in results},
        "fanout_once": results[2].counts["totals"]["once"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--uuids", action="store_true", help="36-character event ids, as in a real run")
    ap.add_argument("--lists", action="store_true", help="records as lists of dataclasses, not columns")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.ops, args.uuids, not args.lists)))
        return 0
    cmd = [sys.executable, __file__, "--child", "--ops", str(args.ops)] + (["--uuids"] if args.uuids else []) + (
        ["--lists"] if args.lists else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["goal_check_seconds"] = GOAL_SECONDS
    res["goal_peak_bytes"] = GOAL_BYTES
    res["met_time"] = res["check_seconds"] <= GOAL_SECONDS
    res["met_memory"] = res["peak_rss_bytes"] <= GOAL_BYTES
    res["healthy_verdicts_ok"] = res["verdicts"].get("fanout") is True and res["verdicts"].get("duplicates") is True
    res["python"] = platform.python_version()
    res["machine"] = platform.machine()
    res["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if res["met_time"] and res["met_memory"] and res["healthy_verdicts_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
