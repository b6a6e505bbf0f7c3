"""`kugeldrill heal`: the halt button — undo every fault kugeldrill may have left behind.

Removes every toxic on proxies named `kugeldrill.*` (and toxics named `kugeldrill.*`
elsewhere) and re-enables those proxies, touching nothing else on a shared Toxiproxy.
Use it after a crash (`kill -9`, OOM) or when in doubt; it is always safe to repeat.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from kugeldrill.ground.errors import ConfigError

DEFAULT_STATE = Path(".kugeldrill/stack.json")


def api_from_file(path: Path) -> tuple[str, list[str]]:
    """Toxiproxy API (and allowed hosts) from a stack.json, a watchdog lease or a timeline.json."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"state file {path} does not exist") from None
    except ValueError as exc:
        raise ConfigError(f"state file {path} is not valid JSON: {exc}") from None
    allow = list(data.get("allow_hosts") or []) if isinstance(data, dict) else []
    if isinstance(data, dict):
        tox = data.get("toxiproxy")
        if isinstance(tox, dict) and tox.get("api"):
            return str(tox["api"]), allow
        if data.get("api"):
            return str(data["api"]), allow
    raise ConfigError(f"state file {path} names no Toxiproxy API (expected toxiproxy.api or api)")


def run(args: argparse.Namespace) -> int:
    from kugeldrill.chaos.heal import heal_all  # imported here so the CLI starts fast

    allow = list(args.allow_host)
    if args.toxiproxy:
        api = args.toxiproxy
    elif args.state:
        api, extra = api_from_file(args.state)
        allow += extra
    elif os.environ.get("TOXIPROXY_URL"):
        api = os.environ["TOXIPROXY_URL"]
    elif DEFAULT_STATE.exists():
        api, extra = api_from_file(DEFAULT_STATE)
        allow += extra
    else:
        raise ConfigError("no Toxiproxy to heal: pass --toxiproxy URL or --state stack.json",
                          hint=f"'kugeldrill stack up' writes {DEFAULT_STATE}; TOXIPROXY_URL is read too")
    report = heal_all(api, allow_hosts=allow)
    for item in report.removed:
        print(f"removed toxic {item}")
    for item in report.enabled:
        print(f"re-enabled proxy {item}")
    print(f"kugeldrill heal {api}: {report.summary()}")
    if not report.ok:
        for err in report.errors:
            print(f"  error: {err}")
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "heal", help="remove every kugeldrill fault from a Toxiproxy (safe to repeat)",
        description=__doc__.splitlines()[0],
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--toxiproxy", metavar="URL", help="Toxiproxy API, e.g. http://127.0.0.1:8474")
    src.add_argument("--state", type=Path, metavar="FILE",
                     help=f"stack.json, watchdog lease or timeline.json naming the API (default {DEFAULT_STATE})")
    parser.add_argument("--allow-host", action="append", default=[], help="non-loopback Toxiproxy host to allow")
    parser.set_defaults(func=run)
