"""The `kugeldrill` pytest plugin as a user meets it: registered by the install (no conftest
line, no `-p`), its fault fixtures healing whatever a failing test left, and a drill run as a
test with its verdict. Each user project runs in a pytest subprocess (pytester)."""

from __future__ import annotations

import pytest
import redis

from kugeldrill.chaos.heal import verify_healed
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.toxiproxy import ToxiproxyClient

pytestmark = pytest.mark.integration

FAULT_TESTS = '''
import time

import pytest
import redis

from kugeldrill.ground.errors import DrillError


def _redis(toxiproxy):
    host, port = toxiproxy.proxies()["kugeldrill.redis@cart"].listen.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), socket_timeout=1.0, socket_connect_timeout=1.0)


def test_down_for_the_block_only(link_fault, kugeldrill_toxiproxy):
    client = _redis(kugeldrill_toxiproxy)
    assert client.ping()
    with link_fault("redis@cart", "down") as timeline:
        assert timeline.status()["active"][0]["link"] == "redis@cart"
        with pytest.raises(redis.exceptions.ConnectionError):
            _redis(kugeldrill_toxiproxy).ping()
    assert _redis(kugeldrill_toxiproxy).ping()


def test_latency_with_parameters(link_fault, kugeldrill_toxiproxy):
    with link_fault("redis@*", "latency", latency=400):
        start = time.monotonic()
        _redis(kugeldrill_toxiproxy).ping()
        assert time.monotonic() - start >= 0.35


def test_a_test_failing_inside_the_block(link_fault, kugeldrill_toxiproxy):
    with link_fault("redis@cart", "latency", latency=300):
        assert False, "the user's test fails with the fault still applied"


def test_an_unknown_kind_or_link_is_refused(link_fault):
    with pytest.raises(DrillError, match="not a fault kind"):
        with link_fault("redis@cart", "explode"):
            pass
    with pytest.raises(DrillError, match="matches no link"):
        with link_fault("redis@kart", "down"):
            pass


def test_toxiproxy_python_left_a_cut_link(toxiproxy_client):
    proxy = toxiproxy_client.proxies()["kugeldrill.redis@cart"]
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    proxy.disable()
    assert False, "fails with toxiproxy-python's fault still applied"


def test_our_client_left_a_toxic(kugeldrill_toxiproxy):
    kugeldrill_toxiproxy.add_toxic("kugeldrill.redis@cart", type="timeout", attributes={"timeout": 0},
                                   name="kugeldrill.user")
'''


def test_fault_fixtures_work_and_heal_after_failing_tests(pytester: pytest.Pytester, toxiproxy_server,
                                                          redis_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    with ToxiproxyClient(toxiproxy_server.api) as client:
        LinkMap([Link("redis@cart", "127.0.0.1:0", f"127.0.0.1:{redis_server.port}")]).ensure(client)
        pytester.makepyfile(test_user=FAULT_TESTS)
        # No conftest and no -p: the install registered the plugin.
        result = pytester.runpytest_subprocess("-p", "no:locust", "-p", "no:cacheprovider",
                                               f"--toxiproxy-url={toxiproxy_server.api}", timeout=180)
        result.assert_outcomes(passed=4, failed=2)
        result.stdout.fnmatch_lines(["*AssertionError: the user's test fails with the fault still applied*"])
        assert verify_healed(client) == []
        proxy = client.proxies()["kugeldrill.redis@cart"]
        host, port = proxy.listen.rsplit(":", 1)
        assert redis.Redis(host=host, port=int(port), socket_timeout=2).ping()


def test_without_a_toxiproxy_the_fault_tests_are_skipped(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    pytester.makepyfile(test_user="def test_needs_one(link_fault):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:locust", "-p", "no:cacheprovider", "-rs", timeout=120)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Toxiproxy: pass --toxiproxy-url*"])


TINY = """\
name: {name}
description: a tiny drill for the plugin's own test
load:
  users: {{CartUser: 1, TerminalUser: 1, OpenCloseUser: 1}}
  spawn_rate: 3
  duration: 6s
stack:
  breaker: {{threshold: 3, reset_seconds: 5}}
  republish_interval_seconds: 3
expect:
  load: {{min_requests: {min_requests}}}
  convergence: {{max_seconds: 20}}
"""

DRILL_TESTS = '''
def test_a_drill_that_passes(kugeldrill_drill):
    verdict = kugeldrill_drill("tiny.yaml")
    assert verdict.passed, verdict.explain()
    assert verdict.report_html.is_file() and verdict.run_dir.name.endswith("-tiny")


def test_a_drill_that_fails(kugeldrill_drill):
    verdict = kugeldrill_drill("greedy.yaml")
    assert verdict.passed, verdict.explain()


def test_a_bad_scenario_names_its_line(kugeldrill_drill):
    kugeldrill_drill("bad.yaml")
'''


@pytest.mark.slow
def test_a_drill_runs_as_a_test_with_its_verdict(pytester: pytest.Pytester, tmp_path) -> None:
    pytester.makefile(".yaml", tiny=TINY.format(name="tiny", min_requests=5),
                      greedy=TINY.format(name="greedy", min_requests=1_000_000),
                      bad=TINY.format(name="bad", min_requests=5).replace("CartUser: 1", "CartUzer: 1"))
    pytester.makepyfile(test_drills=DRILL_TESTS)
    runs = tmp_path / "runs"
    result = pytester.runpytest_subprocess("-p", "no:locust", "-p", "no:cacheprovider", f"--kugeldrill-runs-dir={runs}",
                                           f"--junitxml={tmp_path / 'junit.xml'}", timeout=600)
    result.assert_outcomes(passed=1, failed=2)
    # The failing drill's explanation: verdict, report, the expectation not met.
    result.stdout.fnmatch_lines(["*drill greedy: FAIL (exit 1); report: *report.html*", "*min_requests*"])
    result.stdout.fnmatch_lines(["*bad.yaml:4: field 'load.users'*CartUzer*"])
    assert len(list(runs.glob("*-tiny"))) == 1 and len(list(runs.glob("*-greedy"))) == 1
    assert "kugeldrill_report" in (tmp_path / "junit.xml").read_text()
