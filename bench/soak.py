"""Benchmark: a long soak on the embedded stand-in, measured.

Runs `kugeldrill run soak --duration D` (default one hour: the soak scenario's ten-minute
plan of faults, repeated) as a user would, and watches it from outside: every second the
resident memory of the drill and every process under it (Locust's master and workers,
the stand-in's services, their sidecars, Redis, Toxiproxy), every 30 seconds the run
folder's size. Writes bench/results/soak.json with

* the verdict (and which expectations were not met),
* the peak RSS of the whole process tree (the sum at one instant), of the drill process
  itself (it holds the checkers' inputs while it judges) and of the largest process of
  each kind, plus a coarse timeline of memory and disk over the run (a leak shows as a
  slope),
* the run folder's size at its largest (before the drill compacts it) and at the end,
  each as disk per hour of load,
* the seconds the drill spent judging (its `check` phase: merging the history, reading
  the run's evidence and the business state, running the checkers) and its other phases.

    .venv/bin/python bench/soak.py [--duration 1h] [--scenario soak] [--keep DIR] [--out FILE]

A short proof: `--duration 3m`. The figures for the README come from the one-hour run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "soak.json"
SAMPLE_SECONDS = 1.0
DISK_EVERY = 30  # samples between two run-folder sizes (walking the folder costs)
TIMELINE_EVERY = 30.0  # seconds between two points of the reported timeline


def role(proc: psutil.Process) -> str:
    """A short name for what a process is: locust, redis-server, daprd, toxiproxy, or the
    stand-in service it runs (its module), else its executable's name."""
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    text = " ".join(cmd)
    for name in ("locust", "redis-server", "daprd", "toxiproxy"):
        if name in text:
            return name
    if "kugeldrill" in text and " run " in f" {text} ":
        return "kugeldrill run"
    for part in cmd:  # python -m kugeldrill.stack.services / .launch.supervisor / chaos' watchdog ...
        if part.startswith("kugeldrill."):
            name = part.rsplit(".", 1)[-1]
            return "stand-in service" if name == "services" else name
    return Path(cmd[0]).name if cmd else "?"


def tree_rss(root: psutil.Process) -> tuple[int, dict[str, int], int]:
    """(sum of RSS over the tree, largest RSS per role, the root's own RSS); gone processes skipped."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, {}, 0
    total, own, by_role = 0, 0, {}
    for proc in procs:
        try:
            rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        total += rss
        if proc.pid == root.pid:
            own = rss
        kind = role(proc)
        by_role[kind] = max(by_role.get(kind, 0), rss)
    return total, by_role, own


def folder_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """(bytes under `path`, bytes per top-level entry: history, events, logs, stack, ...)."""
    parts: dict[str, int] = defaultdict(int)
    for dirpath, _, files in os.walk(path):
        top = Path(dirpath).relative_to(path).parts
        for name in files:
            try:
                parts[top[0] if top else name] += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return sum(parts.values()), dict(parts)


def watch(proc: subprocess.Popen, run_dir: Path) -> dict[str, Any]:
    """Sample the drill's process tree and run folder until it exits."""
    root = psutil.Process(proc.pid)
    peak_tree, peak_own, peak_role = 0, 0, defaultdict(int)
    peak_disk, peak_parts, samples, timeline, last_point = 0, {}, 0, [], -TIMELINE_EVERY
    disk = None  # the run folder's size at its latest walk
    start = time.monotonic()
    while proc.poll() is None:
        total, by_role, own = tree_rss(root)
        peak_tree, peak_own = max(peak_tree, total), max(peak_own, own)
        for kind, rss in by_role.items():
            peak_role[kind] = max(peak_role[kind], rss)
        if samples % DISK_EVERY == 0:
            disk, parts = folder_bytes(run_dir)
            if disk > peak_disk:
                peak_disk, peak_parts = disk, parts
        elapsed = time.monotonic() - start
        if elapsed - last_point >= TIMELINE_EVERY:
            last_point = elapsed
            timeline.append({"t": round(elapsed), "tree_rss_mib": round(total / 2**20, 1),
                             "run_folder_mib": None if disk is None else round(disk / 2**20, 1)})
        samples += 1
        time.sleep(SAMPLE_SECONDS)
    return {"peak_tree": peak_tree, "peak_own": peak_own, "peak_role": dict(peak_role), "peak_disk": peak_disk,
            "peak_parts": peak_parts,
            "timeline": timeline, "wall_seconds": time.monotonic() - start, "samples": samples}


def parse_duration(text: str) -> float:
    sys.path.insert(0, str(ROOT))
    from kugeldrill.ground.durations import duration_arg

    return duration_arg(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="1h", help="how long the load runs (default 1h; 3m for a short proof)")
    parser.add_argument("--scenario", default="soak", help="library scenario or file (default soak)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="run folder to keep (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULT, help="result file (default bench/results/soak.json)")
    args = parser.parse_args(argv)
    try:
        seconds = parse_duration(args.duration)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--duration: {exc}")
    base = Path(tempfile.mkdtemp(prefix="kd-soak-")) if args.keep is None else None
    run_dir = args.keep if args.keep is not None else base / "run"
    cmd = [sys.executable, "-m", "kugeldrill", "run", args.scenario, "--duration", args.duration,
           "--out", str(run_dir), "--plain"]
    load_before = os.getloadavg()[0]
    log = (base or run_dir.parent) / "soak-console.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            seen = watch(proc, run_dir)
        except BaseException:
            proc.send_signal(signal.SIGINT)  # the drill heals and tears down on SIGINT
            proc.wait(timeout=300)
            raise
    try:
        verdict = json.loads((run_dir / "verdict.json").read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench/soak.py: the drill wrote no verdict ({exc}); its console: {log}")
    final_disk, final_parts = folder_bytes(run_dir)
    hours = seconds / 3600
    phases = {p["name"]: round(p["end"] - p["start"], 1) for p in verdict.get("phases") or []}
    result = {
        "benchmark": "soak",
        "scenario": args.scenario, "duration_seconds": seconds, "command": " ".join(cmd[1:]),
        "verdict": verdict.get("verdict"), "exit_code": proc.returncode,
        "not_met": [e["name"] for e in verdict.get("expectations") or [] if e.get("passed") is not True],
        "error": verdict.get("error"),
        "peak_rss_mib": {
            "drill_and_children": round(seen["peak_tree"] / 2**20, 1),
            "drill_process": round(seen["peak_own"] / 2**20, 1),
            "largest_by_kind": {k: round(v / 2**20, 1) for k, v in sorted(seen["peak_role"].items())},
            "means": "RSS sampled every second: the sum over the drill's process tree at one instant (shared pages "
                     "counted in each process), the drill process alone, and the largest process of each kind",
        },
        "run_folder_mib": {
            "largest": round(seen["peak_disk"] / 2**20, 1), "final": round(final_disk / 2**20, 1),
            "largest_per_hour": round(seen["peak_disk"] / 2**20 / hours, 1),
            "final_per_hour": round(final_disk / 2**20 / hours, 1),
            "largest_by_entry": {k: round(v / 2**20, 2) for k, v in sorted(seen["peak_parts"].items(),
                                                                            key=lambda kv: -kv[1])[:8]},
            "final_by_entry": {k: round(v / 2**20, 2) for k, v in sorted(final_parts.items(), key=lambda kv: -kv[1])[:8]},
            "means": "largest: sampled every 30 s while the drill ran (before it gzips its bulky files); final: "
                     "after the drill; per hour of load; by top-level entry of the run folder",
        },
        "check_phase_seconds": phases.get("check"),
        "check_phase_means": "the drill's check phase: merging the history, reading the run's evidence and the "
                             "business state, running the checkers",
        "phases_seconds": phases,
        "load_totals": verdict.get("totals"),
        "notes": verdict.get("notes") or [],
        "timeline": seen["timeline"],
        "wall_seconds": round(seen["wall_seconds"], 1),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpu_count": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("verdict", "not_met", "peak_rss_mib", "run_folder_mib",
                                             "check_phase_seconds")}, indent=1))
    if result["verdict"] != "pass":
        print(f"bench/soak.py: the run folder is kept for a look: {run_dir} (console: {log})", file=sys.stderr)
    elif base is not None:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if result["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
