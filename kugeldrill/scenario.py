"""Reading scenario files: found by path or in the library, validated completely before a run.

A scenario is checked in three steps, and every problem of every step is reported at once,
each as `file:line: field 'x.y': what was expected` (kugeldrill.yamlfile):

1. the YAML itself (syntax, duplicate keys, a mapping at the top);
2. the schema (kugeldrill.scenario_schema: types, ranges, unknown fields);
3. what a drill would meet (kugeldrill.scenario_checks): fault windows within the load,
   links and processes named in the environment it drills — the stand-in's plan or the
   target file's declared links and process commands — fault kinds and parameters through
   chaos' own planner, the target file itself, and the stand-in options a target ignores
   (warnings).

Nothing is started: `kugeldrill validate` and the first step of `kugeldrill run` are this.

The library — `scenarios/` of the checkout, shipped in the wheel as package data — is found
through importlib.resources, so `kugeldrill run baseline` works from any directory; a path
that exists (relative to the working directory) always wins over a library name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.scenario_checks import check_against_environment, resolve_target
from kugeldrill.scenario_schema import Scenario
from kugeldrill.yamlfile import (FieldPath, Problem, YamlDoc, errors_of, parse_yaml, raise_problems, read_text,
                                 sort_problems, validate_model)

EXAMPLE = "scenarios/baseline.yaml ('kugeldrill list' shows the library)"
SCHEMA_HINT = "'kugeldrill schema scenario' prints the JSON Schema; docs/scenarios.md describes every field"


def library_dir() -> Path:
    """The scenario library shipped with kugeldrill (package data `kugeldrill/scenarios`)."""
    return Path(str(resources.files("kugeldrill").joinpath("scenarios")))


SCENARIO_DIR = library_dir()


@dataclass
class LoadedScenario:
    """A validated scenario plus where it came from (for errors and the run folder)."""

    scenario: Scenario
    path: Path
    text: str
    doc: YamlDoc | None = None
    target_path: Path | None = None  # the target file it drills (None: the embedded stand-in)
    warnings: list[Problem] = field(default_factory=list)

    def line_of(self, path: FieldPath) -> int | None:
        return self.doc.line_of(path) if self.doc else None


def check_scenario_text(text: str, source: str = "<scenario>", *,
                        target: Path | None = None) -> tuple[LoadedScenario | None, list[Problem]]:
    """Every problem of a scenario text (errors and warnings); the scenario when it has no error.

    `target` drills that target file instead of the scenario's own `target:` (`run --target`).
    """
    doc, problems = parse_yaml(text, source, "scenario file", EXAMPLE)
    if doc is None:
        return None, problems
    scenario, schema = validate_model(doc, Scenario, "scenario")
    problems += schema
    if scenario is None:
        return None, sort_problems(problems)
    if target is not None:
        scenario = scenario.model_copy(update={"target": str(target.resolve())})
    target_path, target_file, target_problems = resolve_target(doc, scenario, override=target)
    problems += target_problems
    problems += check_against_environment(doc, scenario, target_path, target_file)
    problems = sort_problems(problems)
    if errors_of(problems):
        return None, problems
    if target is not None:
        text += f"\n# --target {target.resolve()}\n"
    loaded = LoadedScenario(scenario, Path(source), text, doc, target_path,
                            [p for p in problems if p.severity == "warning"])
    return loaded, problems


def parse_scenario_text(text: str, source: str = "<scenario>", *, target: Path | None = None) -> LoadedScenario:
    """Parse and validate scenario YAML text; FileProblems names every problem's line and field."""
    loaded, problems = check_scenario_text(text, source, target=target)
    raise_problems(f"scenario file {source} is invalid:", problems, hint=SCHEMA_HINT)
    assert loaded is not None
    return loaded


def check_scenario_file(path: str | Path, *, target: Path | None = None) -> tuple[LoadedScenario | None, list[Problem]]:
    """check_scenario_text of a file or library name; a missing file is a problem too."""
    p = resolve_scenario_path(path)
    text, problems = read_text(p, "scenario file")
    if text is None:
        return None, problems
    return check_scenario_text(text, str(p), target=target)


def load_scenario(path: str | Path, *, target: Path | None = None) -> LoadedScenario:
    """Load a scenario by path, or by name from the library (`redis-outage`)."""
    loaded, problems = check_scenario_file(path, target=target)
    raise_problems(f"scenario file {resolve_scenario_path(path)} is invalid:", problems, hint=SCHEMA_HINT)
    assert loaded is not None
    return loaded


def library_names() -> dict[str, Path]:
    """Each library scenario by the `name:` it declares (what `kugeldrill list` shows)."""
    names: dict[str, Path] = {}
    for path in library():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.setdefault(data["name"], path)
    return names


def resolve_scenario_path(path: str | Path) -> Path:
    """A path as given, or a library scenario by its name (or its file's name) in the library."""
    p = Path(path)
    if p.exists():
        return p
    for cand in (SCENARIO_DIR / f"{path}.yaml", SCENARIO_DIR / "defects" / f"{path}.yaml"):
        if cand.exists():
            return cand
    names = library_names()
    if str(path) in names:
        return names[str(path)]
    close = difflib.get_close_matches(str(path), list(names), n=1)
    raise ConfigError(f"scenario {str(path)!r} not found (neither a file nor a library scenario)",
                      hint=(f"did you mean '{close[0]}'? " if close else "")
                      + f"library scenarios ('kugeldrill list'): {', '.join(names)}")


def library() -> list[Path]:
    """Every library scenario: scenarios/*.yaml, then scenarios/defects/*.yaml."""
    return sorted(SCENARIO_DIR.glob("*.yaml")) + sorted((SCENARIO_DIR / "defects").glob("*.yaml"))


def suite(name: str) -> list[Path]:
    """Scenario files of a named suite: ci (short library), nightly (all library), defects."""
    main = sorted(SCENARIO_DIR.glob("*.yaml"))
    if name == "ci":
        return [p for p in main if not load_scenario(p).scenario.long]
    if name == "nightly":
        return main
    if name == "defects":
        return sorted((SCENARIO_DIR / "defects").glob("*.yaml"))
    raise ConfigError(f"unknown suite {name!r}; expected ci, nightly or defects")
