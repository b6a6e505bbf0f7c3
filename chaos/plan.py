"""Planning a fault timeline: every entry checked, selectors expanded, nothing applied.

Schema (a scenario embeds it under `faults:`; a bare list, or PlannedFault records, too)::

    faults:
      - id: redis-cut          # optional, default f<N>; letters, digits, - and _
        at: 5                  # seconds after the timeline starts (>= 0); also 500ms, 1m30s
        for: 10                # seconds (> 0, bounded): every fault ends
        link: redis@cart       # selector: redis@cart, redis@*, *@journal, a,b
        kind: latency          # see chaos.kinds (chaos.link_kinds, chaos.process_kinds)
        latency: 200           # kind parameters, inline ...
        params: {jitter: 20}   # ... or under params (not both for one key)
      - {at: 8, for: 4, process: app@journal, kind: kill, restart: immediately}

Everything is checked before anything is applied — unknown kind, missing or unknown
parameter, negative or missing duration, a selector matching nothing, a non-loopback
link, an action the process control cannot do, two faults overlapping on one link or
process — and the ConfigError names the entry and field (`faults[2].latency is required ...`).
A selector matching several links (or process targets) yields one planned fault per
subject, with id `<id>:<subject>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kugeldrill.chaos.kinds import FaultKind, Param, get_kind, validate_duration
from kugeldrill.chaos.links import LinkMap
from kugeldrill.chaos.processes import ProcessControl, select_targets
from kugeldrill.chaos.record import MAX_FAULT_SECONDS, PlannedFault
from kugeldrill.ground.errors import ConfigError, DrillError

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENTRY_KEYS = ("id", "at", "for", "link", "process", "kind", "params")


def entries_of(spec: Any) -> list[Any]:
    """The entries of a spec: `{faults: [...]}`, a bare list, or None."""
    if isinstance(spec, Mapping):
        unknown = [k for k in spec if k != "faults"]
        if unknown:
            raise ConfigError(f"fault timeline has unknown key(s) {', '.join(map(str, unknown))} (expected 'faults')")
        spec = spec.get("faults")
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise ConfigError(f"faults must be a list of fault entries, got {type(spec).__name__}")
    return spec


def read_entry(entry: Any, where: str, max_fault_seconds: float = MAX_FAULT_SECONDS) -> PlannedFault:
    """A planned fault from one raw entry (parameters inline or under `params`)."""
    if isinstance(entry, PlannedFault):
        entry = entry.to_entry()
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a mapping with at, for, link (or process) and kind, got {entry!r}")
    for key in ("kind", "at", "for"):
        if key not in entry:
            raise ConfigError(f"{where}.{key} is missing (every fault needs at, for, link or process, and kind)")
    kind = get_kind(entry["kind"], where)
    subject_key = "process" if kind.acts_on == "process" else "link"
    other_key = "link" if subject_key == "process" else "process"
    if other_key in entry:
        raise ConfigError(f"{where}.{other_key}: fault kind {kind.name!r} acts on a {subject_key}, "
                          f"not a {other_key}; give '{subject_key}:' instead",
                          hint="process kinds (kill, pause, restart) take process: redis | sidecar@X | app@X; "
                               "link kinds take link: redis@X | sidecar@X | app@X")
    if subject_key not in entry:
        raise ConfigError(f"{where}.{subject_key} is missing (fault kind {kind.name!r} needs a {subject_key})")
    raw: dict[str, Any] = {}
    if "params" in entry:
        if not isinstance(entry["params"], Mapping):
            raise ConfigError(f"{where}.params must be a mapping, got {type(entry['params']).__name__}")
        raw.update(entry["params"])
    for key, value in entry.items():
        if key in _ENTRY_KEYS:
            continue
        if key in raw:
            raise ConfigError(f"{where}.{key} is given both inline and under params")
        raw[key] = value
    at = Param("at", float, minimum=0.0, unit="s").parse(entry["at"], where)
    duration = validate_duration(entry["for"], where, maximum=max_fault_seconds)
    return PlannedFault(kind=kind.name, at=at, duration=duration, params=kind.validate(raw, duration, where),
                        id=entry.get("id"), **{subject_key: entry[subject_key]})


def plan(spec: Any, links: LinkMap | None, *, allow_hosts: Iterable[str] | None = None,
         max_fault_seconds: float = MAX_FAULT_SECONDS, processes: ProcessControl | None = None) -> list[PlannedFault]:
    """Validate a timeline spec against the links and process targets; one planned fault per subject.

    Scenario loaders call this at parse time to report errors before a stack starts."""
    links = links if links is not None else LinkMap([])
    allow = tuple(links.allow_hosts if allow_hosts is None else allow_hosts)
    planned: list[tuple[int, PlannedFault]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries_of(spec)):
        where = f"faults[{i}]"
        fault = read_entry(entry, where, max_fault_seconds)
        spec_id = fault.id if fault.id is not None else f"f{i + 1}"
        if not isinstance(spec_id, str) or not _ID_RE.match(spec_id):
            raise ConfigError(f"{where}.id must be 1-64 letters, digits, '-' or '_', got {spec_id!r}")
        if spec_id in seen:
            raise ConfigError(f"{where}.id {spec_id!r} is used twice")
        seen.add(spec_id)
        subjects = _process_subjects(fault, where, processes) if fault.is_process else _links(fault, where, links, allow)
        for subject in subjects:
            planned.append((i, fault.on(subject, spec_id if len(subjects) == 1 else f"{spec_id}:{subject}")))
    _check_overlaps(planned)
    return [p for _, p in planned]


def _links(fault: PlannedFault, where: str, links: LinkMap, allow: tuple[str, ...]) -> list[str]:
    try:
        chosen = links.select(str(fault.link))
    except ConfigError as err:
        raise ConfigError(f"{where}.link: {err}") from None
    for link in chosen:
        try:
            link.check_loopback(allow)
        except DrillError as err:
            raise ConfigError(f"{where}.link: {err}", hint=err.hint) from None
    return [link.name for link in chosen]


def _process_subjects(fault: PlannedFault, where: str, processes: ProcessControl | None) -> list[str]:
    """The process targets the selector names, refused where nobody can act."""
    kind: FaultKind = get_kind(fault.kind, where)
    if processes is None:
        raise ConfigError(f"{where}: fault kind {kind.name!r} acts on a process, but no process control is "
                          "available here", hint="the drill provides one for the embedded stand-in and for a "
                                                 "target file with process commands")
    try:
        targets = select_targets(fault.process, processes.targets())
    except ConfigError as err:
        raise ConfigError(f"{where}.process: {err}", hint=err.hint) from None
    needs = kind.needs(fault.params) if kind.needs else ()
    for target in targets:
        missing = processes.missing_actions(target, needs)
        if missing:
            raise ConfigError(f"{where}: fault kind {kind.name!r} on process {target} needs the action(s) "
                              f"{', '.join(missing)}, which {processes.description} cannot do",
                              hint="a target file names them under processes.commands (e.g. kill: [docker, kill, "
                                   "'{container}'], start: [docker, start, '{container}'])")
    return targets


def _check_overlaps(planned: list[tuple[int, PlannedFault]]) -> None:
    by_subject: dict[str, list[tuple[int, PlannedFault]]] = {}
    for index, fault in planned:
        by_subject.setdefault(fault.subject, []).append((index, fault))
    for subject, faults in by_subject.items():
        faults.sort(key=lambda f: f[1].at)
        for (ia, a), (ib, b) in zip(faults, faults[1:]):
            if b.at < a.end - 1e-9:
                (i1, first), (i2, second) = sorted(((ia, a), (ib, b)), key=lambda f: f[0])
                raise ConfigError(
                    f"faults[{i2}] ({second.kind} at {second.at:g}s for {second.duration:g}s) overlaps "
                    f"faults[{i1}] ({first.kind} at {first.at:g}s for {first.duration:g}s) on "
                    f"{'process' if first.is_process else 'link'} {subject}",
                    hint="one fault per link or process at a time; shift 'at' or shorten 'for'",
                )


def load_spec(path: str | Path) -> Any:
    """Read a timeline spec from YAML or JSON (a file with `faults:` or a bare list)."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"timeline file {p} does not exist") from None
    try:
        return json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"timeline file {p} cannot be parsed: {exc}") from None
