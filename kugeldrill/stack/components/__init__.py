"""Dapr component and Resiliency files for one app's sidecar, rendered from templates.

Why a renderer: every sidecar gets the same components except `redisHost`, which is that
app's own Toxiproxy proxy (`redis@<app>`), and drills need short `processingTimeout` /
`redeliverInterval` values and the kugelpos defects switched on or off:

* `shared_consumer_id`: `consumerID: kugelpos-tranlog-consumer` on all three pub/subs, as the
  seed spec documents — subscribers then compete in one group instead of each getting a copy.
* `database_index`: `databaseIndex` instead of `redisDB`, as kugelpos' real YAML has it — daprd
  ignores that key, so all stores use DB 0 (docs/dapr-contract.md §6).

The templates in `templates/` are the correct forms (what the seed intends, done so that real
Dapr would do it); the defects are applied on top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.services.common.settings import KNOWN_DEFECTS

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBSUBS = {
    "pubsub-tranlog-report": "topic-tranlog",
    "pubsub-cashlog-report": "topic-cashlog",
    "pubsub-opencloselog-report": "topic-opencloselog",
}
STATE_STORES = ("statestore", "cartstore")
SHARED_CONSUMER_ID = "kugelpos-tranlog-consumer"
COMPONENT_DEFECTS = frozenset({"shared_consumer_id", "database_index"})
ACK_MODELS = ("1.18", "1.16")
# A Go `time.ParseDuration` string, as Dapr reads durations in component metadata.
_GO_DURATION = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|[+-]?0")


def _known_defects() -> frozenset[str]:
    return frozenset(KNOWN_DEFECTS) | COMPONENT_DEFECTS


def _duration_text(value: str | float | int, what: str) -> str:
    """A Go duration string; numbers are seconds (never the ms trap of a bare integer)."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ConfigError(f"{what} must not be negative, got {value}")
        text = f"{value:g}s" if value else "0"
    else:
        text = str(value).strip()
    if not _GO_DURATION.fullmatch(text):
        raise ConfigError(
            f"{what} {value!r} is not a Go duration (e.g. '180s', '2s', '500ms')",
            hint="a bare integer would be read by Dapr as milliseconds; give a unit",
        )
    return text


def _set_meta(doc: dict, name: str, value: str) -> None:
    items = doc["spec"].setdefault("metadata", [])
    for item in items:
        if item["name"] == name:
            item["value"] = value
            return
    items.append({"name": name, "value": value})


def _rename_meta(doc: dict, old: str, new: str) -> None:
    for item in doc["spec"].get("metadata", []):
        if item["name"] == old:
            item["name"] = new


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((TEMPLATES / name).read_text())


def render_components(
    dest_dir: str | Path,
    *,
    redis_host: str,
    app_id: str,
    ack_model: str = "1.18",
    defects: Iterable[str] = (),
    processing_timeout: str | float = "180s",
    redeliver_interval_ms: int | None = None,
    resiliency: bool = True,
    retry_duration: str | float = "2s",
    retry_max_retries: int = 10,
    queue_depth: int | None = None,
    concurrency: int | None = None,
    redis_max_retries: int | None = None,
) -> Path:
    """Write the components for `app_id`'s sidecar into `dest_dir` and return it.

    `redis_host` is `host:port` (loopback). `processing_timeout` is a Go duration or seconds.
    `redeliver_interval_ms` is written as Dapr honours it (integer milliseconds; None = the
    15 s default). `resiliency=False` leaves the Resiliency file out, as kugelpos has none.
    `redis_max_retries` (None = go-redis' 3; -1 = none) shortens how long calls fail while
    Redis is away.
    """
    defects = list(defects)
    unknown = set(defects) - _known_defects()
    if unknown:
        raise ConfigError(f"unknown defect switch(es) {sorted(unknown)}; the components know "
                          f"{sorted(COMPONENT_DEFECTS)}")
    if ack_model not in ACK_MODELS:
        raise ConfigError(f"ack_model must be one of {ACK_MODELS}, not {ack_model!r}")
    if not app_id or "||" in app_id:
        raise ConfigError(f"app_id {app_id!r} is empty or contains '||'")
    host, sep, port = redis_host.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"redis_host {redis_host!r} must be host:port")
    require_loopback(redis_host, what=f"redisHost of app {app_id}")
    pt = _duration_text(processing_timeout, "processing_timeout")
    if redeliver_interval_ms is not None and (not isinstance(redeliver_interval_ms, int) or redeliver_interval_ms < 0):
        raise ConfigError(f"redeliver_interval_ms must be a non-negative integer, got {redeliver_interval_ms!r}")
    for what, value in (("queue_depth", queue_depth), ("concurrency", concurrency)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    if not isinstance(retry_max_retries, int) or retry_max_retries < -1:
        raise ConfigError(f"retry_max_retries must be an integer >= -1, got {retry_max_retries!r}")
    retry_text = _duration_text(retry_duration, "retry_duration")

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for store in STATE_STORES:
        doc = _load(f"{store}.yaml")
        _set_meta(doc, "redisHost", redis_host)
        if redis_max_retries is not None:
            _set_meta(doc, "redisMaxRetries", str(redis_max_retries))
        if "database_index" in defects:
            _rename_meta(doc, "redisDB", "databaseIndex")
        written.append(_write(dest, f"{store}.yaml", doc))
    for name in PUBSUBS:
        filename = f"pubsub_{name.split('-')[1]}_report.yaml"
        doc = _load(filename)
        _set_meta(doc, "redisHost", redis_host)
        _set_meta(doc, "processingTimeout", pt)
        if redeliver_interval_ms is not None:
            _set_meta(doc, "redeliverInterval", str(redeliver_interval_ms))
        if queue_depth is not None:
            _set_meta(doc, "queueDepth", str(queue_depth))
        if concurrency is not None:
            _set_meta(doc, "concurrency", str(concurrency))
        if redis_max_retries is not None:
            _set_meta(doc, "redisMaxRetries", str(redis_max_retries))
        if "shared_consumer_id" in defects:
            _set_meta(doc, "consumerID", SHARED_CONSUMER_ID)
        written.append(_write(dest, filename, doc))
    res_file = dest / "resiliency.yaml"
    if resiliency:
        doc = _load("resiliency.yaml")
        retry = doc["spec"]["policies"]["retries"]["pubsubInboundRetry"]
        retry["duration"] = retry_text
        retry["maxRetries"] = retry_max_retries
        written.append(_write(dest, "resiliency.yaml", doc))
    elif res_file.exists():
        res_file.unlink()
    manifest = {
        "app_id": app_id, "redis_host": redis_host, "ack_model": ack_model,
        "defects": sorted(set(defects) & COMPONENT_DEFECTS), "processing_timeout": pt,
        "redeliver_interval_ms": redeliver_interval_ms, "resiliency": resiliency, "files": written,
    }
    # Beside the folder, not in it: daprd warns about every non-YAML file in a resources path.
    manifest_path(dest).write_text(json.dumps(manifest, indent=2) + "\n")
    (dest / "render.json").unlink(missing_ok=True)  # where older renders put it
    return dest


def manifest_path(dest_dir: str | Path) -> Path:
    """What `render_components` rendered into `dest_dir`, as JSON: `<dest_dir>.render.json`."""
    dest = Path(dest_dir)
    return dest.with_name(dest.name + ".render.json")


def _write(dest: Path, name: str, doc: dict) -> str:
    header = "# Rendered by kugeldrill (stack.components.render_components); edit the templates instead.\n"
    (dest / name).write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return name
