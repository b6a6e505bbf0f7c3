"""`kugeldrill report RUN_DIR`: re-render verdict.json, junit.xml and report.html of a run.

The run's summary (checker results, expectations, faults, breaker transitions) comes from its
verdict.json; the load charts are refreshed from Locust's CSV files when they are there.
Nothing of the drill is re-judged: this is for a report made by an older kugeldrill, or a
run folder copied from CI.

examples:
  kugeldrill report runs/20250101-020000-sidecar-cut
"""

from __future__ import annotations

import argparse
from pathlib import Path



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="re-render a run folder's reports", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.set_defaults(func=report_command)


def rerender(run_dir: Path) -> Path:
    """Rebuild the reports of `run_dir`; returns report.html's path."""
    from kugeldrill.compare import load_run
    from kugeldrill.drill.gather import fill_load
    from kugeldrill.reports import write_all

    summary = load_run(run_dir)
    fill_load(summary, run_dir)
    summary.run_dir = str(run_dir.resolve())
    return write_all(run_dir, summary)["html"]


def report_command(args: argparse.Namespace) -> int:
    path = rerender(args.run_dir)
    print(f"kugeldrill: report written: {path}")
    return 0
