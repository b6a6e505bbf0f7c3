"""`kugeldrill validate FILE… [--target FILE] [--json | --json-file PATH]`: check scenario and target
files completely, starting nothing.

A FILE is a scenario file, a library scenario's name or a target file (a mapping with
`services:` and no `load:`). A scenario is checked as `kugeldrill run` would before it
starts anything: the schema, fault windows against the load, links and processes against
the embedded stand-in's plan or the target's declared links and process commands, the
fault kinds and parameters, the target file it names (or --target) and the stand-in
options that target ignores (warnings). Every problem is printed as
`file:line: field 'x.y': what was expected`, with a hint where there is one.

examples:
  kugeldrill validate baseline sidecar-cut
  kugeldrill validate scenarios/sidecar-cut.yaml --target targets/kugelpos-compose.yaml
  kugeldrill validate targets/kugelpos-compose.yaml --json

Exit code: 0 every file valid (warnings allowed), 1 a file has a problem.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kugeldrill.commands.jsonout import add_json_options, emit_json
from kugeldrill.yamlfile import Problem, errors_of


@dataclass
class FileReport:
    given: str  # as named on the command line
    path: str
    kind: str  # "scenario" | "target"
    problems: list[Problem] = field(default_factory=list)
    summary: str = ""

    @property
    def valid(self) -> bool:
        return not errors_of(self.problems)

    def record(self) -> dict[str, Any]:
        return {"file": self.path, "given": self.given, "kind": self.kind, "valid": self.valid,
                "summary": self.summary, "problems": [p.record() for p in self.problems]}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="check scenario and target files completely, starting nothing",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario file, library scenario name, or target file")
    p.add_argument("--target", type=Path, metavar="FILE",
                   help="check every scenario against this target file instead of its own target")
    add_json_options(p, "the reports as JSON")
    p.set_defaults(func=validate_command)


def kind_of(path: Path) -> str:
    """"target" for a mapping with `services:` and no `load:`, else "scenario" (whose checks
    then say what is wrong, if anything)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "scenario"
    if isinstance(data, dict) and "services" in data and "load" not in data:
        return "target"
    return "scenario"


def validate_one(given: str, target: Path | None) -> FileReport:
    from kugeldrill.ground.errors import ConfigError
    from kugeldrill.scenario import check_scenario_file, resolve_scenario_path
    from kugeldrill.target import check_target_file

    try:
        path = resolve_scenario_path(given)
    except ConfigError as exc:
        return FileReport(given, given, "scenario",
                          [Problem(given, None, "", str(exc), exc.hint, kind="missing-file")])
    if kind_of(path) == "target":
        target_file, problems = check_target_file(path)
        summary = f"target {target_file.name}: {len(target_file.services)} service(s), {len(target_file.links)} " \
                  f"link(s)" if target_file is not None else ""
        return FileReport(given, str(path), "target", problems, summary)
    loaded, problems = check_scenario_file(path, target=target)
    summary = ""
    if loaded is not None:
        sc = loaded.scenario
        against = f"target {loaded.target_path}" if loaded.target_path else "the embedded stand-in"
        summary = f"scenario {sc.name}: {sc.load.total_seconds:g} s of load, {len(sc.faults)} fault(s), on {against}"
    return FileReport(given, str(path), "scenario", problems, summary)


def validate_command(args: argparse.Namespace) -> int:
    reports = [validate_one(given, args.target) for given in args.files]
    valid = all(r.valid for r in reports)
    if emit_json(args, {"valid": valid, "files": [r.record() for r in reports]}):
        return 0 if valid else 1
    for report in reports:
        for problem in report.problems:
            print(problem.render())
        errors = len(errors_of(report.problems))
        state = "ok" if report.valid else f"INVALID ({errors} problem{'s' if errors != 1 else ''})"
        print(f"{report.path}: {state}" + (f" — {report.summary}" if report.summary else ""))
    bad = sum(not r.valid for r in reports)
    print(f"kugeldrill validate: {len(reports)} file(s), " + (f"{bad} invalid" if bad else "all valid"))
    return 0 if valid else 1
