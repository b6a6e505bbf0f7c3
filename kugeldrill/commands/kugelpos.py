"""`kugeldrill kugelpos up|down|status|logs`: the real Kugelpos services from a checkout, natively.

`up --src PATH` builds what is missing (each service's environment from its Pipfile.lock,
kugel_common from the checkout's source, the MongoDB server; all cached), starts Redis,
Toxiproxy with the named links, MongoDB, a sidecar per Dapr app and the seven services,
waits until all are healthy, and writes a target file (`<state-dir>/kugelpos-target.yaml`), so that
`kugeldrill run SCENARIO --target <state-dir>/kugelpos-target.yaml` drills the real code. The
processes keep running detached; `down` stops exactly them and checks no port is left.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from kugeldrill.commands.deployments import print_app_urls, print_links, print_part, print_tails, sidecar_line, stop_recorded
from kugeldrill.ground.errors import ConfigError, DrillError

DEFAULT_STATE_DIR = Path(".kugeldrill") / "kugelpos"
TARGET_NAME = "kugelpos-target.yaml"  # beside kugelpos.json in the state dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kugelpos", help="run the real Kugelpos services from a checkout (no containers)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kugelpos_command", metavar="ACTION", required=True)

    def state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help="where kugelpos.json, logs, components and kugelpos-target.yaml live (default .kugeldrill/kugelpos)")

    up = sub.add_parser("up", help="build what is missing, start everything, wait for health, write a target file")
    up.add_argument("--src", type=Path, default=os.environ.get("KUGELPOS_SRC"),
                    help="the Kugelpos checkout (its root, with services/); default $KUGELPOS_SRC")
    state_dir(up)
    up.add_argument("--target-file", type=Path, metavar="PATH", help="where to write the target file (default <state-dir>/kugelpos-target.yaml)")
    up.add_argument("--workers", default="dev", metavar="dev|prod|APP=N,...",
                    help="uvicorn worker processes per service: dev (1 each, as the dev Compose file; default), "
                         "prod (the counts of the checkout's services/docker-compose.prod.yaml: several "
                         "republish jobs and per-process breakers), or e.g. cart=8,terminal=4")
    up.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra environment variable for every service, e.g. a Kugelpos setting (repeatable)")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health (180)")
    up.add_argument("--prepare-only", action="store_true",
                    help="only build/check the environments and the MongoDB server (what `up` caches), start nothing")
    up.add_argument("--json", action="store_true", help="print the status JSON when healthy")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop exactly the processes `up` started")
    state_dir(down)
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="URLs, pids and health of every part (asks each service's /health)")
    state_dir(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--no-probe", action="store_true",
                        help="only check the processes (a probe of cart/terminal /health publishes a test message)")
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", help="the last lines of each service's Kugelpos log (app.log) and sidecar log")
    state_dir(logs)
    logs.add_argument("app", nargs="?", help="app id (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=30, help="lines per file (30)")
    logs.set_defaults(func=cmd_logs)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--env {pair!r} is not NAME=VALUE")
        out[name] = value
    return out


def _say(message: str) -> None:
    print(f"kugelpos: {message}", file=sys.stderr, flush=True)


def _interrupt_on_signals() -> None:
    """SIGINT/SIGTERM interrupt `up` (which then stops what it started); installed explicitly,
    since a shell starting us in the background hands SIGINT over ignored."""
    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def cmd_up(args: argparse.Namespace) -> int:
    from kugeldrill.deploy.from_native import target_from_native
    from kugeldrill.stack.native.launcher import NativeKugelpos, NativeOptions, prepare
    from kugeldrill.target import dump_target

    if args.src is None:
        raise ConfigError("kugelpos up needs --src PATH (a Kugelpos checkout) or $KUGELPOS_SRC")
    _interrupt_on_signals()
    opts = NativeOptions(src=args.src, state_dir=args.state_dir, health_timeout=args.timeout,
                         extra_env=_parse_env(args.env), workers=args.workers, progress=_say)
    opts.validate()
    prepared = prepare(opts)
    if args.prepare_only:
        built = [app for app, env in prepared.envs.items() if env.built_now]
        envs = f"{', '.join(built)} built now" if built else "all cached"
        _say(f"prepared in {prepared.seconds:.1f}s: Python {prepared.python_version}, "
             f"{len({e.key for e in prepared.envs.values()})} environments ({envs}), "
             f"MongoDB server {'built now' if prepared.mongo.built_now else 'cached'}")
        return 0
    native = NativeKugelpos.up(opts, prepared)
    target_path = (args.target_file or Path(native.state["state_dir"]) / TARGET_NAME).resolve()
    target_path.parent.mkdir(parents=True, exist_ok=True)
    target_path.write_text(
        "# Written by 'kugeldrill kugelpos up' for the native Kugelpos in "
        f"{native.state['state_dir']}; valid while it runs.\n" + dump_target(target_from_native(native.state)))
    native.record_target(target_path)
    if args.json:
        print(json.dumps(native.status(probe=False), indent=2))
    else:
        print(f"kugelpos healthy in {native.state.get('startup_seconds', 0):.1f}s "
              f"(prepared in {native.state.get('prepare_seconds', 0):.1f}s); state: {native.state_path}")
        _print_urls(native.status(probe=False))
        print(f"target file: {target_path}")
        print(f"  drill it:  kugeldrill run baseline --target {target_path}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from kugeldrill.stack.native.launcher import STATE_NAME, NativeKugelpos

    return stop_recorded(args.state_dir / STATE_NAME, NativeKugelpos.from_state_file, "native Kugelpos", "kugelpos")


def _attach(state_dir: Path) -> Any:
    from kugeldrill.stack.native.launcher import STATE_NAME, NativeKugelpos

    if not (state_dir / STATE_NAME).exists():
        raise DrillError(f"no native Kugelpos state at {state_dir / STATE_NAME}",
                         hint="start one with 'kugeldrill kugelpos up --src PATH' (or pass the --state-dir it used)")
    return NativeKugelpos.from_state_file(state_dir)


def cmd_status(args: argparse.Namespace) -> int:
    native = _attach(args.state_dir)
    status = native.status(probe=not args.no_probe)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_status(status)
    parts = [status["redis"], status["toxiproxy"], status["mongo"], *status["services"].values(),
             *status["sidecars"].values()]
    return 0 if all(p and p.get("running") for p in parts) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    state = _attach(args.state_dir).state
    files: list[tuple[str, Path]] = []
    for app, entry in state.get("services", {}).items():
        files.append((app, Path(entry["app_log"])))
        if app in state.get("sidecars", {}):
            files.append((f"sidecar {app}", Path(state["sidecars"][app]["log"])))
    if args.app:
        files = [(label, path) for label, path in files if label in (args.app, f"sidecar {args.app}")]
        if not files:
            raise DrillError(f"no logs for {args.app!r}", hint=f"known: {', '.join(state.get('services', {}))}")
    print_tails(files, args.lines)
    return 0


def _print_urls(status: dict[str, Any]) -> None:
    print(f"  redis      {status['redis_url']}")
    print(f"  toxiproxy  {status['toxiproxy_url']}")
    print(f"  mongodb    {status['mongodb_url']}")
    print(f"  sidecars   {_sidecars(status)}")
    print_app_urls(status)


def _print_status(status: dict[str, Any]) -> None:
    checkout = status.get("checkout") or {}
    print(f"state: {status['state_file']} ({status['status']}); checkout {checkout.get('path')}"
          + (f" @ {checkout['commit'][:12]}" if checkout.get("commit") else ""))

    print(f"  {'sidecars':20s} {_sidecars(status)}")
    print_part("redis", status["redis"])
    print_part("toxiproxy", status["toxiproxy"])
    print_part("mongodb", status["mongo"])
    tx = (status.get("mongo") or {}).get("transactions")
    if tx:
        print(f"  {'':20s} transactions committed {tx.get('commits')}, aborted {tx.get('aborts')} "
              f"(aborted writes are kept: no multi-document atomicity)")
    for app, part in status["services"].items():
        print_part(app, part)
    for app, part in status["sidecars"].items():
        print_part(f"sidecar {app}", part)
    print_links(status)
    if status.get("target"):
        print(f"target file: {status['target']}")


def _sidecars(status: dict[str, Any]) -> str:
    """Which daprd runs beside the services."""
    return sidecar_line(status.get("sidecar") or {})
