"""A service's Pipfile.lock as typed records, and as a requirements file with hashes.

Kugelpos pins every dependency per service (and the pins matter: an unpinned FastAPI breaks
cart at import), so an environment is built from exactly the lock's `default` section, with
its hashes checked. The one entry that is not on PyPI — `kugel_common`, a wheel file the
checkout does not contain — is left out and installed from a wheel built from the
checkout's `services/commons` source (Kugelpos' commit 008519f: the wheel is built from newer source and renamed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from kugeldrill.ground.errors import ConfigError

COMMON_PACKAGE = "kugel-common"


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str
    version: str | None  # "==1.2.3"; None for file/path/VCS entries
    markers: str = ""
    extras: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    file: str | None = None

    def requirement(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        line = f"{self.name}{extras}{self.version}"
        if self.markers:
            line += f" ; {self.markers}"
        return line + "".join(f" --hash={h}" for h in self.hashes)


@dataclass(frozen=True, slots=True)
class PipfileLock:
    path: Path
    sha256: str
    python_version: str | None  # "3.12" from _meta.requires
    packages: tuple[LockedPackage, ...]

    def pinned(self) -> list[LockedPackage]:
        """The registry packages (everything with a version pin)."""
        return [p for p in self.packages if p.version]

    def unpinned(self) -> list[LockedPackage]:
        """File/path entries (kugel_common's wheel) that are built, not downloaded."""
        return [p for p in self.packages if not p.version]

    def requirements(self) -> str:
        return "".join(p.requirement() + "\n" for p in self.pinned())


def read_lock(path: str | Path) -> PipfileLock:
    """Parse a Pipfile.lock; a missing or malformed file is a ConfigError naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    default = data.get("default") if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise ConfigError(f"{path} has no 'default' section; is it a Pipfile.lock?")
    packages = []
    for name, entry in sorted(default.items()):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: entry {name!r} is not a table")
        version = entry.get("version")
        if version is not None and not str(version).startswith("=="):
            raise ConfigError(f"{path}: {name} is pinned as {version!r}, not '==X'")
        packages.append(LockedPackage(
            name=name, version=version, markers=str(entry.get("markers") or ""),
            extras=tuple(entry.get("extras") or ()), hashes=tuple(entry.get("hashes") or ()),
            file=entry.get("file") or entry.get("path"),
        ))
    python = ((data.get("_meta") or {}).get("requires") or {}).get("python_version")
    return PipfileLock(path=path, sha256=hashlib.sha256(raw).hexdigest(), python_version=python,
                       packages=tuple(packages))
