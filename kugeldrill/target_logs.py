"""A target's logs, gathered into the run folder before the checkers read them.

The checkers of a target drill read only what the target file names. Its log files are
copied to `logs/<app>.log` and its log command's output saved to `logs/target.log`, and
the checkers parse those copies: the run folder then holds the evidence the verdict was
built from, `kugeldrill report RUN_DIR` can re-render without the deployment, and a log
that rotates or a container that is recreated later does not change what was judged.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.target import LogSource

COMMAND_LOG = "target.log"


@dataclass
class GatheredLogs:
    """app -> copied files ("" : compose-style streams whose prefix names the service)."""

    files: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _copy_files(logs: LogSource, dest: Path, out: GatheredLogs) -> None:
    for app, src in logs.files.items():
        copy = dest / f"{app}.log"
        try:
            shutil.copyfile(src, copy)
        except OSError as exc:
            out.notes.append(f"log of {app}: cannot copy {src}: {exc}")
            continue
        out.files.setdefault(app, []).append(copy)


def _keep_files(logs: LogSource, dest: Path, out: GatheredLogs) -> None:
    """Logs kept for people and evidence, not for the parsers (a sidecar's lines)."""
    for name, src in logs.keep.items():
        try:
            shutil.copyfile(src, dest / f"{name}.log")
        except OSError as exc:
            out.notes.append(f"log {name}: cannot copy {src}: {exc}")


def _run_command(logs: LogSource, target_path: str | None, dest: Path, out: GatheredLogs) -> None:
    """The log command's stdout into logs/target.log (stderr beside it); a failure is a note."""
    assert logs.command is not None
    copy = dest / COMMAND_LOG
    shown = " ".join(logs.command)
    try:
        with open(copy, "wb") as fh:
            proc = subprocess.run(logs.command, stdout=fh, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  timeout=logs.command_timeout_seconds, cwd=logs.resolved_cwd(target_path))
    except subprocess.TimeoutExpired:
        out.notes.append(f"log command `{shown}` did not finish in {logs.command_timeout_seconds:g}s; "
                         "its output so far was used")
    except OSError as exc:
        out.notes.append(f"log command `{shown}` could not run: {exc}")
        return
    else:
        if proc.stderr:
            (dest / "target.stderr.log").write_bytes(proc.stderr)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            out.notes.append(f"log command `{shown}` exited {proc.returncode}: {tail[0]}")
    if copy.stat().st_size:
        out.files.setdefault("", []).append(copy)
    else:
        out.notes.append(f"log command `{shown}` printed nothing")


def gather_logs(logs: LogSource, target_path: str | None, run_dir: Path) -> GatheredLogs:
    """Copy the log files and run the log command into run_dir/logs/."""
    dest = RunFolder(run_dir).logs_dir
    dest.mkdir(parents=True, exist_ok=True)
    out = GatheredLogs()
    _copy_files(logs, dest, out)
    _keep_files(logs, dest, out)
    if logs.command:
        _run_command(logs, target_path, dest, out)
    return out
