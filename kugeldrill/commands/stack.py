"""`kugeldrill stack up|down|status|logs|process`: the embedded stack from the command line.

`up` returns once every part is healthy; the processes keep running detached and are
found again through `<state-dir>/stack.json` by `down`, `status` and `logs`. A drill
(`kugeldrill run`) starts its own embedded stack; this command is for exploring by hand and for
tests of your own (the pytest plugin's fault fixtures find it through stack.json).

examples:
  kugeldrill stack up
  kugeldrill stack status --json
  kugeldrill stack process pause sidecar@journal
  kugeldrill stack logs cart -n 20
  kugeldrill stack down
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kugeldrill.commands.deployments import print_app_urls, print_links, print_part, print_tails, sidecar_line, stop_recorded
from kugeldrill.ground.durations import duration_arg
from kugeldrill.ground.errors import DrillError

DEFAULT_STATE_DIR = Path(".kugeldrill")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stack", help="start, inspect and stop the embedded stack (the stand-in services beside real daprd)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    def state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help="where stack.json, logs, events and data live (default .kugeldrill)")

    up = sub.add_parser("up", help="start Redis, Toxiproxy, sidecars and services; return when healthy")
    state_dir(up)
    up.add_argument("--breaker-threshold", type=int, default=3, help="consecutive failures that open the breaker (3)")
    up.add_argument("--breaker-reset", type=duration_arg, default=60.0, help="seconds OPEN before HALF_OPEN (60)")
    up.add_argument("--half-open-calls", type=int, default=1, help="trial calls admitted in HALF_OPEN (1)")
    up.add_argument("--republish-interval", type=duration_arg, default=300.0, help="seconds between republish runs (300)")
    up.add_argument("--republish-min-age", type=duration_arg, default=None,
                    help="only republish events older than this (default: the interval)")
    up.add_argument("--ack-model", choices=["1.18", "1.16"], default="1.18",
                    help="Dapr ack model (1.18): 1.18 runs tools/bin/daprd (make setup), 1.16 tools/bin/daprd-1.16 "
                         "(make daprd-1.16)")
    up.add_argument("--defect", action="append", default=[], metavar="NAME",
                    help="switch on one documented defect (repeatable)")
    up.add_argument("--crash-before-effect-every", type=int, default=0, metavar="N",
                    help="subscribers exit before every Nth effect; a supervisor restarts them (0 = off)")
    up.add_argument("--fail-effect-every", type=int, default=0, metavar="N",
                    help="every Nth business write of a subscriber fails (a processing error; 0 = off)")
    up.add_argument("--no-resiliency", action="store_true", help="render no Dapr Resiliency spec")
    up.add_argument("--redis-persistence", choices=["none", "aof"], default="none",
                    help="none: a Redis restart loses everything (default); aof: append-only file, fsync every second")
    up.add_argument("--timeout", type=duration_arg, default=60.0, help="seconds to wait for health (60)")
    up.add_argument("--json", action="store_true", help="print the status as JSON when healthy")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop exactly the processes `up` started")
    state_dir(down)
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="show URLs, pids and health of every part")
    state_dir(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    proc = sub.add_parser("process", help="kill, pause, resume, stop or start one process of the embedded stack "
                                          "(what process faults do; also the halt button for one part)")
    state_dir(proc)
    proc.add_argument("action", choices=["kill", "pause", "resume", "stop", "start", "pids", "ready", "running"],
                      help="pids prints the pids; ready waits for its health probe; running exits 0 when it "
                           "runs and is not stopped")
    proc.add_argument("target", help="redis, sidecar@<app> or app@<app>")
    proc.add_argument("--grace", type=duration_arg, default=10.0, help="stop: seconds between SIGTERM and SIGKILL (10)")
    proc.add_argument("--timeout", type=duration_arg, default=60.0, help="ready: seconds to wait (60)")
    proc.add_argument("--json", action="store_true", help="print the action's record as JSON")
    proc.set_defaults(func=cmd_process)

    logs = sub.add_parser("logs", help="tail the logs (all, or one app's service and sidecar)")
    state_dir(logs)
    logs.add_argument("app", nargs="?", help="app id, or redis / toxiproxy / supervisor")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per file (40)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.set_defaults(func=cmd_logs)


def cmd_up(args: argparse.Namespace) -> int:
    from kugeldrill.stack.embedded import Stack, StackOptions

    opts = StackOptions(
        state_dir=args.state_dir,
        breaker_threshold=args.breaker_threshold,
        breaker_reset_seconds=args.breaker_reset,
        breaker_half_open_max_calls=args.half_open_calls,
        republish_interval_seconds=args.republish_interval,
        republish_min_age_seconds=args.republish_min_age,
        ack_model=args.ack_model,
        defects=list(args.defect),
        crash_before_effect_every=args.crash_before_effect_every,
        fail_effect_every=args.fail_effect_every,
        resiliency=not args.no_resiliency,
        redis_persistence=args.redis_persistence,
        health_timeout=args.timeout,
        supervisor="process",
    )
    stack = Stack.up(opts)
    status = stack.status(probe=False)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"stack healthy in {stack.state.get('startup_seconds', 0):.1f}s; state: {stack.state_path}")
        print(f"  sidecars   {sidecar_line(status['sidecar'])}")
        _print_urls(status)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from kugeldrill.stack.launch.state import STATE_NAME
    from kugeldrill.stack.embedded import Stack

    return stop_recorded(args.state_dir / STATE_NAME, Stack.from_state_file, "stack", "stack")


def cmd_status(args: argparse.Namespace) -> int:
    from kugeldrill.stack.embedded import Stack

    stack = Stack.from_state_file(args.state_dir)
    status = stack.status(probe=True)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_status(status)
    running = [status["redis"], status["toxiproxy"], *status["services"].values(), *status["sidecars"].values()]
    return 0 if all(p and p.get("running") and not p.get("stopped") for p in running) else 1


def cmd_process(args: argparse.Namespace) -> int:
    from kugeldrill.stack.launch.control import RecordedProcesses

    ctl = RecordedProcesses.from_state_file(args.state_dir)
    if args.target not in ctl.targets():
        raise DrillError(f"{ctl.description} has no process {args.target!r}", hint=f"known: {', '.join(ctl.targets())}")
    if args.action == "pids":
        print(" ".join(str(p) for p in ctl.pids(args.target)))
        return 0
    if args.action == "running":
        problems = ctl.problems([args.target])
        print(problems[0] if problems else f"{args.target} running")
        return 1 if problems else 0
    if args.action == "ready":
        problem = ctl.wait_ready(args.target, args.timeout)
        print(problem or f"{args.target} ready")
        return 1 if problem else 0
    result = ctl.stop(args.target, args.grace) if args.action == "stop" else getattr(ctl, args.action)(args.target)
    if args.json:
        print(json.dumps(result.record()))
    else:
        print(f"{args.action} {args.target}: {result.outcome}; pids {list(result.pids_before)} -> "
              f"{list(result.pids_after)}" + (f" ({result.detail})" if result.detail else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from kugeldrill.stack.embedded import Stack

    stack = Stack.from_state_file(args.state_dir)
    files = _log_files(stack.state, args.app)
    print_tails(files, args.lines)
    if not args.follow:
        return 0
    offsets = {path: path.stat().st_size if path.exists() else 0 for _, path in files}
    try:
        while True:
            for label, path in files:
                if not path.exists():
                    continue
                size = path.stat().st_size
                if size < offsets[path]:
                    offsets[path] = 0  # truncated or replaced
                if size > offsets[path]:
                    with path.open("rb") as fh:
                        fh.seek(offsets[path])
                        chunk = fh.read(size - offsets[path])
                    offsets[path] = size
                    for line in chunk.decode(errors="replace").splitlines():
                        print(f"{label}: {line}", flush=True)
            time.sleep(0.3)
    except KeyboardInterrupt:
        return 0


def _log_files(state: dict[str, Any], app: str | None) -> list[tuple[str, Path]]:
    """(label, path) of the logs to show; an unknown app is a DrillError listing the known ones."""
    files: list[tuple[str, Path]] = []
    for name in ("redis", "toxiproxy"):
        if state.get(name, {}).get("log"):
            files.append((name, Path(state[name]["log"])))
    if state.get("supervisor", {}).get("log"):
        files.append(("supervisor", Path(state["supervisor"]["log"])))
    for a, entry in state.get("services", {}).items():
        files.append((a, Path(entry["log"])))
        if a in state.get("sidecars", {}):
            files.append((f"sidecar {a}", Path(state["sidecars"][a]["log"])))
    if app is None:
        return files
    chosen = [(label, path) for label, path in files if label in (app, f"sidecar {app}")]
    if not chosen:
        known = sorted({label.removeprefix("sidecar ") for label, _ in files})
        raise DrillError(f"no logs for {app!r}", hint=f"known: {', '.join(known)}")
    return chosen


def _print_urls(status: dict[str, Any]) -> None:
    print(f"  redis      {status['redis_url']}")
    print(f"  toxiproxy  {status['toxiproxy_url']}")
    print_app_urls(status)


def _print_status(status: dict[str, Any]) -> None:
    print(f"state: {status['state_file']} ({status['status']})")
    print(f"  {'sidecars':20s} {sidecar_line(status['sidecar'])}")

    print_part("redis", status["redis"])
    print_part("toxiproxy", status["toxiproxy"])
    for app, part in status["services"].items():
        print_part(app, part)
        if part.get("restarts"):
            print(f"  {'':20s} restarted {part['restarts']} time(s)")
    for app, part in status["sidecars"].items():
        print_part(f"sidecar {app}", part)
    print_links(status)
