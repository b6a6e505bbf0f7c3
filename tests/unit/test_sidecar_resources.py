"""Reading Dapr YAML like daprd: redisDB vs databaseIndex, ms-vs-duration, Resiliency lookup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kugeldrill.ground.errors import ConfigError
from kugeldrill.stack.sidecar.resiliency import DeadlineExceeded, PermanentError, Policy, component_policy
from kugeldrill.stack.sidecar.resources import RetryPolicy, load_resources

PUBSUB = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: ps}
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - {name: redisHost, value: "127.0.0.1:6399"}
  - {name: ProcessingTimeout, value: "180"}
  - {name: redeliverInterval, value: "30s"}
  - {name: streamName, value: topic-x}
"""
STATE = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: st}
spec:
  type: state.redis
  metadata:
  - {name: redisHost, value: "127.0.0.1:6399"}
  - {name: databaseIndex, value: "2"}
  - {name: ttlInSeconds, value: "3600"}
"""


def write(tmp: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp / f"{name}.yaml").write_text(text)
    return tmp


def test_dapr_reading_of_kugelpos_yaml(tmp_path: Path):
    res = load_resources(write(tmp_path, ps=PUBSUB, st=STATE), "journal")
    ps, st = res.pubsubs["ps"], res.states["st"]
    assert ps.processing_timeout == pytest.approx(0.18)  # bare integer = milliseconds
    assert ps.redeliver_interval == 15.0  # duration string ignored
    assert ps.consumer_id == "journal"  # default consumer group = app id
    assert st.redis.db == 0 and st.key_prefix == "journal" and st.ttl_in_seconds == 3600
    text = "\n".join(res.warnings)
    assert "databaseIndex" in text and "streamName" in text and "redeliverInterval" in text


def test_redisdb_and_scopes(tmp_path: Path):
    scoped = STATE.replace("databaseIndex", "redisDB") + "scopes: [cart]\n"
    assert load_resources(write(tmp_path, st=scoped), "cart").states["st"].redis.db == 2
    assert "st" not in load_resources(tmp_path, "journal").states


def test_bad_files_raise_config_errors(tmp_path: Path):
    write(tmp_path, bad="kind: Component\nmetadata: {name: x}\nspec: {type: state.redis, metadata: [{name: redisDB, value: one}, {name: redisHost, value: 'h:1'}]}\n")
    with pytest.raises(ConfigError, match="redisDB"):
        load_resources(tmp_path, "a")
    with pytest.raises(ConfigError, match="not a directory"):
        load_resources(tmp_path / "missing", "a")


RESILIENCY = """
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: r}
spec:
  policies:
    timeouts: {fast: 500ms, DefaultTimeoutPolicy: "2000"}
    retries:
      named: {policy: constant, duration: 10ms, maxRetries: 2, matching: {httpStatusCodes: "500,502-504"}}
      DefaultPubsubComponentInboundRetryPolicy: {policy: exponential, maxRetries: 1}
  targets:
    components:
      ps: {inbound: {retry: named, timeout: fast}}
"""


def test_resiliency_named_targets_and_default_names(tmp_path: Path):
    res = load_resources(write(tmp_path, r=RESILIENCY), "a")
    named = component_policy(res.resiliencies, "ps", "Pubsub", "Inbound")
    assert named.retry.name == "named" and named.timeout == 0.5
    assert named.retry.http_status_codes == [(500, 500), (502, 504)]
    other = component_policy(res.resiliencies, "other", "Pubsub", "Inbound")
    assert other.retry.name == "DefaultPubsubComponentInboundRetryPolicy" and other.timeout == 2.0
    outbound = component_policy(res.resiliencies, "st", "Statestore", "Outbound")
    assert outbound.retry is None and outbound.timeout == 2.0


def test_resiliency_unknown_policy_name_is_an_error(tmp_path: Path):
    write(tmp_path, r=RESILIENCY.replace("retry: named", "retry: nope"))
    with pytest.raises(ConfigError, match="nope"):
        load_resources(tmp_path, "a")


class Coded(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(str(code))
        self.status_code = code


def test_policy_retries_matching_and_timeout():
    calls: list[int] = []

    async def failing(code: int):
        calls.append(code)
        raise Coded(code)

    policy = Policy(retry=RetryPolicy("r", duration=0.001, max_retries=2, http_status_codes=[(500, 500)]))
    with pytest.raises(Coded):
        asyncio.run(policy.run(lambda: failing(500)))
    assert len(calls) == 3  # 1 + maxRetries
    calls.clear()
    with pytest.raises(Coded):
        asyncio.run(policy.run(lambda: failing(400)))
    assert len(calls) == 1  # not in matching → permanent
    calls.clear()

    async def permanent():
        calls.append(0)
        raise PermanentError(ValueError("etag"))

    with pytest.raises(PermanentError):
        asyncio.run(policy.run(permanent))
    assert calls == [0]

    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(DeadlineExceeded, match="context deadline exceeded"):
        asyncio.run(Policy(timeout=0.05).run(slow))
