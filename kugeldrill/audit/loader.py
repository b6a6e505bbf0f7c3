"""Reading Dapr resource files (components, subscriptions, resiliency) from a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kugeldrill.audit.model import Resource
from kugeldrill.ground.errors import ConfigError

KNOWN_KINDS = {"Component", "Subscription", "Resiliency", "Configuration", "HTTPEndpoint"}


def load_resources(folder: Path) -> list[Resource]:
    """Every Dapr resource in `folder` (*.yaml, *.yml; multi-document files allowed)."""
    if not folder.is_dir():
        raise ConfigError(f"components folder {folder} does not exist or is not a folder")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConfigError(f"no *.yaml or *.yml files in {folder}")
    resources: list[Resource] = []
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', err)}") from err
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") in KNOWN_KINDS:
                resources.append(_resource(path, doc))
    return resources


def _resource(path: Path, doc: dict[str, Any]) -> Resource:
    meta = doc.get("metadata") or {}
    return Resource(
        file=str(path),
        kind=str(doc["kind"]),
        name=str(meta.get("name", "")),
        spec=doc.get("spec") or {},
        scopes=tuple(str(s) for s in (doc.get("scopes") or [])),
    )


def load_compose_images(compose_files: list[Path]) -> list[tuple[str, str, str]]:
    """(file, service, image) for every service with an image in the compose files."""
    out = []
    for path in compose_files:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        for name, svc in (doc.get("services") or {}).items():
            if isinstance(svc, dict) and svc.get("image"):
                out.append((str(path), str(name), str(svc["image"])))
    return out


def discover_compose_files(folder: Path) -> list[Path]:
    """docker-compose*.y*ml in the folder's parent and grandparent (Kugelpos' layout:
    services/dapr/components next to services/docker-compose.yaml)."""
    found: list[Path] = []
    for base in (folder.parent, folder.parent.parent):
        for pattern in ("docker-compose*.yaml", "docker-compose*.yml", "compose*.yaml", "compose*.yml"):
            found.extend(sorted(base.glob(pattern)))
    return list(dict.fromkeys(found))
