"""The native runner's pace settings, without starting the services: the lazily read CA
directory (trust.py), the uvicorn worker counts (workers.py, `--workers prod`) and the hook
that makes a multi-worker service's workers die with their supervisor."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from kugeldrill.deploy.from_native import target_from_native
from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.native import trust
from kugeldrill.stack.native.checkout import SERVICES, KugelposCheckout, open_checkout
from kugeldrill.stack.native.workers import plan_workers, validate_spec

ROOT = Path(__file__).resolve().parents[2]
KUGELPOS = Path(os.environ.get("KUGELPOS_SRC") or ROOT.parent / "shared" / "kugelpos-backend")
SHIM = ROOT / "kugeldrill" / "stack" / "native" / "shim"
needs_checkout = pytest.mark.skipif(not (KUGELPOS / "services").is_dir(), reason=f"no Kugelpos checkout at {KUGELPOS}")


def _paths(capath: Path) -> ssl.DefaultVerifyPaths:
    return ssl.DefaultVerifyPaths(cafile=None, capath=str(capath), openssl_cafile_env="SSL_CERT_FILE",
                                  openssl_cafile="", openssl_capath_env="SSL_CERT_DIR", openssl_capath="")


def test_a_hashed_ca_directory_replaces_the_inherited_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "5ad8a5d6.0").write_text("")
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    env = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "OTHER": "x"}
    trust.apply_lazy_trust(env)
    assert env == {"SSL_CERT_DIR": str(tmp_path), "OTHER": "x"}


def test_without_a_hashed_directory_the_inherited_settings_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "ca-certificates.crt").write_text("")  # a bundle, not c_rehash links
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    env = {"SSL_CERT_FILE": "/x.pem"}
    trust.apply_lazy_trust(env)
    assert env == {"SSL_CERT_FILE": "/x.pem"}


@pytest.mark.skipif(trust.ca_directory() is None, reason="this system has no hashed CA directory")
def test_with_the_runner_setting_an_http_client_parses_no_certificate_up_front(monkeypatch: pytest.MonkeyPatch):
    """What Kugelpos pays per client: certifi's whole bundle without the setting, nothing with it."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] > 50
    env: dict[str, str] = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    trust.apply_lazy_trust(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] == 0


# ---------------------------------------------------------------------- --workers

def _checkout(services_dir: Path) -> KugelposCheckout:
    return KugelposCheckout(root=services_dir.parent, services_dir=services_dir, commit=None)


@needs_checkout
def test_prod_runs_the_worker_counts_of_the_checkouts_production_compose_file():
    plan = plan_workers("prod", open_checkout(KUGELPOS))
    compose = yaml.safe_load((KUGELPOS / "services" / "docker-compose.prod.yaml").read_text())["services"]
    assert plan.counts == {app: int(compose[app]["environment"].get("UVICORN_WORKERS", 1)) for app in SERVICES}
    assert plan.counts["cart"] > 1 and "prod" in plan.source


def test_prod_reads_list_environments_defaults_and_unset_counts(tmp_path: Path):
    (tmp_path / "docker-compose.prod.yaml").write_text(yaml.safe_dump({"services": {
        "cart": {"environment": ["LOG_LEVEL=INFO", "UVICORN_WORKERS=${UVICORN_WORKERS:-6}"]},
        "terminal": {"environment": {"UVICORN_WORKERS": 3}},
        "stock": {"environment": {"LOG_LEVEL": "INFO"}}}}))
    plan = plan_workers("prod", _checkout(tmp_path))
    assert plan.counts == {**{app: 1 for app in SERVICES}, "cart": 6, "terminal": 3}
    assert plan.several == {"cart": 6, "terminal": 3}


def test_bad_worker_counts_are_config_errors_naming_the_field(tmp_path: Path):
    (tmp_path / "docker-compose.prod.yaml").write_text(yaml.safe_dump({"services": {
        "cart": {"environment": {"UVICORN_WORKERS": "many"}}}}))
    with pytest.raises(ConfigError, match=r"services\.cart\.environment\.UVICORN_WORKERS = 'many'"):
        plan_workers("prod", _checkout(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        plan_workers("prod", _checkout(tmp_path / "nowhere"))
    for spec in ("cart", "cart=0", "till=2", "cart=2,,stock=x", ","):
        with pytest.raises(ConfigError):
            validate_spec(spec)
    assert plan_workers("cart=8,terminal=4", _checkout(tmp_path)).several == {"cart": 8, "terminal": 4}
    assert plan_workers("dev", _checkout(tmp_path)).several == {}


def test_the_target_file_says_the_breaker_is_per_process_with_several_workers(tmp_path: Path):
    services = {app: {"url": f"http://127.0.0.1:{40000 + i}", "app_log": str(tmp_path / f"{app}.log"), "workers": 1}
                for i, app in enumerate(SERVICES)}
    state = {"checkout": {"path": "/src"}, "sidecar": "standin", "services": services, "links": {},
             "toxiproxy": {"api": "http://127.0.0.1:8474"}, "redis": {"url": "redis://127.0.0.1:6390/0"},
             "mongo": {"url": "mongodb://127.0.0.1:27999/"}}
    assert "per process" not in target_from_native(state).description
    services["cart"]["workers"] = 8
    state["workers"] = {"source": "prod (services/docker-compose.prod.yaml)"}
    description = target_from_native(state).description
    assert "cart 8" in description and "the breaker is per process" in description
    assert "its own republish job" in description


# ---------------------------------------------------------------------- the service-group hook

_SUPERVISOR = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import sys; sys.path.insert(0, {shim!r}); import kugeldrill_service_group, time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _worker_outlives_a_killed_supervisor(env_value: str | None) -> bool:
    env = {k: v for k, v in os.environ.items() if k != "KUGELDRILL_DIE_WITH_SUPERVISOR"}
    if env_value is not None:
        env["KUGELDRILL_DIE_WITH_SUPERVISOR"] = env_value
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR.format(shim=str(SHIM))], env=env,
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert supervisor.stdout is not None
    child = int(supervisor.stdout.readline())
    time.sleep(0.5)  # the child has imported the hook
    supervisor.kill()
    supervisor.wait(timeout=10)
    try:
        for _ in range(30):  # the kernel signals at once; 3 s tells 'killed' from 'kept'
            if not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                return False
            time.sleep(0.1)
        return True
    finally:
        if psutil.pid_exists(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_multi_worker_services_workers_die_with_their_supervisor():
    assert not _worker_outlives_a_killed_supervisor("1")
    assert _worker_outlives_a_killed_supervisor(None)  # without the setting: left alone, as before
