"""The native Kugelpos runner's parts, without starting anything: lock files, the checkout,
the checkout's components retargeted per app, the DAPR_HTTP_PORT hook, the target file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kugeldrill.deploy.from_native import target_from_native
from kugeldrill.ground.errors import ConfigError, NotLoopbackError
from kugeldrill.stack.components.checkout import render_checkout_components
from kugeldrill.stack.native.checkout import SERVICES, open_checkout
from kugeldrill.stack.native.pipfile_lock import read_lock
from kugeldrill.stack.native.launcher import _service_env, _working_dir
from kugeldrill.target import dump_target, load_target

ROOT = Path(__file__).resolve().parents[2]
KUGELPOS = Path(os.environ.get("KUGELPOS_SRC") or ROOT.parent / "shared" / "kugelpos-backend")
SHIM = ROOT / "kugeldrill" / "stack" / "native" / "shim"
needs_checkout = pytest.mark.skipif(not (KUGELPOS / "services").is_dir(), reason=f"no Kugelpos checkout at {KUGELPOS}")


@needs_checkout
def test_a_real_lock_becomes_hash_checked_pins_without_kugel_common():
    lock = read_lock(KUGELPOS / "services" / "cart" / "Pipfile.lock")
    assert lock.python_version == "3.12"
    assert [p.name for p in lock.unpinned()] == ["kugel-common"]
    reqs = lock.requirements().splitlines()
    assert len(reqs) == len(lock.pinned()) > 40
    fastapi = next(r for r in reqs if r.startswith("fastapi=="))
    assert "--hash=sha256:" in fastapi and "kugel" not in lock.requirements()
    jose = next(r for r in reqs if r.startswith("python-jose"))
    assert jose.startswith("python-jose[cryptography]==")


def test_a_malformed_lock_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "Pipfile.lock"
    bad.write_text('{"default": {"x": {"version": ">=1"}}}')
    with pytest.raises(ConfigError, match="pinned as"):
        read_lock(bad)
    bad.write_text("not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_lock(bad)


@needs_checkout
def test_checkout_accepts_root_or_services_and_names_what_is_missing(tmp_path: Path):
    assert open_checkout(KUGELPOS).services_dir == open_checkout(KUGELPOS / "services").services_dir
    (tmp_path / "services" / "cart" / "app").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a Kugelpos checkout: missing services/account/app/main.py"):
        open_checkout(tmp_path)


@needs_checkout
def test_checkout_components_change_only_redis_host(tmp_path: Path):
    src = KUGELPOS / "services" / "dapr" / "components"
    out = render_checkout_components(src, tmp_path, redis_host="127.0.0.1:6390", app_id="report")
    for original in src.glob("*.yaml"):
        before = yaml.safe_load(original.read_text())
        after = yaml.safe_load((out / original.name).read_text())
        hosts = [m for m in after["spec"]["metadata"] if m["name"] == "redisHost"]
        assert [m["value"] for m in hosts] == ["127.0.0.1:6390"]
        for m in after["spec"]["metadata"]:
            m_before = next(x for x in before["spec"]["metadata"] if x["name"] == m["name"])
            if m["name"] != "redisHost":
                assert m == m_before  # databaseIndex, streamName, ttlInSeconds ... kept as written
    with pytest.raises(NotLoopbackError):
        render_checkout_components(src, tmp_path / "x", redis_host="10.0.0.1:6379", app_id="report")


def _fake_kugel_common(root: Path) -> None:
    """A package shaped like kugel_common's two modules the hook patches."""
    (root / "kugel_common" / "config").mkdir(parents=True)
    (root / "kugel_common" / "utils").mkdir(parents=True)
    for pkg in ("kugel_common", "kugel_common/config", "kugel_common/utils"):
        (root / pkg / "__init__.py").write_text("")
    (root / "kugel_common" / "config" / "settings.py").write_text(
        "class Settings:\n    pass\nsettings = Settings()\n")
    (root / "kugel_common" / "utils" / "health_check.py").write_text(
        "class HealthChecker:\n"
        "    @staticmethod\n"
        "    async def check_dapr_sidecar(dapr_port: int = 3500, timeout: float = 5.0):\n"
        "        return dapr_port\n"
        "    @staticmethod\n"
        "    async def check_dapr_pubsub(pubsub_name='p', topic='t', dapr_port: int = 3500, timeout=5.0):\n"
        "        return dapr_port\n"
        "    @staticmethod\n"
        "    async def check_mongodb(client, timeout=5.0):\n"
        "        return 'no port'\n")


def _probe(root: Path, env_port: str | None) -> dict:
    code = (
        "import asyncio, json, sys\n"
        f"sys.path[:0] = [{str(SHIM)!r}, {str(root)!r}]\n"
        "import kugeldrill_dapr_port\n"
        "from kugel_common.config.settings import settings\n"
        "from kugel_common.utils.health_check import HealthChecker as H\n"
        "print(json.dumps({'setting': getattr(settings, 'DAPR_HTTP_PORT', 3500),\n"
        "  'sidecar': asyncio.run(H.check_dapr_sidecar()), 'pubsub': asyncio.run(H.check_dapr_pubsub('x', 'y')),\n"
        "  'explicit': asyncio.run(H.check_dapr_sidecar(dapr_port=1234)), 'mongo': asyncio.run(H.check_mongodb(None))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DAPR_HTTP_PORT"}
    if env_port is not None:
        env["DAPR_HTTP_PORT"] = env_port
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_hook_makes_dapr_http_port_take_effect(tmp_path: Path):
    _fake_kugel_common(tmp_path)
    assert _probe(tmp_path, "41234") == {"setting": 41234, "sidecar": 41234, "pubsub": 41234, "explicit": 1234,
                                         "mongo": "no port"}
    # Without the variable nothing changes: Kugelpos' own defaults.
    assert _probe(tmp_path, None) == {"setting": 3500, "sidecar": 3500, "pubsub": 3500, "explicit": 1234,
                                      "mongo": "no port"}


def _state(tmp_path: Path) -> dict:
    services = {app: {"url": f"http://127.0.0.1:{40000 + i}", "app_log": str(tmp_path / app / "app.log")}
                for i, app in enumerate(SERVICES)}
    links = {f"{kind}@cart": {"listen": f"127.0.0.1:{41000 + i}", "upstream": "127.0.0.1:1"}
             for i, kind in enumerate(("redis", "sidecar", "app"))}
    return {"checkout": {"path": "/src/kugelpos-backend", "commit": "33ef985abc"}, "sidecar": {"kind": "daprd", "version": "1.18.0"},
            "services": services, "links": links, "toxiproxy": {"api": "http://127.0.0.1:8474"},
            "redis": {"url": "redis://127.0.0.1:6390/0"},
            "mongo": {"url": "mongodb://127.0.0.1:27999/?replicaSet=rs0&directConnection=true"}}


def test_the_target_file_declares_kugelpos_breaker_and_sources(tmp_path: Path):
    target = target_from_native(_state(tmp_path))
    assert target.breaker.failures == "cumulative" and target.breaker.half_open == "unlimited"
    assert target.breaker.reset_seconds == 61.0 and target.breaker.max_call_seconds == 93.0
    assert target.observe.logs.files["cart"].endswith("cart/app.log")
    assert target.observe.mongodb_url.startswith("mongodb://127.0.0.1:27999/")
    assert target.toxiproxy.manage_links == "existing" and "sidecar@cart" in target.links
    assert target.publisher.republish_interval_seconds == 300.0  # Kugelpos' job: every 5 minutes
    path = tmp_path / "target.yaml"
    path.write_text(dump_target(target))
    assert load_target(path).services == target.services  # round trip through the schema
    assert "with daprd 1.18.0 sidecars" in target.description


def test_the_target_file_follows_a_changed_republish_setting(tmp_path: Path):
    state = _state(tmp_path)
    state["services"]["cart"]["env"] = {"UNDELIVERED_CHECK_INTERVAL_IN_MINUTES": "1"}
    publisher = target_from_native(state).publisher
    assert publisher.republish_interval_seconds == 60.0 and publisher.republish_min_age_seconds == 60.0


def test_service_environment_is_the_dev_override_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("BASE_URL_CART", "http://cart:8000/api/v1")

    class Checkout:
        def db_prefix(self, app: str) -> str:
            return SERVICES[app][1]

    urls = {app: f"http://127.0.0.1:{40000 + i}" for i, app in enumerate(SERVICES)}
    links = {"sidecar@cart": {"listen": "127.0.0.1:41001"}}
    env = _service_env("cart", Checkout(), "mongodb://127.0.0.1:1/?replicaSet=rs0", urls, links, {"X_EXTRA": "1"},
                       pycache=tmp_path, locpath=tmp_path / "locale")
    assert env["DAPR_HTTP_PORT"] == "41001" and env["BASE_URL_DAPR"] == "http://127.0.0.1:41001/v1.0"
    assert env["BASE_URL_CART"] == urls["cart"] + "/api/v1" and env["DB_NAME_PREFIX"] == "db_cart"
    assert env["LC_ALL"] == "ja_JP.UTF-8" and env["TZ"] == "UTC" and env["X_EXTRA"] == "1"
    assert "PYTHONPATH" not in env
    account = _service_env("account", Checkout(), "m", urls, links, {}, pycache=tmp_path, locpath=tmp_path)
    assert "DAPR_HTTP_PORT" not in account


def test_working_dir_mirrors_the_service_folder_without_writing_into_it(tmp_path: Path):
    service = tmp_path / "services" / "cart"
    (service / "app").mkdir(parents=True)
    (service / "app" / "main.py").write_text("")
    (service / "app.log").write_text("old log of the checkout")
    run = _working_dir(tmp_path / "run" / "cart", service)
    assert (run / "app").is_symlink() and (run / "app" / "main.py").exists()
    assert not (run / "app.log").exists()  # the service's own log is written here, fresh
    assert _working_dir(run, service) == run  # idempotent
