"""`kugeldrill report RUN_DIR`: re-render verdict.json, junit.xml and report.html of a run.

Charts and tables are rebuilt from the run folder's files (Locust CSV, timeline.json,
events); checker results and expectations are taken from its verdict.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kugeldrill.ground.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="re-render a run folder's reports", description=__doc__)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.set_defaults(func=report_command)


def rerender(run_dir: Path) -> Path:
    """Rebuild the reports of `run_dir`; returns report.html's path."""
    from kugeldrill.drill.gather import fill_from_folder
    from kugeldrill.reports import write_all
    from kugeldrill.reports.summary import RunSummary

    verdict = run_dir / "verdict.json"
    if not verdict.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no verdict.json)")
    try:
        summary = RunSummary.load(verdict)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{verdict}: cannot read the run summary: {exc}") from None
    fill_from_folder(summary, run_dir)
    summary.run_dir = str(run_dir.resolve())
    return write_all(run_dir, summary)["html"]


def report_command(args: argparse.Namespace) -> int:
    path = rerender(args.run_dir)
    print(f"kugeldrill: report written: {path}")
    return 0
