"""`kugeldrill target check` against real servers: says what is there and what is missing."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from kugeldrill.deploy.target_check import all_fatal_ok, check_target
from kugeldrill.target import load_target


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status":"healthy"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _write_target(tmp_path, svc_url, toxi, redis_url, manage="existing"):
    path = tmp_path / "target.yaml"
    path.write_text(
        f"name: local\nservices:\n  cart: {svc_url}\n  report: http://127.0.0.1:1\n"
        f"toxiproxy:\n  api: {toxi.api}\n  manage_links: {manage}\n"
        f"links:\n  redis@cart: {{listen: '127.0.0.1:0', upstream: '127.0.0.1:6379'}}\n"
        f"observe:\n  redis_url: {redis_url}\n  logs:\n    files: {{cart: {tmp_path / 'cart.log'}}}\n"
    )
    return load_target(path)


def test_check_reports_each_missing_part(tmp_path, health_server, toxiproxy_server, redis_server):
    target = _write_target(tmp_path, health_server, toxiproxy_server, redis_server.url)
    items = {i.name: i for i in check_target(target, timeout=2)}
    assert items["service cart"].ok
    assert not items["service report"].ok and "refused" in items["service report"].detail.lower()
    assert items["toxiproxy"].ok
    assert not items["link redis@cart"].ok and "does not exist" in items["link redis@cart"].detail
    assert items["redis"].ok
    assert not items["log cart"].ok and not items["log cart"].fatal
    assert not all_fatal_ok(list(items.values()))


def test_check_flags_leftover_faults(tmp_path, health_server, toxiproxy_server, redis_server):
    api = toxiproxy_server.api
    httpx.post(f"{api}/proxies", json={"name": "kugeldrill.redis@cart", "listen": "127.0.0.1:0",
                                       "upstream": "127.0.0.1:6379", "enabled": False}, timeout=5)
    target = _write_target(tmp_path, health_server, toxiproxy_server, redis_server.url)
    link = {i.name: i for i in check_target(target, timeout=2)}["link redis@cart"]
    assert not link.ok and "disabled" in link.detail and "kugeldrill heal" in link.detail


def test_populated_links_may_be_absent(tmp_path, health_server, toxiproxy_server, redis_server):
    target = _write_target(tmp_path, health_server, toxiproxy_server, redis_server.url, manage="populate")
    link = {i.name: i for i in check_target(target, timeout=2)}["link redis@cart"]
    assert link.ok and "populate" in link.detail
