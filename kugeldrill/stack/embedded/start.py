"""The embedded stack's start-up sequence (contracts §2), one part after the other.

redis-server, toxiproxy-server and its proxies, then the seven stand-in services, then each
app's sidecar as soon as its service answers HTTP (a sidecar reads its app's
`/dapr/subscribe` once, at start), then the wait until everything is healthy, then the crash
supervisor when the crash knob is on. The launcher records every started part at once, so
a launcher that dies half-way leaves a state file `down` can clean up from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kugeldrill.stack.embedded.options import StackOptions
from kugeldrill.stack.embedded.wiring import child_env_overrides, render_sidecar_resources, service_entries, sidecar_entry
from kugeldrill.stack.launch.launcher import Launcher
from kugeldrill.stack.launch.plan import HOST, SUBSCRIBERS, PortPlan
from kugeldrill.stack.launch.daprd import Daprd


def start_parts(launcher: Launcher, opts: StackOptions, daprd: Daprd, state_dir: Path) -> None:
    """Start everything in order and wait for health; raises StackStartError naming the part."""
    plan = PortPlan.allocate(HOST)
    logs_dir, _ = opts.output_dirs(state_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    links = launcher.start_redis_and_toxiproxy(plan, state_dir, persistence=opts.redis_persistence)

    services = service_entries(opts, state_dir, plan, links)
    resources = render_sidecar_resources(opts, daprd, state_dir, links)
    for app, entry in services.items():
        launcher.spawn("services", app, entry)

    def sidecar(app: str) -> dict[str, Any]:
        return sidecar_entry(daprd, app, plan.sidecar_ports(app), resources[app], state_dir, links, logs_dir)

    launcher.start_behind_apps(list(resources), sidecar, opts.health_timeout)
    launcher.wait_healthy(opts.health_timeout)
    if opts.crash_before_effect_every > 0:
        apps = [a for a in SUBSCRIBERS if a in launcher.state["services"]]
        launcher.supervise(apps, detached=opts.supervisor == "process", python=opts.python,
                           log=logs_dir / "supervisor.log", env=child_env_overrides())
