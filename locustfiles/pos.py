"""Entry locustfile: `locust -f locustfiles/pos.py` drives a Kugelpos (or the stand-in).

Reads credentials from KUGELDRILL_PROVISION (provision.json) or KUGELDRILL_PROVISION_JSON,
the load settings from KUGELDRILL_LOAD_CONFIG / KUGELDRILL_<FIELD>, and writes the
operation history to KUGELDRILL_HISTORY_DIR (one shard per Locust worker) when set. A
Locust worker (`--worker`, or forked by `--processes`) takes all of that from its master
instead (kugeldrill.locustfiles.nodes). See locustfiles/README.md. Missing or bad settings
end the process with one clear line.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from locust import between, events

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.locustfiles.command import default_master_binding
from kugeldrill.locustfiles.nodes import attach, is_worker_command
from kugeldrill.locustfiles.runtime import Runtime, Settings, get_runtime, set_runtime

# Before Locust parses its options: a --processes master on loopback and a private port.
os.environ.update(default_master_binding(sys.argv, os.environ))

if is_worker_command(sys.argv, os.environ):
    _RT = Runtime(None)  # settings come from the master once connected
    set_runtime(_RT)
else:
    try:
        _RT = get_runtime()
    except DrillError as _err:
        print(f"kugeldrill: error: {_err.render()}", file=sys.stderr)
        raise SystemExit(2) from None

from kugeldrill.locustfiles.base import PosUser  # noqa: E402
from kugeldrill.locustfiles.cart import CartUser  # noqa: E402
from kugeldrill.locustfiles.openclose import OpenCloseUser  # noqa: E402
from kugeldrill.locustfiles.terminal import TerminalUser  # noqa: E402


def _configure(settings: Settings, drop_unused: bool = True) -> None:
    """Apply the load config to the user classes (weights, think times, timeouts, host).

    A worker configures its classes when its master's setup arrives (`drop_unused=False`:
    Locust has collected them by then, and the master only dispatches classes it runs)."""
    cfg = settings.config
    PosUser.connection_timeout = cfg.connect_timeout
    PosUser.network_timeout = cfg.network_timeout
    for cls, weight, wait in ((CartUser, cfg.cart_weight, cfg.cart_wait),
                              (TerminalUser, cfg.terminal_weight, cfg.terminal_wait),
                              (OpenCloseUser, cfg.openclose_weight, cfg.openclose_wait)):
        cls.weight = weight
        cls.wait_time = between(*wait)
        # Default host so --host is optional; requests use provision.json's service URLs.
        cls.host = settings.urls.get("cart")
    if not drop_unused:
        return
    # A class with weight 0 is not run at all (Locust would still spawn it otherwise).
    module = sys.modules[__name__]
    for cls in (CartUser, TerminalUser, OpenCloseUser):
        if cls.weight == 0:
            delattr(module, cls.__name__)


if _RT.settings is not None:
    _configure(_RT.settings)


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    """Take this process's role (single, master or worker: nodes.attach), then check --host
    like every other address: loopback unless the allowed hosts list it."""
    attach(_RT, environment, on_settings=lambda settings: _configure(settings, drop_unused=False))
    if environment.host and _RT.settings is not None:
        try:
            require_loopback(environment.host, allow_hosts=_RT.settings.allow_hosts, what="--host")
        except DrillError as err:
            print(f"kugeldrill: error: {err.render()}", file=sys.stderr)
            raise SystemExit(2) from None


@events.quit.add_listener
def _on_quit(**_kw: Any) -> None:
    _RT.close()
