"""`kugeldrill shrink RUN_DIR [--budget 10m] [--repeats 2]`: reduce a failing drill to a minimal one.

Fewer faults, a shorter load, shorter or earlier fault windows, fewer users, simpler fault
kinds — each candidate re-run (up to --repeats times, so a lucky pass is not taken for a
fix) and kept only while it still fails with the same checker and failure kind. Writes
RUN_DIR/shrink/: minimal.yaml, shrink.json (each step, pass/fail) and the candidates' runs;
the minimal drill's report shows the path.

examples:
  kugeldrill shrink runs/explore-1-20250101-020000/20250101-020512-explore-1-0 --budget 10m

Exit code: 0 shrunk (or nothing smaller fails the same way), 2 the run cannot be shrunk.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from kugeldrill.ground.durations import duration_arg

    p = subparsers.add_parser("shrink", help="reduce a failing drill to a minimal one that fails the same way",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--budget", type=duration_arg, default=600.0, help="wall time, e.g. 5m (default 10m)")
    p.add_argument("--repeats", type=int, default=2, help="runs of a candidate before it is given up (default 2)")
    p.add_argument("--plain", action="store_true", help="plain console lines even on a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kugeldrill.explore.shrink import shrink
    from kugeldrill.ground.errors import ConfigError
    from kugeldrill.reports.console import Console

    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    console = Console(live=False if args.plain else None)
    with console:
        record = shrink(args.run_dir, args.budget, console, repeats=args.repeats)
    kept = [s for s in record.steps if s.kept]
    print(f"\nkugeldrill shrink: {len(record.steps)} candidate(s), {len(kept)} kept, ended at {record.finished}")
    print(f"  keeps failing with: {record.failure[0]} {record.failure[1]}")
    print(f"  minimal scenario:   {record.minimal_scenario}")
    return 0
