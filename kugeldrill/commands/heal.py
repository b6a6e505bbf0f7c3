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
    if "parent_pid" in data:
        return [path]
    if "faults" in data:
        return sorted(path.parent.glob(".chaos-lease-*.json"))
    return []


def _heal_processes(path: Path, data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(lines done, problems left) for the stand-in's processes or a lease's process entries."""
    lines: list[str] = []
    problems: list[str] = []
    if "services" in data and "version" in data:  # a stand-in's stack.json
        from kugeldrill.stack.launch.control import RecordedProcesses

        ctl = RecordedProcesses.from_state_file(path)
        lines += ctl.heal_all()
        problems += ctl.problems(ctl.targets())
    from kugeldrill.chaos.procheal import heal_entries
    from kugeldrill.chaos.watchdog import read_lease, write_lease

    for lease_path in _leases(path, data):
        lease = read_lease(lease_path) or {}
        if lease.get("state") != "active" or not lease.get("processes"):
            continue
        outcomes = heal_entries(lease["processes"])
        lines += [f"process {o.target}: {o.message}" for o in outcomes]
        problems += [f"process {o.target}: {o.message}" for o in outcomes if not o.ok]
        if all(o.ok for o in outcomes):
            lease["state"] = "healed_by_hand"
            write_lease(lease_path, lease)
    return lines, problems


def run(args: argparse.Namespace) -> int:
    from kugeldrill.chaos.heal import heal_all  # imported here so the CLI starts fast

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
    ok = True
    if api:
        try:
            report = heal_all(api, allow_hosts=allow)
        except NotLoopbackError as exc:
            raise NotLoopbackError(str(exc), hint="if you mean to heal that Toxiproxy, pass --allow-host HOST") from None
        for item in report.removed:
            print(f"removed toxic {item}")
        for item in report.enabled:
            print(f"re-enabled proxy {item}")
        print(f"kugeldrill heal {api}: {report.summary()}")
        if not report.ok:
            ok = False
            for err in report.errors:
                print(f"  error: {err}")
    if state is not None:
        lines, problems = _heal_processes(state, data)
        for line in lines:
            print(line)
        print(f"kugeldrill heal processes ({state}): " + ("; ".join(problems) if problems else "all running, none stopped"))
        ok = ok and not problems
    return 0 if ok else 1


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
