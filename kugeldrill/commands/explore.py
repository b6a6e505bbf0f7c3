"""`kugeldrill explore [--seed N] [--budget 10m] [--links …] [--kinds …] [--target FILE] [--defect D] [--shrink]`.

Draws seeded random fault schedules within safety bounds (fault kinds, links, overlap,
durations, load mix and intensity) and runs them as drills, one after another, until one
does not pass or the budget is spent. Every drawn drill is a scenario file in the session
folder (re-run it with `kugeldrill run FILE`); `explore.json` lists them. The same seed
draws the same drills. With --shrink the failing drill is shrunk right away.

examples:
  kugeldrill explore --seed 1 --budget 5m
  kugeldrill explore --seed 7 --budget 10m --links 'redis@*' --kinds down,latency,flap
  kugeldrill explore --seed 1 --kinds kill,pause --process-targets 'app@*'
  kugeldrill explore --seed 1 --defect breaker_per_request --links sidecar@cart --shrink

Exit code: 0 nothing found within the budget, 1 a failing drill was found, 2 a drill could
not run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from kugeldrill.ground.durations import duration_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("explore", help="run seeded random fault schedules until one fails",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, help="seed of the draws (default: a random one, printed)")
    p.add_argument("--budget", type=duration_arg, default=600.0, help="wall time for the session, e.g. 5m (default 10m)")
    p.add_argument("--links", help="comma-separated link selectors faults may hit, e.g. 'sidecar@*,redis@cart'")
    p.add_argument("--process-targets", metavar="SELECTORS",
                   help="comma-separated process targets kill/pause/restart may hit, e.g. 'app@*' (default: every "
                        "one the environment can control)")
    p.add_argument("--kinds", help="comma-separated fault kinds to draw (default: down, blackhole, reset_peer, "
                   "timeout, latency, flap)")
    p.add_argument("--max-faults", type=int, default=2, help="faults per drill, at most (default 2)")
    p.add_argument("--target", type=Path, metavar="FILE", help="drill a deployment through its target file")
    p.add_argument("--defect", action="append", default=[], metavar="SWITCH",
                   help="a stand-in defect switch to plant (repeatable), e.g. breaker_per_request")
    p.add_argument("--base", type=Path, metavar="SCENARIO",
                   help="scenario whose stack, expectations and load config every drawn drill keeps")
    p.add_argument("--shrink", action="store_true", help="shrink the failing drill at once")
    p.add_argument("--shrink-budget", type=duration_arg, default=600.0, help="wall time for the shrink (default 10m)")
    p.add_argument("--runs-dir", type=Path, metavar="DIR",
                   help="folder the session folder explore-<seed>-<time>/ goes in (default runs/)")
    p.add_argument("--plain", action="store_true", help="plain console lines even on a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kugeldrill.explore.base import drill_base
    from kugeldrill.explore.explore import explore, session_folder
    from kugeldrill.explore.shrink import shrink
    from kugeldrill.explore.space import build_space
    from kugeldrill.reports.console import Console

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10_000)
    space = build_space(args.target, args.links, args.kinds, args.max_faults, args.process_targets)
    base = drill_base(args.base, args.target, args.defect)
    folder = session_folder(args.runs_dir, seed)
    console = Console(live=False if args.plain else None)
    with console:
        console.message(f"kugeldrill explore: seed {seed}, budget {args.budget:g} s, {len(space.links)} link(s), "
                        f"kinds {', '.join(space.kinds)} → {folder}")
        result = explore(seed, args.budget, space, folder, console, base)
        if result.found is not None and args.shrink and result.stopped == "failure":
            shrink(Path(result.found.run_dir), args.shrink_budget, console)
    print(f"\nkugeldrill explore: seed {seed}: {len(result.drills)} drill(s), stopped on {result.stopped or 'budget'}")
    for a in result.drills:
        print(f"  {a.verdict.upper():<5} {Path(a.scenario).name:<28} {a.run_dir}")
    if result.found is None:
        print("  nothing failed within the budget")
        return 0
    if not args.shrink and result.stopped == "failure":
        print(f"\nshrink it: kugeldrill shrink {result.found.run_dir}")
    return 2 if result.stopped == "error" else 1
