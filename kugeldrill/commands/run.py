"""`kugeldrill run SCENARIO… [--suite ci|nightly|defects] [--target FILE] [--out DIR | --runs-dir DIR]`.

Runs each scenario (a file, or a library name: `kugeldrill list`) as a drill and prints where
each report is and, last, why each red drill is red. Every scenario — and the target file
it drills — is validated first, as `kugeldrill validate` does: a typo stops the command
before any stack starts.

`--target FILE` runs every named scenario against the deployment a target file describes,
whatever the scenario's own `target:` says (a library scenario can drill a real stack).
`--out DIR` is the run folder of one scenario; `--runs-dir DIR` is the folder the run
folders go in (default runs/), one `<time>-<scenario>/` each.

examples:
  kugeldrill run baseline
  kugeldrill run sidecar-cut --out runs/my-cut --processes 2
  kugeldrill run --suite ci --runs-dir runs/ci
  kugeldrill run baseline --target targets/kugelpos-compose.yaml

Exit code: 0 every expectation of every scenario met, 1 one failed (or could not be judged),
2 a drill could not run (invalid scenario, missing program, unreachable target), 130
interrupted (the suite stops; the interrupted drill still wrote its report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder

if TYPE_CHECKING:
    from kugeldrill.scenario import LoadedScenario


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run drills (scenario files or library names) and report verdicts",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario file or library name (baseline, sidecar-cut, ...)")
    p.add_argument("--suite", choices=("ci", "nightly", "defects"), help="ci: the short library scenarios; "
                   "nightly: all library scenarios including long ones; defects: scenarios/defects/*")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, metavar="DIR", help="the run folder (one scenario only)")
    where.add_argument("--runs-dir", type=Path, metavar="DIR",
                       help="folder for the run folders, one <time>-<scenario>/ each (default runs/)")
    p.add_argument("--processes", type=int, metavar="N", help="Locust worker processes (overrides load.processes)")
    p.add_argument("--plain", action="store_true", help="plain console lines even on a terminal")
    p.add_argument("--target", type=Path, metavar="FILE",
                   help="target file to drill instead of each scenario's own target (e.g. from 'kugeldrill target from-stack')")
    p.set_defaults(func=run_command)


def validate_all(paths: list[str | Path], target: Path | None) -> list[LoadedScenario]:
    """Every scenario (and target) validated before anything starts; all problems in one error."""
    from kugeldrill.scenario import SCHEMA_HINT, check_scenario_file
    from kugeldrill.yamlfile import errors_of, raise_problems

    loaded, problems = [], []
    for path in paths:
        item, found = check_scenario_file(path, target=target)
        problems += found
        if item is not None:
            loaded.append(item)
    errors = errors_of(problems)
    files = sorted({p.file for p in errors})
    raise_problems(f"{len(files)} file(s) invalid; nothing was started:", problems, hint=SCHEMA_HINT)
    return loaded  # warnings (stand-in options a target ignores) are said by each drill as it starts


def run_command(args: argparse.Namespace) -> int:
    from kugeldrill.drill import DrillOptions, run_drill
    from kugeldrill.drill.runfolder import run_dir_for
    from kugeldrill.reports.console import Console, failure_lines
    from kugeldrill.scenario import suite

    paths: list[str | Path] = list(args.scenarios)
    if args.suite:
        paths += suite(args.suite)
    if not paths:
        raise ConfigError("name at least one scenario or a --suite", hint="e.g. kugeldrill run baseline, or --suite ci")
    if args.out is not None and len(paths) > 1:
        raise ConfigError(f"--out is the run folder of one scenario, but {len(paths)} scenarios were named",
                          hint="use --runs-dir DIR: each scenario gets its own <time>-<scenario>/ folder in DIR")
    if args.processes is not None and not 1 <= args.processes <= 16:
        raise ConfigError(f"--processes must be between 1 and 16, got {args.processes}")
    loaded = validate_all(paths, args.target)
    console = Console(live=False if args.plain else None)
    results: list[tuple[str, int, Path]] = []
    why: dict[str, list[str]] = {}
    worst = 0
    with console:
        for item in loaded:
            run_dir = run_dir_for(item.scenario.name, out=args.out, runs_dir=args.runs_dir)
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
            worst = max(worst, code)
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
