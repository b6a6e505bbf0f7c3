"""Make the worker processes of a multi-worker service die with their supervisor, as in its container.

Installed by kugeldrill into the Python environment it builds for a Kugelpos service (never
into the checkout), and imported at interpreter start by `kugeldrill_service_group.pth`.

Why: with `kugeldrill kugelpos up --workers prod` a service runs as `uvicorn --workers N`, a
supervisor and N worker processes spawned by multiprocessing that share its listening
socket. In Kugelpos' production containers the supervisor is PID 1: when it dies the kernel
kills every process of the container. Natively, a worker whose supervisor is killed
(SIGKILL after a stop timeout, or a process fault) would be re-parented and keep serving the
port, so `kugelpos down` could leave processes behind and a killed service would keep
answering. The launcher starts every service as the leader of its own session and sets
KUGELDRILL_DIE_WITH_SUPERVISOR=1 for multi-worker services; in a direct child of the session
leader this hook asks the kernel for SIGKILL when that parent dies (Linux
PR_SET_PDEATHSIG). Without the variable, in the supervisor itself, or off Linux, it does
nothing.
"""

from __future__ import annotations

import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9


def _die_with_supervisor() -> None:
    import ctypes  # noqa: PLC0415 - only where the hook applies

    session = os.getsid(0)
    if session == os.getpid():
        return  # the supervisor (or a one-process service) itself
    parent = os.getppid()
    if parent == 1:
        os._exit(1)  # the supervisor died before this worker got here
    if parent != session:
        return  # a grandchild of the supervisor: its own parent manages it
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != session:
        os._exit(1)  # the supervisor died between the two checks


if os.environ.get("KUGELDRILL_DIE_WITH_SUPERVISOR") == "1" and sys.platform.startswith("linux"):
    _die_with_supervisor()
