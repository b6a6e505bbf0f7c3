"""A Kugelpos checkout: where each service, its lock file, commons and the Dapr components are.

The checkout is only read (it may be read-only, as `../shared` is in CI): environments are
built in the cache, services run with their working directory in the state dir (their
logging.conf writes `app.log` and `request.log` into the working directory).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.native.pipfile_lock import PipfileLock, read_lock

# app id -> (folder under services/, DB_NAME_PREFIX from Kugelpos' docker-compose.override.yaml)
SERVICES: dict[str, tuple[str, str]] = {
    "account": ("account", "db_account"),
    "terminal": ("terminal", "db_terminal"),
    "master-data": ("master-data", "db_master"),
    "cart": ("cart", "db_cart"),
    "report": ("report", "db_report"),
    "journal": ("journal", "db_journal"),
    "stock": ("stock", "db_stock"),
}


@dataclass(frozen=True, slots=True)
class KugelposCheckout:
    root: Path
    services_dir: Path
    commit: str | None

    @property
    def commons_dir(self) -> Path:
        return self.services_dir / "commons"

    @property
    def components_dir(self) -> Path:
        return self.services_dir / "dapr" / "components"

    def service_dir(self, app: str) -> Path:
        return self.services_dir / SERVICES[app][0]

    def db_prefix(self, app: str) -> str:
        return SERVICES[app][1]

    def lock(self, app: str) -> PipfileLock:
        return read_lock(self.service_dir(app) / "Pipfile.lock")


def _commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def open_checkout(path: str | Path) -> KugelposCheckout:
    """Validate a checkout (its root or its services/ folder); every gap is a ConfigError naming it."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"Kugelpos checkout {path} does not exist")
    services = path / "services" if (path / "services").is_dir() else path
    root = services.parent if services.name == "services" else services
    missing = []
    for app, (folder, _) in SERVICES.items():
        for rel in ("app/main.py", "Pipfile.lock"):
            if not (services / folder / rel).is_file():
                missing.append(f"services/{folder}/{rel}")
    if not (services / "commons" / "pyproject.toml").is_file():
        missing.append("services/commons/pyproject.toml")
    if not any((services / "dapr" / "components").glob("*.yaml")):
        missing.append("services/dapr/components/*.yaml")
    if missing:
        raise ConfigError(f"{path} is not a Kugelpos checkout: missing {', '.join(missing[:6])}"
                          + (f" and {len(missing) - 6} more" if len(missing) > 6 else ""),
                          hint="pass the root of a kugelpos-backend checkout (e.g. ../shared/kugelpos-backend)")
    return KugelposCheckout(root=root, services_dir=services, commit=_commit(root))
