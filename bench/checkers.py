"""Benchmark: read and check a synthetic drill of N operations with full fan-out, from its files.

Goals (issue 23): 1,000,000 operations in <= 6 s with peak memory <= 300 MiB, and 10,000,000 in
<= 60 s with <= 2 GiB, on this 2-core machine. The run folder (`history.jsonl`, one events file
per service: N operations, N publications, 2.9 N applications) is written first, streamed to
disk (`checkers.synthetic.write_full_fanout_run`: ~1.8 GB per million operations), then a
child process reads it as a drill does (`load_standin_inputs`: the history in a forked reader
beside it, checkers/adapters/aside.py; the publishers' events files in the child itself, then
the subscribers' files shared between it and a second forked reader) and runs every checker
(`run_all`); its wall time is the goal's time (reading included). The healthy run must
get today's verdicts (fan-out and duplicates pass; breaker and outcomes unknown: no breaker
records, no business reads) with every delivery counted once, or the timing means nothing.

Memory, three ways (the goal is judged on `peak_bytes`):
* `peak_rss_own_bytes` / `peak_rss_reader_bytes`: getrusage's peak RSS of the child and of the
  largest process it forked. Their sum (`peak_rss_bytes`) is an upper bound that counts twice
  the pages a forked reader shares with the child (the interpreter and libraries, ~50 MB, and
  for the events reader the event table it inherits).
* `peak_pss_bytes`: the largest sum of the processes' proportional set sizes (shared pages
  split between them, /proc/PID/smaps_rollup), sampled (every 20 ms or more, see
  `PssSampler`): what the machine gave.
* `peak_bytes`: the larger of `peak_pss_bytes` and the child's own peak RSS (a sampled peak
  may miss a spike between samples; the child's own is exact).
CPU: `cpu_seconds` counts the child and the readers it waited for.

    .venv/bin/python bench/checkers.py [--ops N] [--rounds R] [--uuids] [--run-dir DIR] [--keep]

Each of `--rounds` rounds (default 3) reads the same files in a fresh child; the figures
recorded are the median round's (by wall time), every round's wall, CPU and peak beside them
(`rounds`): the machine is shared, and one round can be a neighbour's. The time goal is judged
on the median round, the memory goal on the largest peak of any round (`peak_bytes_max`).

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
import threading
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
        "peak_rss_own_bytes": own,
        "peak_rss_reader_bytes": kids,
        "peak_rss_bytes": own + kids,  # an upper bound: pages shared by the fork counted twice
        "baseline_rss_bytes": rss0,
        "verdicts": {r.checker: r.valid for r in results},
        "fanout_once": fanout.counts.get("totals", {}).get("once"),
        "fanout_expected": fanout.counts.get("totals", {}).get("expected"),
    }


class PssSampler:
    """The largest sum of proportional set sizes of a process and its descendants, sampled.

    Reading smaps_rollup walks a process's page tables (milliseconds for gigabytes), and this
    thread shares the machine with the process it measures: it waits twenty times as long as
    a reading took (at least `every`), so it costs the measured run about 5 % of one core."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as fh:
                        todo.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
        return pids

    @staticmethod
    def _pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        pause = self.every
        while not self._stop.wait(pause):
            t = time.perf_counter()
            self.peak = max(self.peak, sum(self._pss(pid) for pid in self._tree()))
            pause = max(self.every, 20 * (time.perf_counter() - t))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the same files; the median one is recorded")
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
    rounds: list[dict] = []
    try:
        load_before = _load()
        for _ in range(max(1, args.rounds)):
            proc = subprocess.Popen([sys.executable, __file__, "--child", str(run_dir)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, cwd=ROOT)
            sampler = PssSampler(proc.pid)
            try:
                out, err = proc.communicate(timeout=1800)
            finally:
                sampler.stop()
            if proc.returncode != 0:
                print(err, file=sys.stderr)
                return 1
            one = json.loads(out.strip().splitlines()[-1])
            one["peak_pss_bytes"] = sampler.peak
            one["peak_bytes"] = max(sampler.peak, one["peak_rss_own_bytes"])
            rounds.append(one)
        load_after = _load()
    finally:
        if not args.keep and args.run_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    res = sorted(rounds, key=lambda r: r["total_seconds"])[len(rounds) // 2]
    goal = GOALS.get(args.ops)
    peak_max = max(r["peak_bytes"] for r in rounds)
    res.update({
        "rounds": [{k: r[k] for k in ("total_seconds", "cpu_seconds", "peak_bytes", "verdicts")} for r in rounds],
        "peak_bytes_max": peak_max,
        "uuid_event_ids": args.uuids,
        "files_bytes": size,
        "generate_seconds": gen_seconds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
        "goal_seconds": goal[0] if goal else None,
        "goal_peak_bytes": goal[1] if goal else None,
        "met_time": res["total_seconds"] <= goal[0] if goal else None,
        "met_memory": peak_max <= goal[1] if goal else None,
        "verdicts_as_expected": all(r["verdicts"] == EXPECTED and r["fanout_once"] == r["fanout_expected"]
                                    for r in rounds),
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
