"""What explore may draw from, for the environment it drills: its links, optionally narrowed."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from kugeldrill.explore.generate import NETWORK_KINDS, PROCESS_KINDS, Space
from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.launch.plan import SIDECAR_APPS, SUBSCRIBERS, link_names
from kugeldrill.target import load_target


def available_links(target: Path | None) -> list[str]:
    """The stand-in's links, or the ones a target file names (faults go nowhere else)."""
    if target is None:
        return link_names()
    return sorted(load_target(target).links)


def available_processes(target: Path | None) -> list[str]:
    """The stand-in's process targets, or the ones a target file's `processes:` names.

    On the stand-in: Redis, every sidecar and the subscribers. Not the publishers: a kill
    between a publish and its `publish` event line leaves the events file without the
    publication (the outbox cannot tell whether it went out), and the fan-out checker would
    call the subscribers' applications of it unexpected — a false alarm."""
    if target is None:
        return ["redis", *(f"sidecar@{a}" for a in SIDECAR_APPS), *(f"app@{a}" for a in SUBSCRIBERS)]
    spec = load_target(target).processes
    return list(spec.targets) if spec is not None else []


def narrow(names: list[str], selectors: str | None, option: str = "--links") -> tuple[str, ...]:
    """Names matching any of the comma-separated selectors (`redis@*`, `*@cart`, `sidecar@cart`)."""
    if not selectors:
        return tuple(names)
    wanted = [s.strip() for s in selectors.split(",") if s.strip()]
    chosen = tuple(name for name in names if any(fnmatchcase(name, sel) for sel in wanted))
    if not chosen:
        what = "links" if option == "--links" else "process targets"
        raise ConfigError(f"{option} {selectors!r} matches none of the {what}: {', '.join(names)}")
    return chosen


def build_space(target: Path | None, links: str | None, kinds: str | None, max_faults: int,
                processes: str | None = None) -> Space:
    """`links` narrows the links network faults may hit; `processes` the process targets
    kill, pause and restart may hit (both: comma-separated selectors, default all)."""
    chosen_kinds = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else tuple(NETWORK_KINDS)
    chosen_processes = (narrow(available_processes(target), processes, "--process-targets")
                        if set(chosen_kinds) & set(PROCESS_KINDS) else ())
    space = Space(links=narrow(available_links(target), links), kinds=chosen_kinds, max_faults=max_faults,
                  processes=chosen_processes)
    space.check()
    return space
