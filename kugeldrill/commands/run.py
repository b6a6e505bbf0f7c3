"""`kugeldrill run SCENARIO… [--suite ci|nightly|defects] [--target FILE] [--out DIR | --runs-dir DIR]
[--duration D] [--master [--master-bind HOST] [--master-port P] --expect-workers N]`.

Runs each scenario (a file, or a library name: `kugeldrill list`) as a drill and prints where
each report is and, last, why each red drill is red. Every scenario — and the target file
it drills — is validated first, as `kugeldrill validate` does: a typo stops the command
before any stack starts.

`--target FILE` runs every named scenario against the deployment a target file describes,
whatever the scenario's own `target:` says (a library scenario can drill a real stack).
`--out DIR` is the run folder of one scenario; `--runs-dir DIR` is the folder the run
folders go in (default runs/), one `<time>-<scenario>/` each.

`--duration D` (30s, 10m, 1h) runs the load that long; the scenario's faults repeat in
cycles of its own length (a soak of 10 minutes run for an hour meets its faults six times),
and a cycle cut short keeps the faults that heal before the load ends.

`--master` runs the load on Locust workers started elsewhere with `kugeldrill worker
--master HOST:PORT` (other hosts, or other processes here): the drill's Locust master
listens on HOST (loopback unless the target file allows that host) and starts the load
once N workers joined (it waits up to 5 minutes). The workers take provision data, load
settings and terminals from the master and send their history to it; a worker lost
mid-drill is named in the verdict, and its operations without a recorded outcome count
as unknown.

examples:
  kugeldrill run baseline
  kugeldrill run sidecar-cut --out runs/my-cut --processes 2
  kugeldrill run --suite ci --runs-dir runs/ci
  kugeldrill run baseline --target targets/kugelpos-compose.yaml
  kugeldrill run soak --duration 1h
  kugeldrill run baseline --master --expect-workers 2  # then twice: kugeldrill worker --master 127.0.0.1:5557

Exit code: 0 every expectation of every scenario met, 1 one failed (or could not be judged),
2 a drill could not run (invalid scenario, missing program, unreachable target), 130
interrupted (the suite stops; the interrupted drill still wrote its report).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kugeldrill.ground.durations import duration_arg
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder

if TYPE_CHECKING:
    from kugeldrill.locustfiles.command import MasterBinding
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
    p.add_argument("--duration", type=duration_arg, metavar="D",
                   help="run the load this long (e.g. 3m, 1h); the scenario's faults repeat in cycles of its length")
    p.add_argument("--master", action="store_true", help="run the load on Locust workers started with 'kugeldrill worker'")
    p.add_argument("--master-bind", default="127.0.0.1", metavar="HOST",
                   help="interface the master listens on (default 127.0.0.1; another needs the target's allow_hosts)")
    p.add_argument("--master-port", type=int, default=5557, metavar="P", help="the master's port (default 5557)")
    p.add_argument("--expect-workers", type=int, metavar="N", help="with --master: start once N workers joined")
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


def with_duration(loaded: LoadedScenario, seconds: float) -> LoadedScenario:
    """The scenario with its load running `seconds`, its faults repeated once per cycle of
    the scenario's own length; a fault that would not heal before the load ends is left out."""
    sc = loaded.scenario
    if sc.load.stages:
        raise ConfigError(f"--duration: scenario {sc.name} runs stages ({sc.load.total_seconds:g} s in all)",
                          hint="--duration applies to a scenario with a fixed 'load.duration'")
    period = sc.load.total_seconds
    faults = []
    for cycle in range(int(seconds // period) + 1):
        for fault in sc.faults:
            at = fault.at + cycle * period
            if at + fault.duration <= seconds + 1e-9:
                ident = fault.id if fault.id is None or cycle == 0 else f"{fault.id}-{cycle + 1}"
                faults.append(replace(fault, at=at, id=ident))
    load = sc.load.model_copy(update={"duration": seconds})
    scenario = sc.model_copy(update={"load": load, "faults": faults})
    # The run folder keeps the scenario as run, so that it can be run (or shrunk) again as it was.
    text = (f"# {loaded.path} with --duration {seconds:g}s: the load and its repeated faults as run\n"
            + yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False))
    return replace(loaded, scenario=scenario, text=text)


def master_binding(args: argparse.Namespace) -> MasterBinding | None:
    """--master and its options as one record (None without --master); conflicts refused."""
    from kugeldrill.locustfiles.command import MasterBinding

    if not args.master:
        if args.expect_workers is not None:
            raise ConfigError("--expect-workers goes with --master", hint="add --master")
        return None
    if args.expect_workers is None or args.expect_workers < 1:
        raise ConfigError("--master needs --expect-workers N (N >= 1): the load starts once N workers joined")
    if args.processes is not None:
        raise ConfigError("--master and --processes exclude each other",
                          hint="start the workers with 'kugeldrill worker --master HOST:PORT --processes N'")
    if not 1 <= args.master_port <= 65535:
        raise ConfigError(f"--master-port must be a TCP port (1-65535), got {args.master_port}")
    return MasterBinding(bind=args.master_bind, port=args.master_port, expect_workers=args.expect_workers)


def check_master_for(master: MasterBinding, loaded: list[LoadedScenario]) -> None:
    """The master's interface against every drill's target, before any drill starts."""
    from kugeldrill.drill.locust import check_master
    from kugeldrill.target import load_target

    for item in loaded:
        allow = tuple(load_target(item.target_path).allow_hosts) if item.target_path is not None else ()
        check_master(master, allow, target=item.target_path, embedded=item.target_path is None)


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
    master = master_binding(args)
    loaded = validate_all(paths, args.target)
    if master is not None:
        check_master_for(master, loaded)
    if args.duration is not None:
        loaded = [with_duration(item, args.duration) for item in loaded]
    console = Console(live=False if args.plain else None)
    results: list[tuple[str, int, Path]] = []
    why: dict[str, list[str]] = {}
    worst = 0
    with console:
        for item in loaded:
            run_dir = run_dir_for(item.scenario.name, out=args.out, runs_dir=args.runs_dir)
            summary = run_drill(item, run_dir, DrillOptions(processes=args.processes, master=master, console=console))
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
