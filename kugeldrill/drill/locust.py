"""Locust as a subprocess: command line, environment, stop, and reading its CSV output.

Locust runs out of process (it gevent-patches whatever imports it) in its own session,
so a Ctrl-C at the terminal reaches the drill, which then stops Locust in order: SIGTERM
(Locust stops users and still writes its CSV and HTML), then SIGKILL to the whole
process group if it does not exit. Locust's own exit code is ignored (`--exit-code-on-error
0`): in a chaos run failures inside fault windows are expected, and the verdict is ours.

With `--processes N` or a master for workers on other hosts (`MasterBinding`), the Locust
master collects every worker's history into the run folder and writes a ledger of the
workers; `worker_notes` turns a lost worker into a line of the verdict.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError, DrillError, NotLoopbackError
from kugeldrill.ground.netguard import is_loopback_host
from kugeldrill.ground.numbers import number_or_none
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.collector import FINISH_MARGIN, ledger_notes, read_ledger
from kugeldrill.locustfiles.command import LOCUSTFILE, SHAPEFILE, MasterBinding
from kugeldrill.locustfiles.command import locust_command as command_for
from kugeldrill.locustfiles.loadconfig import config_for_users
from kugeldrill.reports.summary import LoadTotals, SeriesPoint
from kugeldrill.scenario_schema import LoadSpec

STARTUP_SECONDS = 60.0  # Locust's import and spawn until the first operation, on a busy machine


def load_config_for(load: LoadSpec) -> dict[str, Any]:
    """The locustfile's config for a scenario's load (locustfiles.loadconfig.config_for_users)."""
    return config_for_users(load.config, load.peak_users)


def _seconds(value: float) -> str:
    return f"{max(1, int(round(value)))}s"


@dataclass
class LocustRun:
    """A running Locust subprocess writing into a run folder."""

    proc: subprocess.Popen[bytes]
    run_dir: Path
    started_mono: float
    started_wall: float
    command: list[str]
    log_path: Path
    startup_seconds: float = STARTUP_SECONDS  # until the first operation; longer while workers join
    stop_grace: float = 15.0  # SIGTERM to SIGKILL; a master waits for its workers' last history first
    waiting_for: str = ""  # what the console says while a master waits for its workers

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM (Locust writes its reports), then SIGKILL the group; returns the exit code."""
        grace = self.stop_grace if grace is None else grace
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return self.proc.poll()
        code = self.wait(grace)
        if code is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            code = self.wait(5.0)
        return code

    def kill_group_leftovers(self) -> None:
        """Workers forked by --processes live in the same group; make sure none survive."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def locust_command(run_dir: Path, load: LoadSpec, *, provision_path: Path, processes: int,
                   host: str | None = None, master: MasterBinding | None = None) -> tuple[list[str], dict[str, str]]:
    """The Locust command line and the environment variables it needs (no side effects)."""
    run = RunFolder(run_dir)
    extra = ["--loglevel", "INFO", "--logfile", str(run.logs_dir / "locust.log")] + (["--host", host] if host else [])
    stages = [{"duration": s.duration, "users": sum(s.users.values()), "spawn_rate": s.spawn_rate}
              for s in load.stages] if load.stages else None
    cmd = command_for(run_dir, users=sum(load.peak_users.values()), spawn_rate=load.spawn_rate,
                      run_time=_seconds(load.total_seconds), processes=processes if processes > 1 else 0,
                      stop_timeout=load.stop_timeout, load_config=run.load_config_json, provision_file=provision_path,
                      stages=stages, master=master, extra_args=extra, extra_env={})
    env = {k: v for k, v in cmd.env.items() if k.startswith(("KUGELDRILL_", "PYTHON"))}
    return cmd.argv, env


def check_master(master: MasterBinding, allow_hosts: tuple[str, ...] = (), *, target: Path | None = None,
                 embedded: bool = False) -> None:
    """A master listens on loopback, or on an interface the drill's target file allows.

    A master on another interface takes connections from other hosts, and its workers send
    load from there: like every other address, that needs the user's explicit word, which is
    the target file's `allow_hosts` (`target`: that file, for the message; `embedded`: the
    stand-in, which is loopback only).
    """
    if master.expect_workers < 1:
        raise ConfigError(f"--expect-workers must be at least 1, got {master.expect_workers}")
    if is_loopback_host(master.bind) or master.bind.strip("[]").lower() in {h.lower() for h in allow_hosts}:
        return
    if embedded:
        where = "the embedded stand-in (no target file)"
        hint = ("the stand-in runs on loopback only: bind the master to 127.0.0.1 (workers on this machine), or "
                "drill a target file that lists the host under 'allow_hosts'")
    else:
        where = f"target file {target}" if target is not None else "the drill's target file"
        hint = f"list {master.bind!r} under 'allow_hosts' in {target or 'the target file'}, or keep the master on 127.0.0.1"
    raise NotLoopbackError(f"refusing --master-bind {master.bind!r}: the Locust master would listen on a non-loopback "
                           f"interface, and {where} does not allow host {master.bind!r}", hint=hint)


def start_locust(run_dir: Path, load: LoadSpec, *, provision_path: Path, processes: int,
                 host: str | None = None, master: MasterBinding | None = None,
                 allow_hosts: tuple[str, ...] = (), embedded: bool = False) -> LocustRun:
    """Launch Locust headless with the scenario's users, ramp and duration (or stages); with
    `master`, a Locust master that starts once its workers joined (the scenario's
    `load.processes` does not apply: the workers are wherever they were started)."""
    if not LOCUSTFILE.exists():
        raise DrillError(f"locustfile {LOCUSTFILE} is missing (the load part is not installed)")
    if master is not None:
        check_master(master, allow_hosts, embedded=embedded)
        processes = 0
    # Locust reads locust.conf and pyproject.toml's [tool.locust] from its working directory:
    # it runs in the run folder, so a user's own Locust settings never change a drill's load.
    run_dir = run_dir.resolve()
    run = RunFolder(run_dir)
    run.history_dir.mkdir(parents=True, exist_ok=True)
    run.logs_dir.mkdir(parents=True, exist_ok=True)
    run.load_config_json.write_text(json.dumps(load_config_for(load), indent=2), encoding="utf-8")
    cmd, extra = locust_command(run_dir, load, provision_path=provision_path, processes=processes, host=host,
                                master=master)
    if allow_hosts:  # the target file's: the locustfile (and every worker) checks URLs against it
        extra["KUGELDRILL_ALLOW_HOSTS"] = ",".join(allow_hosts)
    env = dict(os.environ)
    env.update(extra)
    out_path = run.logs_dir / "locust.out"
    out = open(out_path, "wb")
    try:
        proc = subprocess.Popen(cmd, cwd=str(run_dir), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        raise DrillError(f"cannot start Locust ({cmd[0]} -m locust): {exc}") from None
    finally:
        out.close()
    started = LocustRun(proc, run_dir, time.monotonic(), time.time(), cmd, out_path)
    if master is not None or processes > 1:
        started.stop_grace = max(started.stop_grace, load.stop_timeout + FINISH_MARGIN + 5.0)
    if master is not None:
        started.startup_seconds = master.wait_seconds + STARTUP_SECONDS
        started.waiting_for = (f"waiting up to {master.wait_seconds:g} s for {master.expect_workers} Locust worker(s): "
                               f"kugeldrill worker --master {master.bind}:{master.port}")
    return started


def worker_notes(run_dir: Path, t0_wall: float) -> list[str]:
    """The verdict's lines about Locust workers: each lost one by name (none for a single process)."""
    records = read_ledger(RunFolder(run_dir).load_workers_json)
    return [] if records is None else ledger_notes(records, t0_wall)


# ------------------------------------------------------------------ reading Locust's CSV


def _csv(run_dir: Path, kind: str) -> Path:
    prefix = RunFolder(run_dir).locust_prefix
    return prefix.with_name(f"{prefix.name}_{kind}.csv")


def stats_written(run_dir: Path) -> bool:
    """Locust wrote its final statistics (it ran to its end, or was stopped cleanly)."""
    return _csv(run_dir, "stats").exists()


def read_history(run_dir: Path, t0_wall: float) -> list[SeriesPoint]:
    """Aggregated rows of locust_stats_history.csv as chart series (t relative to t0)."""
    path = _csv(run_dir, "stats_history")
    if not path.exists():
        return []
    rows: list[SeriesPoint] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") != "Aggregated":
                    continue
                ts = number_or_none(row.get("Timestamp"))
                if ts is None:
                    continue
                rows.append(SeriesPoint(
                    t=round(ts - t0_wall, 3), rps=number_or_none(row.get("Requests/s")) or 0.0,
                    fails_s=number_or_none(row.get("Failures/s")) or 0.0, p50=number_or_none(row.get("50%")),
                    p95=number_or_none(row.get("95%")), p99=number_or_none(row.get("99%")), users=number_or_none(row.get("User Count")) or 0.0,
                    requests=number_or_none(row.get("Total Request Count")) or 0.0,
                    failures=number_or_none(row.get("Total Failure Count")) or 0.0))
    except (OSError, csv.Error):
        return rows
    return rows


def read_totals(run_dir: Path) -> tuple[LoadTotals | None, list[dict[str, str]]]:
    """(Aggregated totals, per-endpoint rows) from locust_stats.csv; (None, []) if absent."""
    path = _csv(run_dir, "stats")
    if not path.exists():
        return None, []
    totals: LoadTotals | None = None
    endpoints: list[dict[str, str]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                req = int(number_or_none(row.get("Request Count")) or 0)
                fail = int(number_or_none(row.get("Failure Count")) or 0)
                totals = LoadTotals(requests=req, failures=fail, error_rate=(fail / req) if req else 0.0,
                                    rps=number_or_none(row.get("Requests/s")), p50=number_or_none(row.get("50%")),
                                    p95=number_or_none(row.get("95%")), p99=number_or_none(row.get("99%")),
                                    max=number_or_none(row.get("Max Response Time")), avg=number_or_none(row.get("Average Response Time")))
            else:
                endpoints.append(dict(row))
    return totals, endpoints


def check_load_spec(load: LoadSpec) -> None:
    """Refuse what Locust cannot do here before starting anything."""
    if load.processes > 1 and sys.platform == "win32":
        raise ConfigError("load.processes > 1 needs fork (Linux/macOS)")
