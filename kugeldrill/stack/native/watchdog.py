"""Stops a native Kugelpos when the command that started it for a suite dies without stopping it.

`kugeldrill kugelpos drill` stops the deployment on every exit path it can see (signals
included); a SIGKILL or an OOM kill it cannot. This small process (own session, so a
terminal's Ctrl-C does not reach it) watches its parent and the deployment's state file:

* the state file is gone (the command ran `down`) → exit, touching nothing;
* the parent is gone while the state file is still there → `down`, then exit.

Run: `python -m kugeldrill.stack.native.watchdog --parent PID --state-dir DIR [--interval 0.5]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kugeldrill.ground.pids import pid_running


def parent_alive(pid: int) -> bool:
    """False once re-parented (the parent is gone) or the parent is dead."""
    return os.getppid() == pid and pid_running(pid)


def watch(parent: int, state_dir: Path, interval: float) -> int:
    from kugeldrill.stack.native.launcher import STATE_NAME  # noqa: PLC0415 - start-up costs next to nothing

    state = state_dir / STATE_NAME
    while True:
        if not state.exists():
            return 0
        if not parent_alive(parent):
            break
        time.sleep(interval)
    from kugeldrill.stack.native.launcher import NativeKugelpos  # noqa: PLC0415

    print(f"{time.strftime('%H:%M:%S')} parent {parent} is gone; stopping the native Kugelpos in {state_dir}",
          flush=True)
    outcome = NativeKugelpos.from_state_file(state_dir).down()
    print(f"stopped: {outcome['stopped']}; problems {outcome['problems'] or 'none'}; "
          f"ports left {outcome['ports_left'] or 'none'}", flush=True)
    return 1 if outcome["problems"] or outcome["ports_left"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kugeldrill.stack.native.watchdog", description=__doc__)
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    args = ap.parse_args(argv)
    return watch(args.parent, args.state_dir, args.interval)


if __name__ == "__main__":
    sys.exit(main())
