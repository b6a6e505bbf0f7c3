"""Reading scenario files: YAML with line numbers, schema validation, human errors.

Why our own loader: `yaml.safe_load` forgets where a value came from, so a schema error
could only say "load.users.CartUser: must be >= 0". Composing the YAML node tree first
keeps a line for every path, and every error names file, line, field and expectation in
one paragraph, which is what a person fixing a drill file needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kugeldrill.chaos.faults import get_kind
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.tools import PROJECT_ROOT
from kugeldrill.locustfiles.loadconfig import config_for_users
from kugeldrill.scenario_schema import Scenario

SCENARIO_DIR = PROJECT_ROOT / "scenarios"

Path_ = tuple[str | int, ...]


@dataclass
class LoadedScenario:
    """A validated scenario plus where it came from (for errors and the run folder)."""

    scenario: Scenario
    path: Path
    text: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        return _line_for(self.lines, path)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> None:
    """Record the 1-based line of every path; refuse duplicate keys (YAML keeps the last)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{source}:{line}: duplicate key '{_dotted(path + (key,))}' "
                    f"(first given on line {seen[key]}); YAML would silently keep only the last one")
            seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, source)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """Line of the longest prefix of `path` that exists in the file."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    """Pydantic locations with aliases and without union-tag noise ('for_' → 'for')."""
    out: list[str | int] = []
    for part in loc:
        if part == "for_":
            part = "for"
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _expected(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err.get("type") == "extra_forbidden":
        return "unknown field (not part of the scenario schema; check the spelling)"
    if err.get("type") == "missing":
        return "required field is missing"
    return msg


def format_validation_error(exc: ValidationError, source: str, lines: dict[Path_, int]) -> str:
    """One paragraph per problem: `file:line: field: what was expected (got ...)`."""
    parts = []
    for err in exc.errors():
        loc = _clean_loc(tuple(err.get("loc", ())))
        line = _line_for(lines, loc)
        where = f"{source}:{line}" if line else source
        got = err.get("input")
        got_txt = ""
        if err.get("type") not in ("missing",) and not isinstance(got, (dict, list)) and got is not None:
            got_txt = f" (got {got!r})"
        parts.append(f"{where}: field '{_dotted(loc)}': {_expected(err)}{got_txt}")
    return "\n".join(parts)


def parse_scenario_text(text: str, source: str = "<scenario>") -> LoadedScenario:
    """Parse and validate scenario YAML text; raises ConfigError naming line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {exc.problem or exc}"
                          + (f" ({exc.context})" if exc.context else "")) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if root is None or not isinstance(data, dict):
        raise ConfigError(f"{source}:1: a scenario file must be a YAML mapping with at least "
                          "'name' and 'load' (see scenarios/baseline.yaml)")
    lines: dict[Path_, int] = {}
    _walk(root, (), lines, source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"scenario file {source} is invalid:\n" + format_validation_error(exc, source, lines),
                          hint="the schema is in kugeldrill/scenario_schema.py; scenarios/*.yaml are examples") from None
    loaded = LoadedScenario(scenario=scenario, path=Path(source), text=text, lines=lines)
    _check_semantics(loaded, source)
    return loaded


def _check_semantics(loaded: LoadedScenario, source: str) -> None:
    """Checks across fields that the per-field schema cannot express."""
    sc = loaded.scenario
    total = sc.load.total_seconds
    for i, fault in enumerate(sc.faults):
        end = fault.at + fault.for_
        if end > total + 1e-9:
            line = loaded.line_of(("faults", i, "for"))
            raise ConfigError(
                f"{source}:{line}: field 'faults[{i}].for': the fault ends at {end:g}s but the load "
                f"ends at {total:g}s; a fault must heal while load still runs so that recovery is observed")
    for i, seq in enumerate(sc.expect.breaker.sequences):
        if any(a == b for a, b in zip(seq.states, seq.states[1:])):
            line = loaded.line_of(("expect", "breaker", "sequences", i, "states"))
            raise ConfigError(f"{source}:{line}: field 'expect.breaker.sequences[{i}].states': "
                              f"a state cannot follow itself ({seq.states})")
    try:
        config_for_users(sc.load.config, sc.load.peak_users)
    except ConfigError as exc:
        named = [k for k in sc.load.config if re.search(rf"\b{re.escape(str(k))}\b", str(exc))]
        line = loaded.line_of(("load", "config", named[0]) if named else ("load", "config"))
        raise ConfigError(f"{source}:{line}: field 'load.config': {exc}", hint=exc.hint) from None
    if sc.target != "embedded":
        target = Path(sc.target)
        candidates = [target] if target.is_absolute() else [target, Path(source).parent / target]
        if not any(c.is_file() for c in candidates):
            raise ConfigError(f"{source}:{loaded.line_of(('target',))}: field 'target': expected 'embedded' or the "
                              f"path of a target file (targets/*.yaml), but {sc.target!r} does not exist")
    _check_faults_with_chaos(loaded, source)
    if sc.target != "embedded":
        check_process_commands(loaded, next(c for c in candidates if c.is_file()))


def check_process_commands(loaded: LoadedScenario, target_path: Path) -> None:
    """A process fault against a target file needs its commands: refused now, not mid-drill.

    (The embedded stand-in can do every action; a target can only what its file names.)"""
    faults = [(i, f) for i, f in enumerate(loaded.scenario.faults) if f.process]
    if not faults:
        return
    try:
        from kugeldrill.chaos.faults import get_kind
        from kugeldrill.chaos.processes import select_targets
    except ImportError:
        return
    from kugeldrill.target import load_target

    source = str(loaded.path)
    target = load_target(target_path)
    for i, fault in faults:
        where = f"{source}:{loaded.line_of(('faults', i, 'process'))}: field 'faults[{i}].process'"
        if target.processes is None:
            raise ConfigError(f"{where}: {fault.kind} {fault.process} is a process fault, but target file "
                              f"{target_path} names no process commands",
                              hint="add a 'processes:' section (commands kill/pause/resume/stop/start and targets) "
                                   "to the target file; see kugeldrill/target_processes.py")
        kind = get_kind(fault.kind, f"faults[{i}]")
        params = kind.validate(fault.params, fault.for_, f"faults[{i}].params")
        needs = kind.needs(params) if kind.needs else ()
        try:
            targets = select_targets(fault.process, list(target.processes.targets))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc} in target file {target_path}") from None
        for name in targets:
            missing = [a for a in needs if target.processes.command(name, a) is None]
            if missing:
                raise ConfigError(f"{where}: {fault.kind} {name} needs the command(s) {', '.join(missing)}, which "
                                  f"target file {target_path} does not name",
                                  hint=f"add processes.commands.{missing[0]} (an argv template) to the target file")


def _check_faults_with_chaos(loaded: LoadedScenario, source: str) -> None:
    """Let chaos' fault vocabulary judge each kind and its params, mapped back to our lines."""
    faults = loaded.scenario.faults
    if not faults:
        return
    for i, fault in enumerate(faults):
        where = f"faults[{i}]"
        try:
            kind = get_kind(fault.kind, where)
        except ConfigError as exc:
            raise ConfigError(f"{source}:{loaded.line_of(('faults', i, 'kind'))}: field '{where}.kind': {exc}",
                              hint=exc.hint) from None
        subject = "process" if kind.acts_on == "process" else "link"
        if getattr(fault, subject) is None:
            other = "link" if subject == "process" else "process"
            raise ConfigError(f"{source}:{loaded.line_of(('faults', i, other))}: field '{where}.{other}': fault kind "
                              f"{fault.kind!r} acts on a {subject}; give '{subject}:' instead",
                              hint="process kinds (kill, pause, restart) take process: redis | sidecar@X | app@X")
        try:
            kind.validate(fault.params, fault.for_, f"{where}.params")
        except ConfigError as exc:
            m = re.search(r"params\.(\w+)", str(exc))
            line = loaded.line_of(("faults", i, "params", m.group(1)) if m else ("faults", i, "params"))
            raise ConfigError(f"{source}:{line}: field '{where}.params': {exc}", hint=exc.hint) from None


def load_scenario(path: str | Path) -> LoadedScenario:
    """Load a scenario by path, or by name from scenarios/ (`redis-outage`)."""
    p = resolve_scenario_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {p}: {exc.strerror}") from None
    return parse_scenario_text(text, str(p))


def resolve_scenario_path(path: str | Path) -> Path:
    """A path as given, or a library name looked up in scenarios/ and scenarios/defects/."""
    p = Path(path)
    if p.exists():
        return p
    for cand in (SCENARIO_DIR / f"{path}.yaml", SCENARIO_DIR / "defects" / f"{path}.yaml"):
        if cand.exists():
            return cand
    names = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")))
    raise ConfigError(f"scenario {str(path)!r} not found (neither a file nor a name in {SCENARIO_DIR})",
                      hint=f"library scenarios: {names}" if names else None)


def suite(name: str) -> list[Path]:
    """Scenario files of a named suite: ci (short library), nightly (all library), defects."""
    library = sorted(SCENARIO_DIR.glob("*.yaml"))
    if name == "ci":
        return [p for p in library if not load_scenario(p).scenario.long]
    if name == "nightly":
        return library
    if name == "defects":
        return sorted((SCENARIO_DIR / "defects").glob("*.yaml"))
    raise ConfigError(f"unknown suite {name!r}; expected ci, nightly or defects")
