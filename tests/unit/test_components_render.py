"""The component renderer: correct templates, defects on top, drill knobs, clear errors.

What daprd then makes of the rendered files (DB by `redisDB` only, consumer groups, redelivery
timings) is pinned against daprd itself in tests/integration/test_dapr_*.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kugeldrill.ground.errors import ConfigError, NotLoopbackError
from kugeldrill.stack.components import manifest_path, render_components


def meta(path: Path) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    return {m["name"]: m["value"] for m in doc["spec"]["metadata"]}


def test_default_render_is_what_the_seed_intends(tmp_path: Path):
    out = render_components(tmp_path / "comp", redis_host="127.0.0.1:7001", app_id="report")
    assert meta(out / "statestore.yaml")["redisDB"] == "1" and meta(out / "statestore.yaml")["ttlInSeconds"] == "3600"
    assert meta(out / "cartstore.yaml")["redisDB"] == "2" and meta(out / "cartstore.yaml")["ttlInSeconds"] == "36000"
    tran = meta(out / "pubsub_tranlog_report.yaml")
    assert tran["redisHost"] == "127.0.0.1:7001" and tran["processingTimeout"] == "180s" and "consumerID" not in tran
    names = {yaml.safe_load(f.read_text())["metadata"]["name"]: f.name for f in out.glob("pubsub_*.yaml")}
    assert set(names) == {"pubsub-tranlog-report", "pubsub-cashlog-report", "pubsub-opencloselog-report"}
    resiliency = yaml.safe_load((out / "resiliency.yaml").read_text())["spec"]
    assert resiliency["targets"]["components"]["pubsub-cashlog-report"]["inbound"]["retry"] == "pubsubInboundRetry"
    assert json.loads(manifest_path(out).read_text())["app_id"] == "report"
    assert sorted(f.suffix for f in out.iterdir()) == [".yaml"] * 6  # daprd warns about any other file


def test_defects_and_knobs(tmp_path: Path):
    out = render_components(tmp_path / "comp", redis_host="127.0.0.1:7001", app_id="stock",
                            defects=["shared_consumer_id", "database_index", "stock_no_idempotency"],
                            processing_timeout=2, redeliver_interval_ms=500, resiliency=False, queue_depth=8,
                            concurrency=2)
    pubsubs = [meta(f) for f in out.glob("pubsub_*.yaml")]
    assert len(pubsubs) == 3 and {p["consumerID"] for p in pubsubs} == {"kugelpos-tranlog-consumer"}
    for store in ("statestore", "cartstore"):  # the key kugelpos' YAML has, which daprd ignores (DB 0)
        assert "redisDB" not in meta(out / f"{store}.yaml") and meta(out / f"{store}.yaml")["databaseIndex"]
    tran = meta(out / "pubsub_tranlog_report.yaml")
    assert (tran["processingTimeout"], tran["redeliverInterval"], tran["queueDepth"], tran["concurrency"]) == \
        ("2s", "500", "8", "2")  # redeliverInterval as integer milliseconds: the only form daprd honours
    assert not (out / "resiliency.yaml").exists()


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"defects": ["nope"]}, ConfigError),
        ({"processing_timeout": "180"}, ConfigError),
        ({"ack_model": "1.15"}, ConfigError),
        ({"redis_host": "10.1.2.3:6379"}, NotLoopbackError),
        ({"redis_host": "127.0.0.1"}, ConfigError),
        ({"redeliver_interval_ms": "15s"}, ConfigError),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, error: type):
    args = {"redis_host": "127.0.0.1:7001", "app_id": "cart", **kwargs}
    with pytest.raises(error):
        render_components(tmp_path / "comp", **args)
