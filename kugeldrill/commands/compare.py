"""`kugeldrill compare BASELINE_RUN RUN [--threshold 0.2] [--json | --json-file PATH]`.

Compares throughput, latency percentiles, error rate, convergence time and breaker open
time of two run folders. A metric regressed when it moved the wrong way by more than the
threshold (relative, with a small absolute floor per metric).

examples:
  kugeldrill compare runs/20250101-020000-soak runs/20250102-020000-soak
  kugeldrill compare baseline/soak runs/soak --threshold 0.1 --json-file runs/soak-compare.json

Exit code: 0 no regression, 1 a metric regressed, 2 a run folder cannot be read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kugeldrill.commands.jsonout import add_json_options, emit_json
from kugeldrill.ground.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compare", help="compare a run against a baseline run; regressions exit 1",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", type=Path, metavar="BASELINE_RUN")
    p.add_argument("run", type=Path, metavar="RUN")
    p.add_argument("--threshold", type=float, default=0.2, help="allowed relative change (default 0.2 = 20%%)")
    add_json_options(p, "the comparison as JSON")
    p.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from kugeldrill.compare import compare_summaries, load_run, render_table, to_json

    if not 0 <= args.threshold <= 10:
        raise ConfigError(f"--threshold must be between 0 and 10, got {args.threshold}")
    base, run = load_run(args.baseline), load_run(args.run)
    deltas = compare_summaries(base, run, args.threshold)
    regressions = [d for d in deltas if d.regression]
    if emit_json(args, to_json(args.baseline, args.run, args.threshold, deltas)):
        return 1 if regressions else 0
    print(f"baseline {args.baseline} ({base.scenario}) vs run {args.run} ({run.scenario}), threshold {args.threshold:.0%}")
    if base.scenario != run.scenario:
        print(f"note: different scenarios ({base.scenario} vs {run.scenario})")
    print(render_table(deltas))
    print(f"{len(regressions)} regression(s)" if regressions else "no regression")
    return 1 if regressions else 0
