"""Drills with process faults, run as the user runs them (`python -m kugeldrill run`, a subprocess).

* the library scenarios subscriber-crash, redis-restart and sidecar-pause pass on the
  healthy stand-in; redis-restart (no persistence) shows in verdict.json and report.html
  what the restart lost (markers, stream entries, pending entries, consumer groups) and
  that the system came back (groups re-created, every event applied, outbox republishes);
* a drill on the embedded stand-in SIGKILLed while a `pause` (Redis) and a `kill` (journal)
  are active: the watchdog continues and restarts the stand-in's processes from the lease
  alone. (Drills stopped at other phases and by other signals, on a target and on the
  stand-in, are in test_heal_every_exit.py.)

About 4 drills; each takes 30–90 s on a 2-core machine (they run one after another: two
stand-ins side by side starve each other).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kugeldrill.stack.launch.control import RecordedProcesses
from kugeldrill.stack.launch.process import wait_for

ROOT = Path(__file__).resolve().parents[2]
DRILL_TIMEOUT = 300
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def kugeldrill(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PATH=f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.Popen([sys.executable, "-m", "kugeldrill", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_drill(scenario: str | Path, out: Path) -> tuple[int, str]:
    proc = kugeldrill("run", str(scenario), "--out", str(out), "--plain")
    stdout, _ = proc.communicate(timeout=DRILL_TIMEOUT)
    return proc.returncode, stdout[-4000:]


def verdict(out: Path) -> dict:
    return json.loads((out / "verdict.json").read_text())


def failed(v: dict) -> list[str]:
    return [f"{e['name']}: {e['observed']}" for e in v["expectations"] if e["passed"] is not True]


@pytest.mark.parametrize("name", ["subscriber-crash", "sidecar-pause"])
def test_library_scenario_passes_on_the_healthy_stand_in(name: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, tail = run_drill(name, out)
    v = verdict(out)
    assert code == 0, f"{failed(v)}\n{tail}"
    faults = [f for f in v["faults"] if f["process"]]
    assert faults and all(f["status"] == "healed" and f["end"] is not None for f in faults)
    if name == "subscriber-crash":
        kills = [a for f in faults for a in f["events"] if a["action"] == "kill"]
        assert {f["process"] for f in faults} == {"app@report", "app@journal", "app@stock"} and len(kills) >= 6
    else:
        (pause,) = faults
        assert [a["action"] for a in pause["events"]] == ["pause", "resume"]
        assert pause["events"][0]["pids_before"] == pause["events"][1]["pids_after"]


def test_redis_restart_without_persistence_shows_losses_and_recovery(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, tail = run_drill("redis-restart", out)
    v = verdict(out)
    assert code == 0, f"{failed(v)}\n{tail}"
    (report,) = v["process_faults"]
    redis = report["redis"]
    before, after, end, lost = redis["before"], redis["after_restart"], redis["end"], redis["lost"]
    # Lost: every marker, stream entry, pending entry and group that existed before the restart.
    assert before["markers_total"] > 0 and before["stream_entries_total"] > 0 and before["groups_total"] == 7
    assert after["survived"] == {"markers_survived": 0, "stream_entries_survived": 0, "groups_survived": 0,
                                 "pending_survived": 0}
    assert lost == {k: before[k] for k in ("markers_total", "stream_entries_total", "groups_total", "pending_total")}
    # Recovered within the drill: the groups are back (NOGROUP re-creation), new markers and
    # entries were written, every event reached every subscriber (fan-out checker passed).
    assert end["groups_total"] == 7 and end["markers_total"] > 0 and end["pending_total"] == 0
    rec = report["recovery"]
    assert rec["state_lost"] is True and rec["lost"] == 0 and rec["publish_failed_during"] > 0
    assert rec["republished_after"] > 0  # the outbox brought back what failed to publish
    fanout = next(c for c in v["checks"] if c["checker"] == "fanout")
    assert fanout["valid"] is True and fanout["counts"]["totals"].get("missing", 0) == 0
    html = (out / "report.html").read_text()
    assert '<div class="process-fault" data-process="redis" data-kind="restart">' in html
    row = re.search(r'<tr data-row="markers_total">(.*?)</tr>', html).group(1)
    assert f'data-col="lost">{lost["markers_total"]}<' in row and f'data-col="before">{before["markers_total"]}<' in row
    assert 'class="process-action" data-action="stop"' in html and 'data-process="redis"' in html


INTERRUPT = """\
name: interrupt-processes
description: Redis paused and journal killed, then the drill is interrupted
target: {target}
load:
  users: {{CartUser: 1, TerminalUser: 1, OpenCloseUser: 1}}
  spawn_rate: 3
  duration: 90s
faults:
  - {{id: freeze, at: 1, for: 80, process: redis, kind: pause}}
  - {{id: crash, at: 1, for: 80, process: app@journal, kind: kill}}
expect:
  convergence: {{max_seconds: 5}}
"""


def problems(state_dir: Path) -> list[str]:
    ctl = RecordedProcesses.from_state_file(state_dir)
    return ctl.problems(ctl.targets())


def interrupt_when_active(proc: subprocess.Popen, timeline: Path, sig: int, deadline: float = 150.0) -> str:
    """Send `sig` once both process faults are active; the drill's output."""
    def active() -> bool:
        doc = json.loads(timeline.read_text())
        return sum(f["status"] == "active" for f in doc["faults"]) == 2

    if not wait_for(lambda: proc.poll() is None and timeline.exists() and active(), deadline, interval=0.3):
        proc.kill()
        pytest.fail(f"the faults never became active:\n{proc.communicate(timeout=30)[0][-3000:]}")
    time.sleep(0.5)
    proc.send_signal(sig)
    return proc.communicate(timeout=DRILL_TIMEOUT)[0]


def kill_leftovers(folder: Path) -> None:
    """Locust keeps running when its drill was SIGKILLed (nobody stopped it): end it here."""
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if str(folder) in cmd and "locust" in cmd and p.pid != os.getpid():
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def test_sigkilled_embedded_drill_is_healed_by_the_watchdog(tmp_path: Path) -> None:
    scenario = tmp_path / "interrupt-embedded.yaml"
    scenario.write_text(INTERRUPT.replace("target: {target}\n", "").format())
    out = tmp_path / "run"
    proc = kugeldrill("run", str(scenario), "--out", str(out), "--plain")
    state_dir = out / "stack"
    try:
        interrupt_when_active(proc, out / "timeline.json", signal.SIGKILL, deadline=240)
        assert wait_for(lambda: problems(state_dir) == [], 90), problems(state_dir)
        log = out / "watchdog.log"  # written once the heal is done: a moment after the processes are back
        assert wait_for(lambda: "heal finished" in log.read_text(), 30), log.read_text()
        assert "process redis: continued pid(s)" in log.read_text(), log.read_text()
        assert "process app@journal: started again" in log.read_text(), log.read_text()
    finally:
        kill_leftovers(out)
        down = kugeldrill("stack", "down", "--state-dir", str(state_dir))
        assert down.wait(timeout=120) == 0, down.stdout.read() if down.stdout else ""
