"""`kugeldrill list [--json | --json-file PATH]`: the scenario library — what `kugeldrill run NAME` can run.

One line per scenario: its name, the suite it belongs to (ci: the short ones `make drill`
runs; nightly: the long ones too; defects: each must FAIL), how long its load runs, and
its faults. A scenario file of your own is run by its path instead of a name.

examples:
  kugeldrill list
  kugeldrill list --json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kugeldrill.commands.jsonout import add_json_options, emit_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="the scenario library: name, suite, load duration, faults",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_options(p, "the library as JSON")
    p.set_defaults(func=list_command)


def fault_line(fault: Any) -> str:
    """`down sidecar@cart 5–13s`."""
    return f"{fault.kind} {fault.subject} {fault.at:g}–{fault.end:g}s"


def entry(path: Path) -> dict[str, Any]:
    from kugeldrill.scenario import load_scenario

    sc = load_scenario(path).scenario
    suite = "defects" if path.parent.name == "defects" else ("nightly" if sc.long else "ci")
    return {"name": sc.name, "suite": suite, "long": sc.long, "load_seconds": sc.load.total_seconds,
            "faults": [fault_line(f) for f in sc.faults], "description": " ".join(sc.description.split()),
            "path": str(path)}


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 120 and seconds % 60 == 0 else f"{seconds:g}s"


def list_command(args: argparse.Namespace) -> int:
    from kugeldrill.scenario import SCENARIO_DIR, library

    entries = [entry(p) for p in library()]
    if emit_json(args, {"library": str(SCENARIO_DIR), "scenarios": entries}):
        return 0
    width = max(len(e["name"]) for e in entries)
    print(f"{'scenario':<{width}}  {'suite':<7}  {'load':>5}  faults")
    for e in entries:
        faults = "; ".join(e["faults"]) or "none"
        print(f"{e['name']:<{width}}  {e['suite']:<7}  {_duration(e['load_seconds']):>5}  {faults}")
    print(f"\n{len(entries)} scenarios in {SCENARIO_DIR}; run one with 'kugeldrill run NAME', "
          "a suite with 'kugeldrill run --suite ci|nightly|defects'")
    return 0
