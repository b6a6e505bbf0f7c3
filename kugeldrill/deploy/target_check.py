"""`kugeldrill target check`: does every endpoint, link and observation source answer?

A drill against a real deployment that discovers halfway that the Toxiproxy link for
the cart's Redis was never created has wasted the run. The check says, item by item,
what is there and exactly what is missing, before any load or fault.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from kugeldrill.chaos.toxiproxy import ToxiproxyClient, ToxiproxyError
from kugeldrill.target import TargetFile

TOPIC_GROUPS = {
    "topic-tranlog": ("report", "journal", "stock"),
    "topic-cashlog": ("report", "journal"),
    "topic-opencloselog": ("report", "journal"),
}


@dataclass
class CheckItem:
    name: str
    ok: bool
    detail: str
    fatal: bool = True  # a non-fatal miss is reported but does not stop a drill


def _timed_get(url: str, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    resp = httpx.get(url, timeout=timeout)
    return resp.status_code, (time.monotonic() - start) * 1000


def check_services(target: TargetFile, timeout: float) -> list[CheckItem]:
    items = []
    for name, base in target.services.items():
        url = base.rstrip("/") + "/health"
        try:
            status, ms = _timed_get(url, timeout)
            items.append(CheckItem(f"service {name}", status < 500, f"GET {url} -> {status} ({ms:.0f} ms)"))
        except httpx.HTTPError as err:
            items.append(CheckItem(f"service {name}", False, f"GET {url} failed: {type(err).__name__}: {err}"))
    return items


def check_toxiproxy(target: TargetFile, timeout: float) -> list[CheckItem]:
    if target.toxiproxy is None:
        return [CheckItem("toxiproxy", not target.links, "no toxiproxy section: faults cannot be injected",
                          fatal=bool(target.links))]
    api = target.toxiproxy.api
    try:
        with ToxiproxyClient(api, timeout=timeout, allow_hosts=target.allow_hosts) as client:
            version = client.version()
            proxies = client.proxies()
    except ToxiproxyError as err:
        return [CheckItem("toxiproxy", False, f"{api}: {err}")]
    items = [CheckItem("toxiproxy", True, f"{api} version {version}, {len(proxies)} proxies")]
    for link, spec in target.links.items():
        proxy = proxies.get(f"kugeldrill.{link}")
        name = f"link {link}"
        if proxy is None:
            if target.toxiproxy.manage_links == "populate":
                items.append(CheckItem(name, True, "absent; will be created with /populate at drill start"))
            else:
                items.append(CheckItem(name, False, f"proxy kugeldrill.{link} does not exist on {api} "
                                       "(manage_links: existing)"))
            continue
        problems = []
        if proxy.upstream != spec.upstream:
            problems.append(f"upstream is {proxy.upstream}, target says {spec.upstream}")
        if not proxy.enabled:
            problems.append("proxy is disabled (a fault left behind? run 'kugeldrill heal')")
        if proxy.toxics:
            problems.append(f"{len(proxy.toxics)} toxic(s) present (run 'kugeldrill heal')")
        items.append(CheckItem(name, not problems, "; ".join(problems) or f"{proxy.listen} -> {proxy.upstream}"))
    return items


def _text(value: object) -> str:
    """redis-py answers bytes unless decode_responses; group names are compared as text."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def check_redis(target: TargetFile, timeout: float) -> list[CheckItem]:
    url = target.observe.redis_url
    if not url:
        return [CheckItem("redis", False, "observe.redis_url not set: stream lag, pending entries and "
                          "idempotency markers cannot be read", fatal=False)]
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
    except redis.RedisError as err:
        return [CheckItem("redis", False, f"{url}: {err}")]
    items = [CheckItem("redis", True, f"{url} answers PING")]
    for topic, groups in TOPIC_GROUPS.items():
        try:
            found = {_text(g.get("name", g.get(b"name"))) for g in client.xinfo_groups(topic)}
        except redis.ResponseError:
            found = set()
        missing = [g for g in groups if g not in found]
        detail = f"groups {sorted(found)}" + (f"; missing {missing} (no delivery yet, or shared consumerID)"
                                              if missing else "")
        items.append(CheckItem(f"stream {topic}", not missing, detail, fatal=False))
    client.close()
    return items


def check_logs(target: TargetFile) -> list[CheckItem]:
    logs = target.observe.logs
    items = []
    for app, path in logs.files.items():
        ok = Path(path).is_file()
        items.append(CheckItem(f"log {app}", ok, path if ok else f"{path} does not exist", fatal=False))
    if logs.command:
        try:
            proc = subprocess.run(logs.command, capture_output=True, timeout=logs.command_timeout_seconds,
                                  cwd=logs.resolved_cwd(target.path))
            ok = proc.returncode == 0
            detail = f"{' '.join(logs.command)} -> exit {proc.returncode}, {len(proc.stdout)} bytes"
        except (OSError, subprocess.TimeoutExpired) as err:
            ok, detail = False, f"{' '.join(logs.command)}: {err}"
        items.append(CheckItem("log command", ok, detail, fatal=False))
    if not logs.files and not logs.command:
        items.append(CheckItem("logs", False, "no observe.logs: breaker transitions and subscriber "
                               "applications cannot be read from the real services", fatal=False))
    return items


def check_mongodb(target: TargetFile, timeout: float) -> list[CheckItem]:
    url = target.observe.mongodb_url
    if not url:
        return []
    try:
        import pymongo  # optional extra: pip install kugeldrill[mongo]
    except ImportError:
        return [CheckItem("mongodb", False, "observe.mongodb_url is set but pymongo is not installed "
                          "(pip install 'kugeldrill[mongo]')", fatal=False)]
    try:
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=int(timeout * 1000))
        client.admin.command("ping")
        return [CheckItem("mongodb", True, f"{url} answers ping")]
    except Exception as err:  # noqa: BLE001 - pymongo raises many kinds
        return [CheckItem("mongodb", False, f"{url}: {err}", fatal=False)]


def check_target(target: TargetFile, timeout: float = 5.0) -> list[CheckItem]:
    return [
        *check_services(target, timeout),
        *check_toxiproxy(target, timeout),
        *check_redis(target, timeout),
        *check_logs(target),
        *check_mongodb(target, timeout),
    ]


def render(items: list[CheckItem]) -> str:
    lines = []
    for item in items:
        mark = "ok     " if item.ok else ("MISSING" if item.fatal else "warn   ")
        lines.append(f"{mark} {item.name:28} {item.detail}")
    return "\n".join(lines)


def all_fatal_ok(items: list[CheckItem]) -> bool:
    return all(item.ok or not item.fatal for item in items)
