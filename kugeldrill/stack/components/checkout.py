"""A Kugelpos checkout's own Dapr component files, retargeted for one app's sidecar.

The embedded stack renders corrected templates (`render_components`); a drill of the real code
must run Kugelpos' real YAMLs instead, quirks included (`databaseIndex`, which Dapr
ignores, `streamName`, no `consumerID`, no Resiliency spec). Only `redisHost` changes:
Kugelpos' sidecars all share one directory pointing at `redis:6379`; here each sidecar
gets a copy pointing at its own `redis@<app>` Toxiproxy link, so Redis can be cut for one
app at a time. Every other line is kept as written.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.netguard import require_loopback


def render_checkout_components(source_dir: str | Path, dest_dir: str | Path, *, redis_host: str, app_id: str) -> Path:
    """Copy every Component in `source_dir` into `dest_dir` with `redisHost` = `redis_host`."""
    source, dest = Path(source_dir), Path(dest_dir)
    require_loopback(redis_host, what=f"redisHost of app {app_id}")
    files = sorted(p for p in source.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not files:
        raise ConfigError(f"no component files (*.yaml) in {source}")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        changed = 0
        for doc in docs:
            if not isinstance(doc, dict):
                raise ConfigError(f"{path}: a component file holds mappings, not {type(doc).__name__}")
            for item in (doc.get("spec") or {}).get("metadata") or []:
                if isinstance(item, dict) and str(item.get("name", "")).lower() == "redishost":
                    item["value"] = redis_host
                    changed += 1
        header = (f"# {path.name} from {source}, with redisHost set to {app_id}'s redis@{app_id} link "
                  "(rendered by kugeldrill; nothing else changed)\n")
        (dest / path.name).write_text(header + yaml.safe_dump_all(docs, sort_keys=False))
        written.append({"file": path.name, "redis_hosts_set": changed})
    # Beside the folder, not in it: daprd warns about every non-YAML file in a resources path.
    dest.with_name(dest.name + ".render.json").write_text(json.dumps(
        {"app_id": app_id, "source": str(source), "redis_host": redis_host, "files": written}, indent=2) + "\n")
    (dest / "render.json").unlink(missing_ok=True)  # where older renders put it
    return dest
