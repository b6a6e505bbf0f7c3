"""The native runner's pace settings and evidence, without starting the services: the lazily
read CA directory (trust.py), the uvicorn worker counts (workers.py, `--workers prod`), the
hook that makes a multi-worker service's workers die with their supervisor, Kugelpos'
request.log as records and CPU by part (request_log.py, usage.py)."""

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
from kugeldrill.stack.native.request_log import RequestLogReader, count_routes, route_template
from kugeldrill.stack.native.usage import cpu_delta, cpu_seconds
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
    env = trust.lazy_trust_env()
    assert env == {"SSL_CERT_DIR": str(tmp_path)}
    assert trust.scrubbed_for_trust(env) == ["SSL_CERT_FILE"]  # the inherited bundle would win in httpx
    assert trust.scrubbed_for_trust({**env, "SSL_CERT_FILE": "/mine.pem"}) == []  # the user's own (--env) stays


def test_without_a_hashed_directory_the_inherited_settings_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "ca-certificates.crt").write_text("")  # a bundle, not c_rehash links
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    assert trust.lazy_trust_env() == {}
    assert trust.scrubbed_for_trust({}) == []


@pytest.mark.skipif(trust.ca_directory() is None, reason="this system has no hashed CA directory")
def test_with_the_runner_setting_an_http_client_parses_no_certificate_up_front(monkeypatch: pytest.MonkeyPatch):
    """What Kugelpos pays per client: certifi's whole bundle without the setting, nothing with it."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] > 50
    for name, value in trust.lazy_trust_env().items():
        monkeypatch.setenv(name, value)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] == 0


def test_a_service_gets_the_ca_directory_and_not_the_launchers_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The service's record: SSL_CERT_DIR among its variables, the inherited SSL_CERT_FILE unset by its command."""
    from kugeldrill.stack.native.launcher import _scrubbed, _service_env

    (tmp_path / "5ad8a5d6.0").write_text("")
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")

    class Checkout:
        def db_prefix(self, app: str) -> str:
            return SERVICES[app][1]

    urls = {app: f"http://127.0.0.1:{40000 + i}" for i, app in enumerate(SERVICES)}
    env = _service_env("account", Checkout(), "m", urls, {}, {}, pycache=tmp_path, locpath=tmp_path)
    assert env["SSL_CERT_DIR"] == str(tmp_path) and "SSL_CERT_FILE" in _scrubbed(env)
    mine = _service_env("account", Checkout(), "m", urls, {}, {"SSL_CERT_FILE": "/mine.pem"}, pycache=tmp_path,
                        locpath=tmp_path)
    assert "SSL_CERT_FILE" not in _scrubbed(mine)


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
    state = {"checkout": {"path": "/src"}, "sidecar": {"kind": "daprd", "version": "1.18.0"}, "services": services, "links": {},
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


# ---------------------------------------------------------------------- the pace's evidence

_REQUEST_LOG = """2026-12-07 03:45:19,052 : 
[Client:]
ip_address-> 127.0.0.1
[Request:]
method-> GET
url-> http://127.0.0.1:43497/api/v1/terminals/T1234-5678-1?terminal_id=T1234-5678-1
body-> None
[Response:]
status_code-> 200
process_time_ms-> 32
body-> {'success': True, 'data': {'receipt': 'line 1
line 2'}}
[SignIn:]
staff_id-> 
2026-12-07 03:45:19,165 : 
[Client:]
ip_address-> 127.0.0.1
[Request:]
method-> POST
url-> http://127.0.0.1:33727/api/v1/carts/0f8fad5b-d9cb-469f-a165-70867728950e/lineItems
body-> [{'item_code': 'ITEM001'}]
[Response:]
status_code-> 422
process_time_ms-> 7
body-> None
"""


def test_kugelpos_request_log_blocks_become_route_records(tmp_path: Path):
    log = tmp_path / "request.log"
    log.write_text("2026-12-07 03:45:18,000 : \nmethod-> GET\nurl-> http://h/old\n[Response:]\nstatus_code-> 200\n"
                   "process_time_ms-> 1\n")
    reader = RequestLogReader(log)
    reader.mark()
    with open(log, "a") as fh:
        fh.write(_REQUEST_LOG)
    got = reader.since_mark()
    assert [(r.name, r.status, r.process_ms) for r in got] == [
        ("GET /api/v1/terminals/{}", 200, 32), ("POST /api/v1/carts/{}/lineItems", 422, 7)]
    assert count_routes(got + got[:1])["GET /api/v1/terminals/{}"] == 2
    assert RequestLogReader(tmp_path / "missing.log").since_mark() == []


@pytest.mark.parametrize("url, route", [
    ("http://127.0.0.1:1/", "/"),
    ("http://h/api/v1/tenants/T9315/settings/RECEIPT_NO_START_VALUE/value", "/api/v1/tenants/{}/settings/{}/value"),
    ("http://h/api/v1/tenants/T1/stores/5678/terminals/10/transactions/3/delivery-status",
     "/api/v1/tenants/{}/stores/{}/terminals/{}/transactions/{}/delivery-status"),
    ("http://h/api/v1/tenants/T1/stores/5678/items/ITEM012/details", "/api/v1/tenants/{}/stores/{}/items/{}/details"),
    ("http://h/v1.0/publish/pubsub-tranlog-report/topic-tranlog", "/v1.0/publish/pubsub-tranlog-report/topic-tranlog"),
])
def test_route_templates_keep_route_words_and_hide_ids(url: str, route: str):
    assert route_template(url) == route


def test_cpu_by_part_counts_a_services_worker_processes_and_unknown_parts_are_none():
    """A 'service' whose worker burns CPU: the part's seconds include it; a gone pid is unknown."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)"
    supervisor = subprocess.Popen([sys.executable, "-c",
                                   f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {burn!r}])\n"
                                   "time.sleep(30)"])
    try:
        state = {"services": {"cart": {"pid": supervisor.pid, "match": ["subprocess.Popen"]},
                              "stock": {"pid": supervisor.pid, "match": ["not-this-program"]}},
                 "sidecars": {}, "mongo": {"pid": 999999999, "match": ["x"]}}
        before = cpu_seconds(state)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = cpu_seconds(state)
            if (after["service cart"] or 0) - (before["service cart"] or 0) >= 0.5:
                break
            time.sleep(0.2)
        delta = cpu_delta(before, after)
        assert delta["service cart"] is not None and delta["service cart"] >= 0.5  # the child's CPU
        assert after["service stock"] is None and after["mongodb"] is None  # not ours / gone: unknown
        assert delta["mongodb"] is None
    finally:
        for child in psutil.Process(supervisor.pid).children(recursive=True):
            child.kill()
        supervisor.kill()
        supervisor.wait()
