"""`python -m chaos run`: run one fault timeline against a stack's links, standalone.

Used by the subprocess safety tests and handy for drilling a stack by hand while some
other load runs:

    python -m chaos run --state .kugeldrill/stack.json --timeline faults.yaml --out timeline.json

It heals on normal end, exceptions, SIGINT and SIGTERM; a watchdog heals after SIGKILL.
Exit codes: 0 done and healed, 1 not fully healed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kugeldrill.chaos.heal import heal_on_signals
from kugeldrill.chaos.links import LinkMap
from kugeldrill.chaos.plan import load_spec
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.errors import ConfigError, run_handler
from kugeldrill.ground.runfolder import RunFolder


def _api_from_state(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
        return str(data["toxiproxy"]["api"])
    except FileNotFoundError:
        raise ConfigError(f"state file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"state file {path} has no toxiproxy.api ({exc})") from None


def cmd_run(args: argparse.Namespace) -> int:
    api = args.toxiproxy or _api_from_state(args.state)
    links = LinkMap.from_state_file(args.state, allow_hosts=args.allow_host)
    spec = load_spec(args.timeline)
    with ToxiproxyClient(api, allow_hosts=args.allow_host) as client:
        timeline = Timeline(spec, links, client, out=args.out, watchdog=not args.no_watchdog)
        with heal_on_signals(timeline.stop):
            timeline.start()
            if args.ready_file:  # tells a test harness that faults are scheduled
                args.ready_file.write_text(str(time.monotonic()))
            try:
                timeline.wait()
            finally:
                report = timeline.stop()
    print(f"timeline {timeline.state}: {report.summary()}")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a fault timeline against the links of a stack.json")
    run.add_argument("--state", type=Path, required=True, help="stack.json with 'links' (and toxiproxy.api)")
    run.add_argument("--timeline", type=Path, required=True, help="YAML/JSON with 'faults:'")
    run.add_argument("--out", type=Path, default=RunFolder(".").timeline_json)
    run.add_argument("--toxiproxy", help="Toxiproxy API URL (default: from --state)")
    run.add_argument("--allow-host", action="append", default=[], help="non-loopback host to allow")
    run.add_argument("--no-watchdog", action="store_true")
    run.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return run_handler("chaos", args.func, args, interrupted="interrupted (links healed)")


if __name__ == "__main__":
    sys.exit(main())
