"""`kugeldrill heal`: the halt button — undo every fault kugeldrill may have left behind.

Links: removes every toxic on proxies named `kugeldrill.*` (and toxics named
`kugeldrill.*` elsewhere) and re-enables those proxies, touching nothing else on a shared
Toxiproxy. Processes: with a stand-in's stack.json, continues every stopped (SIGSTOPped)
process and starts every dead one again from its recorded command (a paused Redis left
behind freezes everything); with a watchdog lease or a run's timeline.json, carries out
the lease's entries for the process faults that were active when the drill died. Use it
after a crash (`kill -9`, OOM) or when in doubt; it is always safe to repeat.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError, NotLoopbackError

DEFAULT_STATE = Path(".kugeldrill/stack.json")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"state file {path} does not exist") from None
    except ValueError as exc:
        raise ConfigError(f"state file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"state file {path} is not a stack.json, a watchdog lease or a timeline.json")
    return data


def api_from_file(path: Path) -> tuple[str | None, list[str]]:
    """Toxiproxy API (None: the file names none) and allowed hosts, from a stack.json,
    a watchdog lease or a timeline.json."""
    data = _read(path)
    allow = list(data.get("allow_hosts") or [])
    tox = data.get("toxiproxy")
    if isinstance(tox, dict) and tox.get("api"):
        return str(tox["api"]), allow
    if data.get("api"):
        return str(data["api"]), allow
    return None, allow


def _leases(path: Path, data: dict[str, Any]) -> list[Path]:
    """The lease itself, or the leases beside a timeline.json (a run folder)."""
    from kugeldrill.chaos.lease import leases_beside

    if "parent_pid" in data:
        return [path]
    if "faults" in data:
        return leases_beside(path)
    return []


def _parts(api: str | None, allow: list[str], state: Path | None, data: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The parts of the heal path this command covers, and the leases' parts (marked healed after)."""
    from kugeldrill.chaos.heal import LinkSweep
    from kugeldrill.chaos.lease import ACTIVE, read_lease
    from kugeldrill.chaos.procheal import LeaseEntries
    from kugeldrill.chaos.processes import ProcessSweep

    parts: list[Any] = [LinkSweep(api, allow_hosts=allow)] if api else []
    if state is not None and "services" in data and "version" in data:  # a stand-in's stack.json
        from kugeldrill.stack.launch.control import RecordedProcesses

        parts.append(ProcessSweep(RecordedProcesses.from_state_file(state)))
    leases = []
    for lease_path in _leases(state, data) if state is not None else []:
        lease = read_lease(lease_path) or {}
        if lease.get("state") == ACTIVE and lease.get("processes"):
            leases.append((lease_path, lease, LeaseEntries(lease["processes"])))
    return parts + [entries for _, _, entries in leases], leases


def run(args: argparse.Namespace) -> int:
    from kugeldrill.chaos.heal import heal  # imported here so the CLI starts fast
    from kugeldrill.chaos.lease import write_lease

    allow = list(args.allow_host)
    api: str | None = None
    state: Path | None = None
    if args.toxiproxy:
        api = args.toxiproxy
    elif args.state:
        state = args.state
    elif os.environ.get("TOXIPROXY_URL"):
        api = os.environ["TOXIPROXY_URL"]
    elif DEFAULT_STATE.exists():
        state = DEFAULT_STATE
    else:
        raise ConfigError("nothing to heal: pass --toxiproxy URL or --state FILE (stack.json, lease, timeline.json)",
                          hint=f"'kugeldrill stack up' writes {DEFAULT_STATE}; TOXIPROXY_URL is read too")
    data: dict[str, Any] = {}
    if state is not None:
        data = _read(state)
        api, extra = api_from_file(state)
        allow += extra
        if not api and "parent_pid" not in data and "services" not in data and "faults" not in data:
            raise ConfigError(f"state file {state} names no Toxiproxy API (expected toxiproxy.api or api) "
                              "and no processes")
    try:
        parts, leases = _parts(api, allow, state, data)
    except NotLoopbackError as exc:
        raise NotLoopbackError(str(exc), hint="if you mean to heal that Toxiproxy, pass --allow-host HOST") from None
    report = heal(parts)
    for line in report.done:
        print(line)
    for line in report.errors:
        print(f"  error: {line}")
    for lease_path, lease, entries in leases:
        if not entries.leftovers():
            lease["state"] = "healed_by_hand"
            write_lease(lease_path, lease)
    where = ", ".join([*([api] if api else []), *([str(state)] if state else [])])
    print(f"kugeldrill heal {where}: " + ("everything healed" if report.ok else
                                          "NOT healed: " + "; ".join(report.remaining)))
    return 0 if report.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "heal", help="remove every kugeldrill fault from a Toxiproxy and the stand-in's processes (safe to repeat)",
        description=__doc__.splitlines()[0],
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--toxiproxy", metavar="URL", help="Toxiproxy API, e.g. http://127.0.0.1:8474")
    src.add_argument("--state", type=Path, metavar="FILE",
                     help=f"stack.json, watchdog lease or timeline.json naming the API (default {DEFAULT_STATE})")
    parser.add_argument("--allow-host", action="append", default=[], help="non-loopback Toxiproxy host to allow")
    parser.set_defaults(func=run)
