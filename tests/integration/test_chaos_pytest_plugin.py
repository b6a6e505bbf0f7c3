"""The user-facing pytest plugin in a real pytest subprocess: a user's test that uses
toxiproxy-python through `toxiproxy_client` and fails half-way still leaves the link healed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kugeldrill.chaos.heal import verify_healed
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.toxiproxy import ToxiproxyClient

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

USER_TEST = '''
pytest_plugins = ["kugeldrill.chaos.pytest_plugin"]
'''

USER_TESTS = '''
import redis

def test_slow_redis(toxiproxy_client):
    proxy = toxiproxy_client.proxies()["kugeldrill.redis@cart"]
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    proxy.disable()
    assert False, "the user's test fails with the fault still applied"

def test_our_client_too(kugeldrill_toxiproxy):
    kugeldrill_toxiproxy.add_toxic("kugeldrill.redis@cart", type="timeout", attributes={"timeout": 0},
                                   name="kugeldrill.user")
'''


def test_plugin_fixtures_heal_after_failing_user_test(tmp_path, toxiproxy_server, redis_server):
    with ToxiproxyClient(toxiproxy_server.api) as client:
        LinkMap([Link("redis@cart", "127.0.0.1:0", f"127.0.0.1:{redis_server.port}")]).ensure(client)
        (tmp_path / "conftest.py").write_text(USER_TEST)
        (tmp_path / "test_user.py").write_text(USER_TESTS)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:locust",
             f"--toxiproxy-url={toxiproxy_server.api}", str(tmp_path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
        assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
        assert "E       AssertionError: the user's test fails" in run.stdout  # got as far as the fault
        assert verify_healed(client) == []
