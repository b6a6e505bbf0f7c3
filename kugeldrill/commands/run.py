"""`kugeldrill run SCENARIO… [--suite ci|nightly|defects] [--target FILE] [--out DIR] [--processes N]`.

`--target FILE` runs every named scenario against the deployment a target file describes,
whatever the scenario's own `target:` says (a library scenario can drill a real stack).

Exit code: 0 every expectation of every scenario met, 1 one failed, 2 a drill could not
run, 130 interrupted (the suite stops; the interrupted drill still wrote its report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run drills (scenario files or library names) and report verdicts",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario file or library name (baseline, sidecar-cut, ...)")
    p.add_argument("--suite", choices=("ci", "nightly", "defects", "kugelpos"), help="ci: the short library scenarios; "
                   "nightly: all library scenarios including long ones; defects: scenarios/defects/*; "
                   "kugelpos: scenarios/kugelpos/* (for the real code: see 'kugeldrill kugelpos drill')")
    p.add_argument("--out", type=Path, help="run folder (one scenario) or parent folder (several); default runs/")
    p.add_argument("--processes", type=int, help="Locust worker processes (overrides load.processes)")
    p.add_argument("--plain", action="store_true", help="plain console lines even on a terminal")
    p.add_argument("--target", type=Path, metavar="FILE",
                   help="target file to drill instead of each scenario's own target (e.g. from 'kugeldrill target from-stack')")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from kugeldrill.drill import DrillOptions, run_drill
    from kugeldrill.drill.runfolder import run_dir_for
    from kugeldrill.scenario import load_scenario, suite, with_target
    from kugeldrill.reports.console import Console, failure_lines

    paths: list[str | Path] = list(args.scenarios)
    if args.suite:
        paths += suite(args.suite)
    if not paths:
        raise ConfigError("name at least one scenario or a --suite", hint="e.g. kugeldrill run baseline, or --suite ci")
    if args.processes is not None and not 1 <= args.processes <= 16:
        raise ConfigError(f"--processes must be between 1 and 16, got {args.processes}")
    loaded = [load_scenario(p) for p in paths]  # every file validated before anything starts
    if args.target is not None:
        loaded = [with_target(item, args.target) for item in loaded]
    console = Console(live=False if args.plain else None)
    results: list[tuple[str, int, Path]] = []
    why: dict[str, list[str]] = {}
    worst = 0
    with console:
        for item in loaded:
            run_dir = run_dir_for(item.scenario.name, out=args.out, several=len(loaded) > 1)
            summary = run_drill(item, run_dir, DrillOptions(processes=args.processes, console=console))
            code = summary.exit_code
            results.append((item.scenario.name, code, run_dir))
            console.message(f"[{item.scenario.name}] {summary.verdict.upper()} (exit {code}) → {RunFolder(run_dir).report_html}")
            if summary.error:
                console.message(f"[{item.scenario.name}] {summary.error}")
            why[item.scenario.name] = failure_lines(summary)
            if code == 130:
                worst = 130
                break
            worst = max(worst, code) if worst != 130 else worst
    print("\nkugeldrill: reports", file=sys.stdout)
    for name, code, run_dir in results:
        verdict = {0: "pass", 1: "FAIL", 2: "ERROR", 130: "INTERRUPTED"}.get(code, str(code))
        print(f"  {verdict:<11} {name:<28} {RunFolder(run_dir).report_html}", file=sys.stdout)
    # Last, where a person or a CI log reader looks first: why each red drill is red.
    for name, lines in why.items():
        if lines:
            print(f"\nkugeldrill: {name}: expectations not met", file=sys.stdout)
            for line in lines:
                print(line, file=sys.stdout)
    return worst
