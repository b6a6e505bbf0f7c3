"""A running timeline (`python -m chaos run`, a real subprocess) is killed with SIGINT, SIGTERM
and SIGKILL; afterwards no toxic is left and every proxy is enabled — healed by the signal
handlers, by the watchdog, or by `kugeldrill heal`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kugeldrill.chaos.heal import verify_healed
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.stack.launch.process import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

TIMELINE = """
faults:
  - {id: cut,  at: 0, for: 120, link: redis@cart,    kind: down}
  - {id: slow, at: 0, for: 120, link: redis@journal, kind: latency, latency: 300, direction: both}
  - {id: hole, at: 0, for: 120, link: sidecar@cart,  kind: blackhole}
  - {id: late, at: 100, for: 5, link: redis@stock,   kind: down}
"""


@pytest.fixture
def stack(tmp_path, toxiproxy_server, redis_server):
    with ToxiproxyClient(toxiproxy_server.api) as client:
        up = f"127.0.0.1:{redis_server.port}"
        links = LinkMap([Link(n, "127.0.0.1:0", up)
                         for n in ("redis@cart", "redis@journal", "sidecar@cart", "redis@stock")]).ensure(client)
        state = tmp_path / "stack.json"
        state.write_text(json.dumps({"version": 1, "toxiproxy": {"api": toxiproxy_server.api},
                                     "links": links.to_state()}))
        (tmp_path / "faults.yaml").write_text(TIMELINE)
        yield tmp_path, client


def start_run(tmp: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kugeldrill.chaos", "run", "--state", str(tmp / "stack.json"), "--timeline",
         str(tmp / "faults.yaml"), "--out", str(tmp / "run" / "timeline.json"), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    return proc


def wait_active(tmp: Path, client: ToxiproxyClient, proc: subprocess.Popen) -> None:
    def active() -> bool:
        doc = json.loads((tmp / "run" / "timeline.json").read_text())
        return sum(f["status"] == "active" for f in doc["faults"]) == 3
    if not wait_for(active, 15):
        proc.kill()
        pytest.fail(f"faults never became active:\n{proc.communicate(timeout=5)[0].decode()}")
    assert sorted(verify_healed(client)) == [
        "proxy kugeldrill.redis@cart disabled",
        "toxic kugeldrill.hole.down on kugeldrill.sidecar@cart",
        "toxic kugeldrill.hole.up on kugeldrill.sidecar@cart",
        "toxic kugeldrill.slow.down on kugeldrill.redis@journal",
        "toxic kugeldrill.slow.up on kugeldrill.redis@journal",
    ]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_signal_heals_before_exit(stack, sig, code):
    tmp, client = stack
    proc = start_run(tmp)
    wait_active(tmp, client, proc)
    proc.send_signal(sig)
    out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == code, out
    assert verify_healed(client) == [], out  # healed at once, not later by the watchdog
    doc = json.loads((tmp / "run" / "timeline.json").read_text())
    assert doc["state"] == "stopped"
    by_id = {f["id"]: f for f in doc["faults"]}
    assert by_id["cut"]["status"] == "healed" and by_id["cut"]["stopped_early"]
    assert by_id["late"]["status"] == "skipped"
    assert not list((tmp / "run").glob(".chaos-lease-*"))  # lease released


def test_sigkill_healed_by_watchdog(stack):
    tmp, client = stack
    proc = start_run(tmp)
    wait_active(tmp, client, proc)
    proc.kill()
    proc.communicate(timeout=10)
    assert wait_for(lambda: verify_healed(client) == [], 15), verify_healed(client)
    doc = json.loads((tmp / "run" / "timeline.json").read_text())
    assert doc["state"] == "running"  # the crash kept what had happened
    assert sum(f["applied_mono"] is not None for f in doc["faults"]) == 3
    log_file = tmp / "run" / "watchdog.log"
    # The server is healed a moment before the watchdog logs what it did: wait for its line.
    assert wait_for(lambda: log_file.read_text().count("removed toxic") == 4
                    and "re-enabled proxy kugeldrill.redis@cart" in log_file.read_text(), 10), log_file.read_text()
    log = log_file.read_text()
    assert "is gone; healing" in log and "heal finished: 5 healed, nothing left" in log


def test_sigkill_without_watchdog_healed_by_kugeldrill_heal(stack):
    tmp, client = stack
    proc = start_run(tmp, "--no-watchdog")
    wait_active(tmp, client, proc)
    proc.kill()
    proc.communicate(timeout=10)
    time.sleep(0.5)
    assert len(verify_healed(client)) == 5  # nobody healed it
    heal = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--state", str(tmp / "stack.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert heal.stdout.count("removed toxic") == 4 and "re-enabled proxy kugeldrill.redis@cart" in heal.stdout
    assert verify_healed(client) == []
    again = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--state", str(tmp / "run" / "timeline.json")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "everything healed" in again.stdout and "removed" not in again.stdout  # repeatable


def test_heal_command_bad_input(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--state", str(tmp_path / "nope.json")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    remote = subprocess.run([sys.executable, "-m", "kugeldrill", "heal", "--toxiproxy", "http://192.0.2.1:8474"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert remote.returncode == 2 and "not loopback" in remote.stderr


CRASHING_SCRIPT = """
import json, sys
from kugeldrill.chaos.links import LinkMap
from kugeldrill.chaos.timeline import Timeline
state = json.load(open(sys.argv[1]))
tl = Timeline([{"at": 0, "for": 60, "link": "redis@cart", "kind": "down"}],
              LinkMap.from_state(state["links"]), state["toxiproxy"]["api"], watchdog=False)
tl.start()
assert tl.wait_applied(timeout=10)
print("applied", tl.faults[0].status, flush=True)
raise RuntimeError("the drill crashed without calling stop()")
"""


def test_uncaught_exception_without_stop_still_heals(stack):
    tmp, client = stack
    script = tmp / "crash.py"
    script.write_text(CRASHING_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(tmp / "stack.json")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "applied active" in run.stdout and "RuntimeError" in run.stderr
    assert verify_healed(client) == []  # healed at interpreter exit, no watchdog involved
