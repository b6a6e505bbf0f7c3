"""Prometheus text with Dapr's metric names, labels and latency buckets."""

from __future__ import annotations

from kugeldrill.stack.sidecar.metrics import Metrics


def test_ingress_egress_state_series():
    m = Metrics("journal")
    m.pubsub_ingress("pubsub-tranlog-report", "topic-tranlog", "drop", "success", 1.5)
    m.pubsub_ingress("pubsub-tranlog-report", "topic-tranlog", "retry", "retry", None)
    m.pubsub_egress("pubsub-tranlog-report", "topic-tranlog", False, 3.0)
    m.state("statestore", "get", True, 0.4)
    text = m.render()
    assert ('dapr_component_pubsub_ingress_count{app_id="journal",component="pubsub-tranlog-report",namespace="",'
            'process_status="drop",status="success",topic="topic-tranlog"} 1') in text
    assert 'process_status="retry",status="retry",topic="topic-tranlog"} 1' in text
    # a sample without latency adds no histogram series
    assert 'dapr_component_pubsub_ingress_latencies_count{app_id="journal",component="pubsub-tranlog-report",namespace="",process_status="retry"' not in text
    assert 'dapr_component_pubsub_ingress_latencies_bucket{app_id="journal",component="pubsub-tranlog-report",namespace="",process_status="drop",status="success",topic="topic-tranlog",le="1"} 0' in text
    assert 'process_status="drop",status="success",topic="topic-tranlog",le="2"} 1' in text
    assert 'dapr_component_pubsub_egress_count{app_id="journal",component="pubsub-tranlog-report",namespace="",success="false",topic="topic-tranlog"} 1' in text
    assert 'dapr_component_state_count{app_id="journal",component="statestore",namespace="",operation="get",success="true"} 1' in text
    assert "# TYPE dapr_component_state_latencies histogram" in text
    assert "_total" not in text.replace("dapr_resiliency_activations_total", "")
