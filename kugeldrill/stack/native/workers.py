"""How many uvicorn worker processes each native Kugelpos service runs (`kugelpos up --workers`).

* `dev` (default): one each, as Kugelpos' dev Compose stack (`uvicorn app.main:app`).
* `prod`: the counts of the checkout's own `services/docker-compose.prod.yaml`
  (`UVICORN_WORKERS`, which its `Dockerfile.prod` passes to `uvicorn --workers`; at the time
  of writing account 2, terminal 4, master-data 4, cart 8, report 2, journal 2, stock 1).
* `APP=N[,APP=N…]`: the listed services with N workers, the others one.

Several workers are several copies of the service's process state: each worker has its own
Dapr breakers (a `DaprClientHelper` per process), its own republish scheduler (cart's and
terminal's outbox jobs run once per worker) and its own terminal cache, and all workers of a
service append to the same `app.log` without naming their process (kugelpos.md §1.1, §6.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.native.checkout import SERVICES, KugelposCheckout

PROD_COMPOSE = "docker-compose.prod.yaml"
_DEFAULTED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?-(\d+)\}$")  # ${UVICORN_WORKERS:-4}


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Worker processes per app id, and where the counts came from (for the state and target files)."""

    counts: dict[str, int]
    source: str  # "dev", "prod (services/docker-compose.prod.yaml)" or the explicit spec

    def of(self, app: str) -> int:
        return self.counts.get(app, 1)

    @property
    def several(self) -> dict[str, int]:
        """The services running more than one process."""
        return {app: n for app, n in self.counts.items() if n > 1}


def validate_spec(spec: str) -> None:
    """Check a `--workers` value's shape before anything is built (prod is read later, from the checkout)."""
    if spec not in ("dev", "prod"):
        _explicit(spec)


def plan_workers(spec: str, checkout: KugelposCheckout) -> WorkerPlan:
    """The worker counts a `--workers` value means for this checkout."""
    if spec == "dev":
        return WorkerPlan({app: 1 for app in SERVICES}, "dev")
    if spec == "prod":
        return WorkerPlan(_prod_counts(checkout.services_dir / PROD_COMPOSE), f"prod (services/{PROD_COMPOSE})")
    return WorkerPlan({app: 1 for app in SERVICES} | _explicit(spec), spec)


def _explicit(spec: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        app, sep, number = part.partition("=")
        if not sep or app not in SERVICES or not number.isdigit() or not 1 <= int(number) <= 32:
            raise ConfigError(f"--workers {spec!r}: {part!r} is not APP=N",
                              hint=f"dev, prod, or e.g. cart=8,terminal=4 (N 1..32; apps: {', '.join(SERVICES)})")
        counts[app] = int(number)
    if not counts:
        raise ConfigError(f"--workers {spec!r} names no service", hint="dev, prod, or e.g. cart=8,terminal=4")
    return counts


def _prod_counts(compose: Path) -> dict[str, int]:
    """`UVICORN_WORKERS` of each Kugelpos service in the production Compose file (1 where unset)."""
    if not compose.is_file():
        raise ConfigError(f"--workers prod: {compose} does not exist",
                          hint="the checkout has no production Compose file; pass explicit counts, e.g. cart=8")
    try:
        services = (yaml.safe_load(compose.read_text()) or {}).get("services") or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--workers prod: {compose} is not valid YAML: {exc}") from exc
    counts: dict[str, int] = {}
    for app, (folder, _) in SERVICES.items():
        service = services.get(app) or services.get(folder) or {}
        value = _environment(service.get("environment")).get("UVICORN_WORKERS")
        counts[app] = _count(value, f"{compose}: services.{app}.environment.UVICORN_WORKERS")
    return counts


def _environment(env: object) -> dict[str, str]:
    """A Compose `environment:` as a mapping (it may be a mapping or a list of NAME=VALUE)."""
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items() if v is not None}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {}


def _count(value: str | None, where: str) -> int:
    if value is None:
        return 1  # Dockerfile.prod: --workers ${UVICORN_WORKERS:-1}
    match = _DEFAULTED.match(value.strip())
    text = match.group(1) if match else value.strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{where} = {value!r} is not a worker count")
    return int(text)
