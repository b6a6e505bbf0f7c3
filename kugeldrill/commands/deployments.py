"""What `kugeldrill stack` and `kugeldrill kugelpos` do alike with a deployment they recorded
in a state file: stop it and report what was left, print its parts, URLs and log tails.

No sub-command of its own (no `register`); the two command modules call it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kugeldrill.ground.durations import duration_arg
from kugeldrill.ground.errors import DrillError


def stop_recorded(path: Path, attach: Callable[[Path], Any], what: str, command: str) -> int:
    """`down`: stop exactly the processes recorded in `path`, print each outcome, and raise a
    DrillError (keeping the state file) if a process or port was left behind."""
    if not path.exists():
        print(f"no {what} state at {path}; nothing to stop")
        return 0
    result = attach(path).down()
    for part, outcome in result["stopped"].items():
        print(f"{part:20s} {outcome}")
    if result["problems"] or result["ports_left"]:
        raise DrillError(
            f"{command} down left something behind: processes {result['problems'] or 'none'}, "
            f"ports still listening {result['ports_left'] or 'none'}",
            hint=f"state kept in {path}; inspect with 'kugeldrill {command} status'",
        )
    return 0


def print_part(name: str, part: dict[str, Any] | None) -> None:
    """One status line: URL, pid, whether it runs (or is paused) and answers, and its problem."""
    if not part:
        print(f"  {name:20s} -")
        return
    health = {True: "healthy", False: "UNHEALTHY", None: ""}[part.get("healthy")]
    run = ("STOPPED (SIGSTOP)" if part.get("stopped") else "running") if part.get("running") else "NOT RUNNING"
    extra = f" ({part['problem']})" if part.get("problem") else ""
    print(f"  {name:20s} {part.get('url') or '':28s} pid {part.get('pid')!s:8s} {run} {health}{extra}")


def print_app_urls(status: dict[str, Any]) -> None:
    """Each app's service URL, and its sidecar's where it has one."""
    for app, svc in status["services"].items():
        side = status["sidecars"].get(app)
        print(f"  {app:12s} {svc['url']}" + (f"   sidecar {side['url']}" if side else ""))


def print_links(status: dict[str, Any]) -> None:
    for name, link in status["links"].items():
        print(f"  link {name:16s} {link['listen']:22s} -> {link['upstream']}")


def print_tails(files: list[tuple[str, Path]], lines: int) -> None:
    """The last `lines` lines of each (label, path), under a `==> label (path) <==` header."""
    for label, path in files:
        print(f"==> {label} ({path}) <==")
        if path.exists() and lines > 0:
            for line in path.read_text(errors="replace").splitlines()[-lines:]:
                print(line)


def sidecar_line(sidecar: dict[str, Any]) -> str:
    """e.g. "daprd 1.18.0 (ack model 1.18)"."""
    text = f"{sidecar.get('kind') or 'daprd'} {sidecar.get('version') or ''}".rstrip()
    return text + (f" (ack model {sidecar['ack_model']})" if sidecar.get("ack_model") else "")


PROCESS_ACTIONS = ["kill", "pause", "resume", "stop", "start", "pids", "ready", "running"]


def add_process_parser(sub: argparse._SubParsersAction, what: str,
                       state_dir: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """`process ACTION TARGET`: what process faults do, by hand (also the halt button for one part)."""
    proc = sub.add_parser("process", help=f"kill, pause, resume, stop or start one process of {what} "
                                          "(what process faults do; also the halt button for one part)")
    state_dir(proc)
    proc.add_argument("action", choices=PROCESS_ACTIONS,
                      help="pids prints the pids; ready waits for its health probe; running exits 0 when it "
                           "runs and is not stopped")
    proc.add_argument("target", help="redis, sidecar@<app> or app@<app>")
    proc.add_argument("--grace", type=duration_arg, default=10.0, help="stop: seconds between SIGTERM and SIGKILL (10)")
    proc.add_argument("--timeout", type=duration_arg, default=60.0, help="ready: seconds to wait (60)")
    proc.add_argument("--json", action="store_true", help="print the action's record as JSON")
    return proc


def process_action(state_path: Path, args: argparse.Namespace) -> int:
    """Carry out `args.action` on `args.target` of the deployment recorded in `state_path`."""
    from kugeldrill.stack.launch.control import RecordedProcesses

    if not state_path.exists():
        raise DrillError(f"no deployment state at {state_path}", hint="pass the --state-dir its `up` used")
    ctl = RecordedProcesses.from_state_file(state_path)
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
