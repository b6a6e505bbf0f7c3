"""The embedded stack's wiring: what runs for each app — its stand-in service's config and
command, and its sidecar's — and what each reaches through which link.

Pure description plus the files the processes read (service config JSON, rendered Dapr
components): nothing is started here (the launcher does that). The entries are the
stack.json records (contracts §2); each holds `cmd`, `env`, `log` and `match`, so a process
can be stopped or started again from the record alone.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError
from kugeldrill.ground.tools import PACKAGE_PARENT
from kugeldrill.stack.components import render_components
from kugeldrill.stack.embedded.options import StackOptions
from kugeldrill.stack.launch.failures import StackStartError
from kugeldrill.stack.launch.links import listen_port
from kugeldrill.stack.launch.plan import APPS, HOST, SIDECAR_APPS, SUBSCRIBERS, PortPlan, SidecarPorts
from kugeldrill.stack.launch.daprd import Daprd, SidecarSpec
from kugeldrill.stack.services.common.settings import ServiceConfig


def child_env_overrides() -> dict[str, str]:
    """What the stand-in services, the sidecars and the supervisor get on top of the launcher's
    environment; recorded per process in stack.json (`env`, with daprd's own additions), so a
    restart from the file runs them the same way."""
    # Children must import this same copy of kugeldrill even when started from another directory.
    root = str(PACKAGE_PARENT)
    return {"PYTHONUNBUFFERED": "1",
            "PYTHONPATH": root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}


def service_entries(opts: StackOptions, state_dir: Path, plan: PortPlan,
                    links: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One record per service; writes each service's config file."""
    base = opts.service_cmd or [opts.python, "-m", "kugeldrill.stack.services"]
    service_urls = {app: f"http://{HOST}:{port}" for app, port in plan.services.items()}
    entries: dict[str, dict[str, Any]] = {}
    logs_dir, events_dir = opts.output_dirs(state_dir)
    for app in APPS:
        log = logs_dir / f"{app}.log"
        events = events_dir / f"{app}.jsonl"
        data_dir = state_dir / "data" / app
        data_dir.mkdir(parents=True, exist_ok=True)
        events.parent.mkdir(parents=True, exist_ok=True)
        config = ServiceConfig(
            name=app,
            port=plan.services[app],
            data_dir=str(data_dir),
            host=HOST,
            log_file=str(log),
            events_file=str(events),
            dapr_url=f"http://{links[f'sidecar@{app}']['listen']}/v1.0" if app in SIDECAR_APPS else None,
            service_urls=dict(service_urls),
            breaker=opts.breaker(),
            dapr_timeout_seconds=opts.dapr_timeout_seconds,
            dapr_max_attempts=opts.dapr_max_attempts,
            republish_interval_seconds=opts.republish_interval_seconds,
            republish_min_age_seconds=opts.min_age(),
            defects=list(opts.defects),
            crash_before_effect_every=opts.crash_before_effect_every if app in SUBSCRIBERS else 0,
            fail_effect_every=opts.fail_effect_every if app in SUBSCRIBERS else 0,
        )
        config_path = state_dir / "config" / f"{app}.json"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(config.to_json())
        entries[app] = {
            "url": service_urls[app], "port": plan.services[app], "pid": None, "log": str(log),
            "events": str(events), "config": str(config_path), "data_dir": str(data_dir),
            "cmd": [*base, "--config", str(config_path)], "match": [str(config_path)],
            "env": child_env_overrides(),
        }
    return entries


def render_sidecar_resources(opts: StackOptions, daprd: Daprd, state_dir: Path,
                             links: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Each sidecar app's Dapr components, rendered into `components/<app>/`."""
    render = opts.render_components or render_components
    folders: dict[str, Path] = {}
    for app in SIDECAR_APPS:
        resources = state_dir / "components" / app
        resources.mkdir(parents=True, exist_ok=True)
        try:
            call_renderer(render, resources, redis_host=links[f"redis@{app}"]["listen"], app_id=app,
                          ack_model=daprd.ack_model, defects=opts.component_defects(),
                          resiliency=opts.resiliency)
        except DrillError as exc:
            raise StackStartError(f"stack start failed at components for {app}: {exc.render()}") from exc
        except Exception as exc:  # noqa: BLE001 - a renderer bug must still name the part
            raise StackStartError(f"stack start failed at components for {app}: {type(exc).__name__}: {exc}") from exc
        folders[app] = resources
    return folders


def sidecar_entry(daprd: Daprd, app: str, ports: SidecarPorts, resources: Path, state_dir: Path,
                  links: dict[str, dict[str, Any]], logs_dir: Path | None = None) -> dict[str, Any]:
    """The record of `app`'s sidecar: daprd's command line for these ports, its app channel the
    `app@<app>` link (log in `logs_dir`, default `<state_dir>/logs`)."""
    logs_dir = logs_dir if logs_dir is not None else state_dir / "logs"
    spec = SidecarSpec(
        app_id=app, ports=ports, app_address=HOST, app_port=listen_port(links[f"app@{app}"]),
        resources_dir=resources, log_file=logs_dir / f"sidecar-{app}.log", config_dir=state_dir / "config",
    )
    record = daprd.process(spec).record()
    record["env"] = {**child_env_overrides(), **record["env"]}  # a restart from the record needs both
    return {**record, "log": str(spec.log_file), "resources": str(resources)}


def call_renderer(render: Callable[..., Any], dest: Path, **kwargs: Any) -> Any:
    """Pass only the keyword arguments the renderer declares (it may grow or shrink)."""
    params = inspect.signature(render).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return render(dest, **kwargs)
