"""The Compose overlay that inserts Toxiproxy into Kugelpos' docker-compose stack.

Kugelpos' apps reach their sidecar on a hard-coded localhost:3500, each sidecar shares
its app's network namespace, and all sidecars read one component folder pointing at
redis:6379. To cut one app's links without touching the others, the overlay:

* adds one `toxiproxy` service (API published on 127.0.0.1:8474 only) that holds every
  link, created at start from `kugeldrill/toxiproxy.json`;
* app -> sidecar: moves daprd to port 3501 (listening on all interfaces) and puts a small
  socat forwarder on localhost:3500 in the app's namespace, which sends to the
  `sidecar@<app>` proxy, whose upstream is `<app>:3501`;
* sidecar -> app: daprd's `-app-channel-address toxiproxy -app-port 180xx` sends
  deliveries through the `app@<app>` proxy, whose upstream is `<app>:8000`;
* sidecar -> Redis: each linked sidecar mounts its own copy of the components with
  `redisHost: toxiproxy:163xx`, the `redis@<app>` proxy in front of `redis:6379`.

The copies keep every other field as Kugelpos has it, so the drill exercises the real
configuration (run `kugeldrill audit` on it to see what Dapr makes of it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.target import (AuthSpec, BreakerSpec, LinkSpec, LogSource, ObserveSpec, ProcessesSpec,
                               ProcessTargetSpec, TargetFile, ToxiproxySpec, dump_target)

# Kugelpos' apps in compose order; the index fixes host ports (8000+i) and proxy ports.
APPS = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
LINKED_APPS = ("terminal", "cart", "report", "journal", "stock")  # the apps that use Dapr
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
SOCAT_IMAGE = "alpine/socat:1.8.0.0"
OVERLAY_FILE = "docker-compose.kugeldrill.yaml"
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.override.yaml", OVERLAY_FILE)


def sidecar_service(app: str) -> str:
    return "dapr_" + app.replace("-", "_")


def link_ports(app: str) -> dict[str, int]:
    i = APPS.index(app)
    return {"redis": 16300 + i, "sidecar": 13500 + i, "app": 18000 + i}


def link_map(apps: tuple[str, ...] = LINKED_APPS) -> dict[str, LinkSpec]:
    links: dict[str, LinkSpec] = {}
    for app in apps:
        ports = link_ports(app)
        links[f"redis@{app}"] = LinkSpec(listen=f"0.0.0.0:{ports['redis']}", upstream="redis:6379")
        links[f"sidecar@{app}"] = LinkSpec(listen=f"0.0.0.0:{ports['sidecar']}", upstream=f"{app}:3501")
        links[f"app@{app}"] = LinkSpec(listen=f"0.0.0.0:{ports['app']}", upstream=f"{app}:8000")
    return links


@dataclass
class OverlayBundle:
    """Files to write, relative to Kugelpos' services/ folder (beside docker-compose.yaml)."""

    files: dict[str, str] = field(default_factory=dict)

    def write(self, out_dir: Path) -> list[Path]:
        written = []
        for rel, text in sorted(self.files.items()):
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
        return written


def _overlay_compose(apps: tuple[str, ...], daprd_image: str | None) -> dict[str, Any]:
    services: dict[str, Any] = {
        "toxiproxy": {
            "image": TOXIPROXY_IMAGE,
            "command": ["-host=0.0.0.0", "-config=/kugeldrill/toxiproxy.json"],
            "volumes": ["./kugeldrill/toxiproxy.json:/kugeldrill/toxiproxy.json:ro"],
            "ports": ["127.0.0.1:8474:8474"],
            "depends_on": ["redis"],
            "networks": ["kugelpos_net"],
        }
    }
    for app in apps:
        ports = link_ports(app)
        sidecar: dict[str, Any] = {
            "command": [
                "./daprd", "-app-id", app,
                "-app-port", str(ports["app"]), "-app-channel-address", "toxiproxy",
                "-dapr-http-port", "3501", "-dapr-listen-addresses", "0.0.0.0",
                "-config", "/dapr/config.yaml", "-components-path", "/dapr/components",
            ],
            "volumes": [f"./kugeldrill/components/{app}:/dapr/components:ro"],
            "depends_on": [app, "toxiproxy"],
        }
        if daprd_image:
            sidecar["image"] = daprd_image
        services[sidecar_service(app)] = sidecar
        services[f"kd_fwd_{app.replace('-', '_')}"] = {
            "image": SOCAT_IMAGE,
            "command": ["TCP-LISTEN:3500,fork,reuseaddr", f"TCP:toxiproxy:{ports['sidecar']}"],
            "network_mode": f"service:{app}",
            "depends_on": [app, "toxiproxy"],
        }
    return {"services": services}


def _retarget_components(text: str, redis_host: str, source: Path) -> str:
    """The same component documents with every Redis component's redisHost replaced."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from err
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Component":
            continue
        spec = doc.get("spec") or {}
        if not str(spec.get("type", "")).endswith(".redis"):
            continue
        for item in spec.get("metadata") or []:
            if isinstance(item, dict) and str(item.get("name", "")).lower() == "redishost":
                item["value"] = redis_host
    return yaml.safe_dump_all(docs, sort_keys=False)


def overlay_processes(apps: tuple[str, ...] = LINKED_APPS) -> ProcessesSpec:
    """Process faults through `docker compose` (kill / pause / unpause / stop / start a service).

    Kugelpos runs each sidecar in its app's network namespace (`network_mode: service:<app>`):
    killing `app@X` leaves `dapr_X` without a network until it is restarted as well, which a
    real deployment's crash would do too (Compose has no restart for it: `restart: always`)."""
    compose = ["docker", "compose", *sum((["-f", f] for f in COMPOSE_FILES), [])]
    files = " ".join(f"-f {f}" for f in COMPOSE_FILES)
    targets = {"redis": ProcessTargetSpec(vars={"service": "redis"})}
    for app in apps:
        targets[f"sidecar@{app}"] = ProcessTargetSpec(vars={"service": sidecar_service(app)})
        targets[f"app@{app}"] = ProcessTargetSpec(vars={"service": app})
    return ProcessesSpec(
        cwd="..",  # kugeldrill/target.yaml sits in services/kugeldrill/
        commands={
            "kill": [*compose, "kill", "-s", "KILL", "{service}"],
            "pause": [*compose, "pause", "{service}"],
            "resume": [*compose, "unpause", "{service}"],
            "stop": [*compose, "stop", "-t", "{grace}", "{service}"],
            "start": [*compose, "start", "{service}"],
            "running": ["sh", "-c", f"docker compose {files} ps --status running --services | grep -qx '{{service}}'"],
        },
        targets=targets,
    )


def overlay_target(apps: tuple[str, ...] = LINKED_APPS) -> TargetFile:
    links = link_map(apps)
    return TargetFile(
        name="kugelpos-compose",
        description="Kugelpos' dev Compose stack (docker-compose.yaml + override) with the kugeldrill overlay.",
        allow_hosts=["0.0.0.0", "redis", *apps],  # listen/upstream addresses inside the compose network
        services={app: f"http://127.0.0.1:{8000 + APPS.index(app)}" for app in APPS},
        auth=AuthSpec(),
        toxiproxy=ToxiproxySpec(api="http://127.0.0.1:8474", manage_links="populate"),
        links=links,
        observe=ObserveSpec(
            logs=LogSource(command=["docker", "compose", *sum((["-f", f] for f in COMPOSE_FILES), []),
                                    "logs", "--no-color", "--timestamps", *apps],
                          cwd=".."),  # kugeldrill/target.yaml sits in services/kugeldrill/
            redis_url="redis://127.0.0.1:6380/0",
            mongodb_url="mongodb://127.0.0.1:27017/?directConnection=true",
        ),
        # Kugelpos' real breaker (kugelpos.md §6): cumulative failures, reset >= 61 s, HALF_OPEN unlimited.
        breaker=BreakerSpec(threshold=3, reset_seconds=61.0, half_open="unlimited", failures="cumulative"),
        processes=overlay_processes(apps),
    )


def build_overlay(components_dir: Path, *, apps: tuple[str, ...] = LINKED_APPS,
                  daprd_image: str | None = None) -> OverlayBundle:
    """Everything the overlay needs, built from the user's own component folder."""
    if not components_dir.is_dir():
        raise ConfigError(f"components folder {components_dir} does not exist")
    sources = sorted([*components_dir.glob("*.yaml"), *components_dir.glob("*.yml")])
    if not sources:
        raise ConfigError(f"no component files in {components_dir}")
    bundle = OverlayBundle()
    header = "# Generated by `kugeldrill target compose-overlay`; see deploy/compose/README.md.\n"
    bundle.files[OVERLAY_FILE] = header + yaml.safe_dump(_overlay_compose(apps, daprd_image), sort_keys=False)
    target = overlay_target(apps)
    populate = [{"name": f"kugeldrill.{name}", "listen": spec.listen, "upstream": spec.upstream, "enabled": True}
                for name, spec in target.links.items()]
    bundle.files["kugeldrill/toxiproxy.json"] = json.dumps(populate, indent=2) + "\n"
    bundle.files["kugeldrill/target.yaml"] = header + dump_target(target)
    for app in apps:
        host = f"toxiproxy:{link_ports(app)['redis']}"
        for src in sources:
            text = _retarget_components(src.read_text(), host, src)
            bundle.files[f"kugeldrill/components/{app}/{src.name}"] = header + text
    return bundle
