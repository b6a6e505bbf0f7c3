"""Every way a drill can end heals what it did — and where a heal fails, the verdict says what is left.

The drill cuts journal's sidecar link (`down`), pauses Redis (`pause`) and kills report
(`kill`, started again when the fault ends), then is stopped at several phases, as a user
runs it (`python -m kugeldrill run`, a subprocess):

* on a target (a stand-in started by `kugeldrill stack up` and drilled through its target
  file, so what an interrupted drill leaves behind is there to inspect: a target is never
  torn down): SIGINT, SIGTERM and SIGKILL while both faults are active, SIGTERM before any
  fault (provisioning), SIGINT after the heal (quiescence) — every proxy enabled without a
  toxic, every process running and none stopped, no lease left active;
* on the embedded stand-in: SIGTERM while both faults are active — healed, nothing unhealed;
* a heal made to fail on purpose: the cut link's port taken while the proxy is down (so
  Toxiproxy cannot listen on it again) and, on the target, Redis' resume and start commands
  failing — the drill exits interrupted and verdict.json, report.html and junit.xml name the
  disabled proxy and the paused Redis; `kugeldrill heal` then puts everything back.

About 8 drills of 20–60 s each on a 2-core machine, one after another.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import psutil
import pytest
import yaml

from kugeldrill.chaos.heal import verify_healed
from kugeldrill.chaos.lease import ACTIVE, leases_beside, read_lease
from kugeldrill.stack.launch.control import RecordedProcesses
from kugeldrill.stack.launch.process import wait_for

ROOT = Path(__file__).resolve().parents[2]
DRILL_TIMEOUT = 300
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = """\
name: {name}
description: journal's sidecar link cut, Redis paused and report killed, then the drill is stopped
{target}load:
  users: {{CartUser: 1, TerminalUser: 1, OpenCloseUser: 1}}
  spawn_rate: 3
  duration: {duration}s
faults:
  - {{id: cut, at: 1, for: {length}, link: sidecar@journal, kind: down}}
  - {{id: freeze, at: 1, for: {length}, process: redis, kind: pause}}
  - {{id: crash, at: 1, for: {length}, process: app@report, kind: kill}}
expect:
  convergence: {{max_seconds: 5}}
"""
LONG = {"duration": 90, "length": 80}  # the signal arrives while both faults are active
SHORT = {"duration": 14, "length": 3}  # healed at 4 s: the signal arrives after the heal
FAILING = ["sh", "-c", "echo refused on purpose >&2; exit 1"]


class Drill:
    """`kugeldrill run` in a subprocess, its output read as it comes (phases are console lines)."""

    def __init__(self, scenario: Path, out: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        self.out = out
        self.name = yaml.safe_load(scenario.read_text())["name"]
        self.proc = subprocess.Popen([sys.executable, "-m", "kugeldrill", "run", str(scenario), "--out", str(out),
                                      "--plain"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def in_phase(self, phase: str) -> bool:
        return any(line == f"[{self.name}] {phase}" for line in self.lines)

    def faults_active(self) -> bool:
        try:
            doc = json.loads((self.out / "timeline.json").read_text())
        except (OSError, ValueError):
            return False
        return sum(f["status"] == "active" for f in doc["faults"]) == 3

    def signal_when(self, ready, sig: int, deadline: float = 240.0, settle: float = 0.5) -> int:
        """Send `sig` `settle` seconds after `ready()` holds; the exit code."""
        if not wait_for(lambda: self.proc.poll() is None and ready(), deadline, interval=0.2):
            self.proc.kill()
            pytest.fail(f"the drill never got there:\n{self.output()}")
        time.sleep(settle)
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=DRILL_TIMEOUT)
        self._reader.join(10)
        return code

    def verdict(self) -> dict:
        return json.loads((self.out / "verdict.json").read_text())

    def kill_leftover_load(self) -> None:
        """Locust keeps running when its drill was SIGKILLed (nobody stopped it): end it here."""
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if str(self.out) in cmd and "locust" in cmd and p.pid != os.getpid():
                    p.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass


def write_scenario(folder: Path, name: str, target: Path | None, timing: dict[str, int]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, target=f"target: {target}\n" if target else "", **timing))
    return path


def kugeldrill(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def leftovers(state_dir: Path) -> list[str]:
    """What is not healed on a stand-in: its processes and its links (empty: nothing)."""
    ctl = RecordedProcesses.from_state_file(state_dir)
    api = json.loads((state_dir / "stack.json").read_text())["toxiproxy"]["api"]
    return ctl.problems(ctl.targets()) + verify_healed(api)


def active_leases(run_dir: Path) -> list[Path]:
    return [p for p in leases_beside(run_dir / "timeline.json") if (read_lease(p) or {}).get("state") == ACTIVE]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A stand-in from `kugeldrill stack up` and its target file (process commands included)."""
    base = tmp_path_factory.mktemp("exits")
    state_dir = base / "st"
    up = kugeldrill("stack", "up", "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        target = base / "target.yaml"
        derived = kugeldrill("target", "from-stack", "--state-dir", str(state_dir), "--target-file", str(target),
                             timeout=60)
        assert derived.returncode == 0, derived.stdout + derived.stderr
        yield target, state_dir
    finally:
        down = kugeldrill("stack", "down", "--state-dir", str(state_dir), timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


CASES = [("load", signal.SIGINT, LONG), ("load", signal.SIGTERM, LONG), ("load", signal.SIGKILL, LONG),
         ("provision", signal.SIGTERM, LONG), ("quiescence", signal.SIGINT, SHORT)]


@pytest.mark.parametrize("phase,sig,timing", CASES, ids=[f"{p}-{s.name}" for p, s, _ in CASES])
def test_a_stopped_drill_leaves_nothing_on_a_target(deployment, phase: str, sig: int, timing: dict[str, int]) -> None:
    target, state_dir = deployment
    assert leftovers(state_dir) == []
    name = f"exit-{phase}-{sig.name.lower()}"
    drill = Drill(write_scenario(target.parent, name, target, timing), target.parent / name)
    ready = drill.faults_active if phase == "load" else (lambda: drill.in_phase(phase))
    try:  # (a phase other than the load is caught as it begins: provisioning may be over in a second)
        code = drill.signal_when(ready, sig, settle=0.5 if phase == "load" else 0.0)
    finally:
        if sig == signal.SIGKILL:
            drill.kill_leftover_load()
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert wait_for(lambda: leftovers(state_dir) == [], 90), leftovers(state_dir)  # the watchdog's work
        assert wait_for(lambda: not active_leases(drill.out), 30)
        return
    assert code == 130, drill.output()
    assert leftovers(state_dir) == []  # healed by the drill itself before it exited
    verdict = drill.verdict()
    assert verdict["status"] == "interrupted" and sig.name in verdict["error"] and phase in verdict["error"]
    assert verdict["unhealed"] == [] and not active_leases(drill.out)
    if phase == "provision":  # stopped before its faults were planned against the system
        assert not (drill.out / "timeline.json").exists()
        return
    faults = json.loads((drill.out / "timeline.json").read_text())["faults"]
    shown = json.dumps(faults, indent=1)[:6000]
    assert {f["status"] for f in faults} == {"healed"}, shown
    if phase == "load":  # (after the heal phase: healed on schedule, or by the heal phase when a slow
        assert all(f["stopped_early"] for f in faults), shown  # process command held the schedule up)


def test_a_failed_heal_on_a_target_is_named_in_the_verdict(deployment) -> None:
    """Redis' resume and start commands fail and the cut link's port is taken: the drill says so."""
    target, state_dir = deployment
    broken = yaml.safe_load(target.read_text())
    redis = broken["processes"]["targets"].setdefault("redis", {}) or {}
    redis["commands"] = {"resume": FAILING, "start": FAILING}
    broken["processes"]["targets"]["redis"] = redis
    broken_target = target.parent / "target-broken-heal.yaml"
    broken_target.write_text(yaml.safe_dump(broken))
    drill = Drill(write_scenario(target.parent, "exit-heal-fails", broken_target, LONG),
                  target.parent / "exit-heal-fails")
    holder = PortHolder(json.loads((state_dir / "stack.json").read_text())["links"]["sidecar@journal"]["listen"])
    try:
        code = drill.signal_when(lambda: drill.faults_active() and holder.take(), signal.SIGINT)
    finally:
        holder.release()
    assert code == 130, drill.output()
    _assert_named(drill, {"proxy kugeldrill.sidecar@journal disabled",
                          "process redis is not running (or paused) according to its 'running' command"})
    assert active_leases(drill.out)  # the watchdog keeps trying what the drill could not heal
    stop_watchdogs(drill.out)  # (its resume command fails too: it would try for two minutes)
    healed = kugeldrill("heal", "--state", str(state_dir / "stack.json"))
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert leftovers(state_dir) == []


def test_a_stopped_drill_on_the_stand_in_is_healed(tmp_path: Path) -> None:
    drill = Drill(write_scenario(tmp_path, "exit-standin", None, LONG), tmp_path / "run")
    assert drill.signal_when(drill.faults_active, signal.SIGTERM) == 130, drill.output()
    verdict = drill.verdict()
    assert verdict["status"] == "interrupted" and verdict["unhealed"] == []
    assert {f["status"] for f in verdict["faults"]} == {"healed"} and not active_leases(drill.out)
    _assert_stack_gone(drill.out)


def test_a_failed_heal_on_the_stand_in_is_named_in_the_verdict(tmp_path: Path) -> None:
    """The cut link's port taken while the proxy is down: re-enabling it fails, the verdict says so."""
    drill = Drill(write_scenario(tmp_path, "exit-standin-heal-fails", None, LONG), tmp_path / "run")
    holder: PortHolder | None = None

    def faults_active_and_port_taken() -> bool:
        nonlocal holder
        if not drill.faults_active():
            return False
        links = json.loads((drill.out / "stack" / "stack.json").read_text())["links"]
        holder = holder or PortHolder(links["sidecar@journal"]["listen"])
        return holder.take()

    try:
        code = drill.signal_when(faults_active_and_port_taken, signal.SIGINT)
    finally:
        if holder is not None:
            holder.release()
    assert code == 130, drill.output()
    _assert_named(drill, {"proxy kugeldrill.sidecar@journal disabled"})
    _assert_stack_gone(drill.out)
    assert not active_leases(drill.out)  # the stand-in is gone: its watchdog has nothing left to guard


def stop_watchdogs(run_dir: Path) -> None:
    """The watchdogs this test's drills started for `run_dir` (found by their lease's path)."""
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "kugeldrill.chaos.watchdog" in cmd and str(run_dir) in cmd:
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def _assert_named(drill: Drill, left: set[str]) -> None:
    """What is left is in verdict.json, report.html, junit.xml and the console's last lines."""
    verdict = drill.verdict()
    assert verdict["status"] == "interrupted", verdict["error"]
    assert left <= set(verdict["unhealed"]), verdict["unhealed"]
    html = unescape((drill.out / "report.html").read_text())
    junit = unescape((drill.out / "junit.xml").read_text())
    assert "Not healed" in html and 'name="drill.healed"' in junit
    for item in left:
        assert item in html and item in junit
    timeline = json.loads((drill.out / "timeline.json").read_text())
    assert left <= set(timeline["unhealed"])


def _assert_stack_gone(run_dir: Path) -> None:
    """The stand-in's processes were stopped (a leftover paused Redis would hold its port)."""
    state = json.loads((run_dir / "stack.json").read_text())
    pids = [e.get("pid") for group in ("services", "sidecars") for e in state.get(group, {}).values()]
    pids += [(state.get(part) or {}).get("pid") for part in ("redis", "toxiproxy")]
    assert wait_for(lambda: not [p for p in pids if p and psutil.pid_exists(p) and
                                 psutil.Process(p).status() != psutil.STATUS_ZOMBIE], 30), pids


class PortHolder:
    """Listens on a link's port while its proxy is down, so Toxiproxy cannot bind it again."""

    def __init__(self, listen: str) -> None:
        host, port = listen.rsplit(":", 1)
        self.address = (host, int(port))
        self.sock: socket.socket | None = None

    def take(self) -> bool:
        if self.sock is not None:
            return True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(self.address)
            sock.listen(1)
        except OSError:
            sock.close()
            return False  # the proxy still listens: not down yet
        self.sock = sock
        return True

    def release(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
