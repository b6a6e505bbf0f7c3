"""The watchdog process: exits untouched when the lease is released, and only heals when the
watched parent is really gone (here: a short-lived parent process we control)."""

from __future__ import annotations

import subprocess
import sys
import time

from kugeldrill.chaos import lease as leases
from kugeldrill.chaos import watchdog


def test_parent_gone_detection():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert watchdog.parent_gone(child.pid, is_our_parent=False) is False
        child.kill()
        time.sleep(0.1)  # a zombie until reaped: still counts as gone
        assert watchdog.parent_gone(child.pid, is_our_parent=False) is True
    finally:
        child.kill()
        child.wait()
    assert watchdog.parent_gone(child.pid, is_our_parent=False) is True


def test_released_lease_means_exit_without_healing(tmp_path):
    lease = tmp_path / "lease.json"
    data = leases.make_lease("http://127.0.0.1:9", ["kugeldrill.redis@cart"])
    leases.write_lease(lease, data)
    log = tmp_path / "wd.log"
    proc = leases.spawn_watchdog(lease, log, interval=0.05)
    time.sleep(0.3)
    assert proc.poll() is None  # parent (us) alive, lease active: keeps watching
    data["state"] = "done"
    leases.write_lease(lease, data)
    assert proc.wait(timeout=10) == 0
    assert "lease released; nothing to heal" in log.read_text()


def test_explicit_parent_that_is_not_ours_is_not_mistaken_for_dead(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    lease = tmp_path / "lease.json"
    leases.write_lease(lease, leases.make_lease("http://127.0.0.1:9", []))
    proc = subprocess.Popen([sys.executable, "-m", "kugeldrill.chaos.watchdog", "--lease", str(lease), "--parent",
                             str(sleeper.pid), "--interval", "0.05", "--give-up", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        assert proc.poll() is None  # watched pid alive although it is not the watchdog's parent
        sleeper.kill()
        sleeper.wait()
        out = proc.communicate(timeout=15)[0].decode()
        assert "is gone; healing" in out
    finally:
        sleeper.kill()
        proc.kill()
