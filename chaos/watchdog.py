"""The watchdog: heals a drill's faults when the process that applied them dies.

Signal handlers cannot run on SIGKILL, an OOM kill or a segfault, so a timeline spawns
this small process (own session, so a terminal's Ctrl-C does not reach it). It watches
its parent and a lease file written by the timeline:

    {"version": 2, "api": "http://127.0.0.1:8474", "allow_hosts": [],
     "parent_pid": 123, "proxies": ["kugeldrill.redis@cart"], "state": "active",
     "processes": {"crash": {"target": "app@journal", "need": "start", "do": "spawn", ...}}}

`processes` holds one self-contained entry per process fault that is active right now
(written before its first action, dropped after its heal; see chaos.procheal): a paused
Redis left behind would freeze everything, a killed subscriber would never come back.

* lease `state` becomes "done" (the timeline healed and finished) or the lease file is
  removed → exit without touching anything;
* the parent is gone (our parent pid changed: we were re-parented) while the lease is
  "active" → the one heal path (`chaos.heal.heal`) over what the lease names: its proxies
  and every process entry (continue / start again), retried until healed or `--give-up`
  seconds pass, then exit.

Run: `python -m chaos.watchdog --lease FILE [--parent PID] [--interval 0.2]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kugeldrill.chaos.lease import ACTIVE, lease_parts, read_lease, write_lease

# chaos.heal (httpx) is imported only when healing: the watchdog starts beside a timeline
# whose first fault may be due at once, so its start-up must cost next to no CPU.


def parent_gone(parent_pid: int, is_our_parent: bool = True) -> bool:
    """True once the watched process died: we were re-parented, or the pid is gone/zombie.

    Re-parenting is the fastest and pid-reuse-proof signal, but only means something when
    the watched pid really was our parent (it is when spawned by a timeline).
    """
    if is_our_parent and os.getppid() != parent_pid:
        return True
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{parent_pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} kugeldrill watchdog[{os.getpid()}]: {msg}", flush=True)


def watch(lease_path: Path, parent_pid: int, interval: float = 0.2, give_up: float = 120.0) -> int:
    """Block until the lease is released (exit 0) or the parent dies (heal, exit 0/1)."""
    is_our_parent = os.getppid() == parent_pid
    while True:
        lease = read_lease(lease_path)
        if lease is None or lease.get("state") != ACTIVE:
            _log("lease released; nothing to heal")
            return 0
        if parent_gone(parent_pid, is_our_parent):
            break
        time.sleep(interval)
    # Re-read: the timeline rewrites the lease as process faults start and heal.
    lease = read_lease(lease_path) or lease
    if lease.get("state") != ACTIVE:
        return 0
    what = list(lease.get("proxies") or []) + [e.get("target", "?") for e in (lease.get("processes") or {}).values()]
    _log(f"parent {parent_pid} is gone; healing {', '.join(what) or 'nothing'}")

    from kugeldrill.chaos.heal import heal

    deadline = time.monotonic() + give_up
    while True:
        report = heal(lease_parts(lease))
        for line in report.done:
            _log(line)
        _log(f"heal finished: {report.summary()}")
        if report.ok:
            lease["state"] = "healed_by_watchdog"
            write_lease(lease_path, lease)
            return 0
        if time.monotonic() > deadline:
            _log("giving up; run 'kugeldrill heal' by hand")
            return 1
        time.sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.watchdog", description=__doc__.splitlines()[0])
    parser.add_argument("--lease", required=True, type=Path)
    parser.add_argument("--parent", type=int, default=None, help="pid to watch (default: our parent)")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--give-up", type=float, default=120.0)
    args = parser.parse_args(argv)
    parent = args.parent if args.parent is not None else os.getppid()
    return watch(args.lease, parent, args.interval, args.give_up)


if __name__ == "__main__":
    sys.exit(main())
