"""The Locust command line a drill runner uses, built in one place.

The runner, the tests and the benchmark all start Locust the same way: a subprocess
(Locust monkey-patches whatever process imports it), headless, with the run folder's
provision.json, history folder and load config in the environment (contracts §8).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kugeldrill.ground.ports import free_port
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.ground.tools import PACKAGE_PARENT

LOCUSTFILE = Path(__file__).resolve().parent / "pos.py"
SHAPEFILE = LOCUSTFILE.with_name("shape.py")


@dataclass
class LocustRun:
    """argv + env for `subprocess.run/Popen(argv, env=env, cwd=run_dir)`."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MasterBinding:
    """A Locust master that workers on other hosts join (`kugeldrill worker --master HOST:PORT`).

    Locust's own defaults for the address (port 5557); the run starts once `expect_workers`
    are connected, and gives up after `wait_seconds` (Locust's --expect-workers-max-wait)
    rather than holding a drill's stack up forever."""

    bind: str = "127.0.0.1"
    port: int = 5557
    expect_workers: int = 1
    wait_seconds: float = 300.0

    def args(self) -> list[str]:
        return ["--master", "--master-bind-host", self.bind, "--master-bind-port", str(self.port),
                "--expect-workers", str(self.expect_workers), "--expect-workers-max-wait", f"{self.wait_seconds:g}"]


def locust_command(run_dir: str | Path, *, users: int = 0, spawn_rate: float | None = None, run_time: str = "60s",
                   processes: int = 0, stop_timeout: float = 15, load_config: str | Path | None = None,
                   provision_file: str | Path | None = None, csv: bool = True, html: bool = True,
                   master_port: int | None = None, stages: Sequence[Mapping[str, float]] | None = None,
                   master: MasterBinding | None = None,
                   extra_args: Sequence[str] = (), extra_env: Mapping[str, str] | None = None) -> LocustRun:
    """Headless Locust on locustfiles/pos.py writing into `run_dir` (contracts §7 layout).

    `--exit-code-on-error 0`: request failures inside fault windows are expected; the
    checkers own the verdict. `--stop-timeout` lets in-flight operations finish with a real
    outcome. `stages` ([{duration, users, spawn_rate}]) runs the staged shape (shape.py)
    instead of fixed users and a run time. `processes` > 0 adds `--processes N` (one history
    shard per worker) with the master bound to 127.0.0.1 on `master_port` (default: a free port);
    `master` instead waits for workers started elsewhere (`worker_command`). Either way the
    workers send their history to the master, which writes the shards.
    """
    run = RunFolder(Path(run_dir).resolve())
    files = f"{LOCUSTFILE},{SHAPEFILE}" if stages else str(LOCUSTFILE)
    argv = [sys.executable, "-m", "locust", "-f", files, "--headless",
            "--stop-timeout", f"{stop_timeout:g}", "--exit-code-on-error", "0", "--only-summary"]
    if not stages:
        argv += ["-u", str(users), "-r", f"{spawn_rate if spawn_rate is not None else users:g}", "-t", run_time]
    if csv:
        argv += ["--csv", str(run.locust_prefix)]
    if html:
        argv += ["--html", str(run.locust_html)]
    if processes:
        # Locust's master binds *:5557 by default: on a shared machine two drills collide, and it
        # would listen beyond loopback. Bind loopback on a free port; the forked workers follow it.
        port = master_port or free_port()
        argv += ["--processes", str(processes), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", str(port), "--master-host", "127.0.0.1", "--master-port", str(port)]
    elif master is not None:
        argv += master.args()
    argv += list(extra_args)
    env = {**os.environ,
           "KUGELDRILL_PROVISION": str(Path(provision_file).resolve() if provision_file else run.provision_json),
           "KUGELDRILL_HISTORY_DIR": str(run.history_dir),
           "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": _pythonpath()}
    if load_config is not None:
        env["KUGELDRILL_LOAD_CONFIG"] = str(Path(load_config).resolve())
    if stages:
        env["KUGELDRILL_STAGES"] = json.dumps(list(stages))
    env.update(extra_env or {})
    return LocustRun(argv, env)


def _pythonpath() -> str:
    """This kugeldrill first, so `-f .../locustfiles/pos.py` imports the kugeldrill it belongs to."""
    return os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")]))


def worker_command(master_host: str, master_port: int, *, processes: int = 0,
                   extra_args: Sequence[str] = ()) -> LocustRun:
    """A Locust worker (or `processes` of them) of the master at `master_host:master_port`.

    It needs no file of the run: provision data, load config and terminal leases come from
    the master, and its history goes there (kugeldrill.locustfiles.nodes)."""
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port)]
    if processes:
        argv += ["--processes", str(processes)]
    argv += list(extra_args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": _pythonpath()}
    # The master's run is the only source of settings: none of this machine's may leak in.
    for key in [k for k in env if k.startswith("KUGELDRILL_")]:
        del env[key]
    return LocustRun(argv, env)


def default_master_binding(argv: Sequence[str], environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """Environment defaults that keep a `--processes` master on loopback and a private port.

    Locust imports the locustfile before it parses the command line and reads
    `LOCUST_*` environment variables as option defaults, so setting them here protects any
    `locust -f locustfiles/pos.py --processes N` command line: without them the master binds
    `*:5557`, listens beyond loopback and collides with every other distributed run on the
    machine. Only for `--processes` (master and workers are one process tree, so a random port
    is consistent) and only when the user chose no binding or port of their own.
    """
    args = list(argv)
    chosen = ("--master-bind-host", "--master-bind-port", "--master-port", "--master-host", "--worker", "--master")
    if not any(a == "--processes" or a.startswith("--processes=") for a in args) and not environ.get("LOCUST_PROCESSES"):
        return {}
    if any(a.split("=", 1)[0] in chosen for a in args):
        return {}
    if any(environ.get(k) for k in ("LOCUST_MASTER_BIND_HOST", "LOCUST_MASTER_BIND_PORT", "LOCUST_MASTER_NODE_PORT",
                                    "LOCUST_MASTER_NODE_HOST", "LOCUST_MODE_WORKER", "LOCUST_MODE_MASTER")):
        return {}
    port = str(free_port())
    return {"LOCUST_MASTER_BIND_HOST": "127.0.0.1", "LOCUST_MASTER_BIND_PORT": port,
            "LOCUST_MASTER_NODE_HOST": "127.0.0.1", "LOCUST_MASTER_NODE_PORT": port}
