"""What a scenario would meet, checked without starting anything.

The schema (kugeldrill.scenario_schema) judges each field alone; these checks judge the
scenario against the rest of the drill: the load's length, the environment it drills
(the embedded stand-in's plan of links and processes, or a target file's declared links
and process commands), chaos' own fault planner (kinds, parameters, selectors, overlaps),
the locustfile's load config, and the target file itself. Each finding is a Problem at
the line of the field it is about; a stand-in option a target cannot honour is a warning
(the drill still runs, without it).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kugeldrill.chaos.kinds import get_kind
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.processes import select_targets
from kugeldrill.chaos.plan import plan
from kugeldrill.ground.errors import ConfigError
from kugeldrill.locustfiles.loadconfig import config_for_users
from kugeldrill.scenario_schema import Scenario, StackSpec
from kugeldrill.stack.launch.plan import APPS, SIDECAR_APPS, link_names
from kugeldrill.target import TargetFile, check_target_file
from kugeldrill.target_processes import TargetProcesses
from kugeldrill.yamlfile import FieldPath, Problem, YamlDoc, errors_of, problem_from_message

_FAULT_KEYS = ("at", "for", "link", "process", "kind", "params", "id")


class PlannedStandinProcesses:
    """The stand-in's process targets as planned (what `stack process` can act on), for
    chaos' planner: every action is available, nothing is running yet."""

    description = "the embedded stand-in"

    def targets(self) -> list[str]:
        return ["redis", *(f"sidecar@{a}" for a in SIDECAR_APPS), *(f"app@{a}" for a in APPS)]

    def missing_actions(self, target: str, actions: Iterable[str]) -> list[str]:
        return []


@dataclass
class Environment:
    """What a scenario is checked against: the links and processes its faults may name."""

    description: str
    links: LinkMap | None  # None: the target names no Toxiproxy API (no link faults possible)
    processes: Any  # a chaos ProcessControl's targets()/missing_actions(), or None
    target: TargetFile | None = None


def standin_environment() -> Environment:
    # Placeholder addresses: only the names matter before the stack has ports.
    links = LinkMap([Link(name, "127.0.0.1:1", "127.0.0.1:1") for name in link_names()])
    return Environment("the embedded stand-in", links, PlannedStandinProcesses())


def target_environment(target: TargetFile) -> Environment:
    links = None
    if target.toxiproxy is not None:
        links = LinkMap([Link(name, spec.listen, spec.upstream) for name, spec in target.links.items()],
                        allow_hosts=target.allow_hosts)
    processes = TargetProcesses(target) if target.processes is not None else None
    return Environment(f"target file {target.path}", links, processes, target)


# ------------------------------------------------------------------ the target file


def resolve_target(doc: YamlDoc, scenario: Scenario, *,
                   override: Path | None = None) -> tuple[Path | None, TargetFile | None, list[Problem]]:
    """The target file a scenario drills (None: the stand-in), the target when it is valid,
    and the problems of that file."""
    if override is None and scenario.target == "embedded":
        return None, None, []
    if override is not None:
        candidates = [override]
    else:
        given = Path(scenario.target)
        candidates = [given] if given.is_absolute() else [given, Path(doc.source).parent / given]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        if override is not None:
            return None, None, [Problem(str(override), None, "", "target file does not exist (given with --target)",
                                  hint="write one with 'kugeldrill target from-stack' or 'kugeldrill target "
                                       "compose-overlay'", kind="missing-file")]
        return None, None, [doc.problem(("target",), f"expected 'embedded' or the path of a target file, but "
                                               f"{scenario.target!r} does not exist",
                                  hint="a relative path is looked up from the working directory, then beside "
                                       "the scenario file")]
    target, problems = check_target_file(found)
    return found, (None if errors_of(problems) else target), problems


# ------------------------------------------------------------------ the checks


def check_against_environment(doc: YamlDoc, scenario: Scenario, target_path: Path | None,
                              target: TargetFile | None) -> list[Problem]:
    """Every problem of the scenario against the environment it drills (the stand-in when
    `target_path` is None; nothing more when the target file itself is invalid: its own
    problems say why)."""
    problems = fault_window_problems(doc, scenario) + sequence_problems(doc, scenario)
    problems += load_config_problems(doc, scenario)
    if target_path is None:
        return problems + fault_problems(doc, scenario, standin_environment())
    if target is None:
        return problems
    problems += unhonoured_option_warnings(doc, scenario, target)
    return problems + fault_problems(doc, scenario, target_environment(target))


def fault_window_problems(doc: YamlDoc, sc: Scenario) -> list[Problem]:
    """A fault must heal while load still runs, so that the recovery is observed."""
    total = sc.load.total_seconds
    out = []
    for i, fault in enumerate(sc.faults):
        end = fault.at + fault.duration
        if end > total + 1e-9:
            out.append(doc.problem(("faults", i, "for"), f"the fault ends at {end:g}s but the load ends at "
                                                         f"{total:g}s; a fault must heal while load still runs so "
                                                         "that recovery is observed",
                                   hint=f"end it by {total:g}s (at + for), or lengthen load.duration"))
    return out


def sequence_problems(doc: YamlDoc, sc: Scenario) -> list[Problem]:
    out = []
    for i, seq in enumerate(sc.expect.breaker.sequences):
        if any(a == b for a, b in zip(seq.states, seq.states[1:])):
            out.append(doc.problem(("expect", "breaker", "sequences", i, "states"),
                                   f"a state cannot follow itself ({', '.join(seq.states)})"))
    return out


def load_config_problems(doc: YamlDoc, sc: Scenario) -> list[Problem]:
    """The locustfile's own schema judges load.config (weights, think times, auth)."""
    try:
        config_for_users(sc.load.config, sc.load.peak_users)
    except ConfigError as exc:
        named = [k for k in sc.load.config if re.search(rf"\b{re.escape(str(k))}\b", str(exc))]
        return [doc.problem(("load", "config", named[0]) if named else ("load", "config"), str(exc), hint=exc.hint)]
    return []


def _fault_field(path: FieldPath, params: dict[str, Any]) -> FieldPath:
    """chaos names a parameter `faults[i].<param>`; in a scenario it sits under `params:`."""
    if len(path) >= 3 and path[0] == "faults" and path[2] not in _FAULT_KEYS:
        return path[:2] + ("params",) + path[2:]
    return path


_NO_MATCH_RE = re.compile(r"selector '([^']+)' matches no \w+ \(known(?: links)?: ([^)]*)\)")


def _did_you_mean(message: str) -> str | None:
    """For a selector that matches nothing: the closest known name, if one is close."""
    match = _NO_MATCH_RE.search(message)
    if not match:
        return None
    close = difflib.get_close_matches(match.group(1), [n.strip() for n in match.group(2).split(",")], n=1)
    return f"did you mean '{close[0]}'?" if close else None


def _chaos_problem(doc: YamlDoc, message: str, index: int, params: dict[str, Any], hint: str | None) -> Problem:
    """A chaos planner error about `faults[0]` of a one-fault plan, as a problem of faults[index]."""
    text = re.sub(r"^faults\[0\]", f"faults[{index}]", message)
    return problem_from_message(doc, text, hint=hint or _did_you_mean(text),
                                place=lambda path: _fault_field(path, params))


def _target_process_problems(doc: YamlDoc, i: int, fault: Any, env: Environment) -> list[Problem]:
    """A process fault on a target needs the commands its kind uses: refused now, not mid-drill."""
    where = ("faults", i, "process")
    target = env.target
    assert target is not None
    if target.processes is None:
        return [doc.problem(where, f"{fault.kind} {fault.process} is a process fault, but target file "
                                   f"{target.path} names no process commands",
                            hint="add a 'processes:' section (commands kill/pause/resume/stop/start and targets) "
                                 "to the target file; see docs/targets.md")]
    kind = get_kind(fault.kind, f"faults[{i}]")
    needs = kind.needs(kind.validate(fault.params, fault.duration, f"faults[{i}]")) if kind.needs else ()
    try:
        names = select_targets(fault.process, list(target.processes.targets))
    except ConfigError as exc:
        return [doc.problem(where, f"{exc} in target file {target.path}")]
    out = []
    for name in names:
        missing = [a for a in needs if target.processes.command(name, a) is None]
        if missing:
            out.append(doc.problem(where, f"{fault.kind} {name} needs the command(s) {', '.join(missing)}, which "
                                          f"target file {target.path} does not name",
                                   hint=f"add processes.commands.{missing[0]} (an argv template) to the target file"))
    return out


def fault_problems(doc: YamlDoc, sc: Scenario, env: Environment) -> list[Problem]:
    """Each fault through chaos' planner against the environment's links and processes, then
    the whole schedule (overlaps), so that every faulty entry is reported, not only the first."""
    out: list[Problem] = []
    for i, fault in enumerate(sc.faults):
        entry = fault.to_entry()
        try:
            kind = get_kind(fault.kind, f"faults[{i}]")
        except ConfigError as exc:
            out.append(problem_from_message(doc, str(exc), hint=exc.hint))
            continue
        if kind.acts_on == "link" and fault.link is not None and env.links is None:
            out.append(doc.problem(("faults", i, "link"), f"a link fault, but {env.description} names no "
                                                          "Toxiproxy API", hint="add toxiproxy: {api: ...} and "
                                                                                "links: to the target file"))
            continue
        if kind.acts_on == "process" and fault.process is not None and env.target is not None:
            found = _target_process_problems(doc, i, fault, env)
            if found:
                out += found
                continue
        try:
            plan([entry], env.links, processes=env.processes)
        except ConfigError as exc:
            out.append(_chaos_problem(doc, str(exc), i, fault.params, exc.hint))
    if out or len(sc.faults) < 2:
        return out
    try:
        plan([f.to_entry() for f in sc.faults], env.links, processes=env.processes)
    except ConfigError as exc:
        match = re.match(r"^faults\[(\d+)\]", str(exc))
        index = int(match.group(1)) if match else 0
        out.append(doc.problem(("faults", index), str(exc).split(" ", 1)[1] if match else str(exc), hint=exc.hint))
    return out


# ------------------------------------------------------------------ a target's own settings


def ignored_stack_options(scenario: Scenario, target: TargetFile) -> list[tuple[str, str]]:
    """(option, why) for each stand-in option the scenario sets that a target cannot honour:
    a target's breaker, republish job and sidecars are what its file says they are."""
    defaults = StackSpec()
    out = []
    for name in StackSpec.model_fields:
        value, default = getattr(scenario.stack, name), getattr(defaults, name)
        if value == default:
            continue
        if name == "breaker":
            why = "the target's breaker is the target file's `breaker`"
        elif name in ("republish_interval_seconds", "republish_min_age_seconds"):
            why = f"the target republishes every {target.publisher.republish_interval_seconds} s (its `publisher`)"
        else:
            why = "it is an option of the embedded stand-in"
        shown = value.model_dump() if hasattr(value, "model_dump") else value
        out.append((name, f"scenario option stack.{name}={shown} does not apply to this target: {why}"))
    return out


def unhonoured_option_warnings(doc: YamlDoc, scenario: Scenario, target: TargetFile) -> list[Problem]:
    return [doc.problem(("stack", name), message, severity="warning")
            for name, message in ignored_stack_options(scenario, target)]
