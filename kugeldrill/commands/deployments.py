"""What `kugeldrill stack` and `kugeldrill kugelpos` do alike with a deployment they recorded
in a state file: stop it and report what was left, print its parts, URLs and log tails.

No sub-command of its own (no `register`); the two command modules call it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
