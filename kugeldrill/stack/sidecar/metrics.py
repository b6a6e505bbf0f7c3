"""Prometheus text for the metrics daprd exports (names and labels as in dapr.md §5.2).

Why: checkers read sidecar health from metrics (`dapr_component_pubsub_ingress_count` with
`process_status`/`status`, egress and state counts), so a drill against the stand-in and a
drill against real Dapr scrape the same series. Counters have no `_total` suffix, as in Dapr.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

BUCKETS_MS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250,
              300, 400, 500, 650, 800, 1000, 2000, 5000, 10000, 20000, 50000, 100000)

Labels = tuple[tuple[str, str], ...]


def _labels(**kw: str) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in kw.items()))


def _fmt(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    body = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in items)
    return "{" + body + "}"


class _Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS_MS)
        self.sum = 0.0
        self.count = 0

    def observe(self, value_ms: float) -> None:
        self.sum += value_ms
        self.count += 1
        i = bisect_left(BUCKETS_MS, value_ms)
        if i < len(BUCKETS_MS):
            self.counts[i] += 1


class Metrics:
    """The sidecar's counters and latency histograms."""

    HELP = {
        "dapr_component_pubsub_ingress_count": ("counter", "The number of incoming messages arriving from the pub/sub component."),
        "dapr_component_pubsub_ingress_latencies": ("histogram", "The consuming app event processing latency."),
        "dapr_component_pubsub_egress_count": ("counter", "The number of outgoing messages published to the pub/sub component."),
        "dapr_component_pubsub_egress_latencies": ("histogram", "The latency of the response from the pub/sub component."),
        "dapr_component_state_count": ("counter", "The number of operations performed on the state component."),
        "dapr_component_state_latencies": ("histogram", "The latency of the state component operations."),
        "dapr_resiliency_loaded": ("counter", "Number of resiliency policies loaded."),
        "dapr_resiliency_count": ("counter", "Number of times a resiliency policyKey has been applied to a building block."),
        "dapr_resiliency_activations_total": ("counter", "Number of times a resiliency policyKey has been activated in a building block after a failure or after a state change."),
        "dapr_runtime_component_loaded": ("counter", "The number of successfully loaded components."),
        "dapr_http_server_request_count": ("counter", "Number of HTTP requests started in server."),
    }

    def __init__(self, app_id: str, namespace: str = "") -> None:
        self.app_id = app_id
        self.namespace = namespace
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._hists: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)

    def inc(self, metric: str, value: float = 1.0, **labels: str) -> None:
        key = _labels(**labels)
        with self._lock:
            self._counters[metric][key] += value

    def observe(self, metric: str, value_ms: float, **labels: str) -> None:
        key = _labels(**labels)
        with self._lock:
            hist = self._hists[metric].get(key)
            if hist is None:
                hist = self._hists[metric][key] = _Histogram()
            hist.observe(value_ms)

    # -- Dapr-shaped helpers ------------------------------------------------------
    def pubsub_ingress(self, component: str, topic: str, process_status: str, status: str,
                       latency_ms: float | None) -> None:
        labels = dict(app_id=self.app_id, component=component, namespace=self.namespace,
                      process_status=process_status, status=status, topic=topic)
        self.inc("dapr_component_pubsub_ingress_count", **labels)
        if latency_ms is not None:
            self.observe("dapr_component_pubsub_ingress_latencies", latency_ms, **labels)

    def pubsub_egress(self, component: str, topic: str, success: bool, latency_ms: float) -> None:
        labels = dict(app_id=self.app_id, component=component, namespace=self.namespace,
                      success=str(success).lower(), topic=topic)
        self.inc("dapr_component_pubsub_egress_count", **labels)
        self.observe("dapr_component_pubsub_egress_latencies", latency_ms, **labels)

    def state(self, component: str, operation: str, success: bool, latency_ms: float) -> None:
        labels = dict(app_id=self.app_id, component=component, namespace=self.namespace,
                      operation=operation, success=str(success).lower())
        self.inc("dapr_component_state_count", **labels)
        self.observe("dapr_component_state_latencies", latency_ms, **labels)

    def resiliency_activation(self, name: str, policy: str, direction: str, target: str) -> None:
        self.inc("dapr_resiliency_activations_total", app_id=self.app_id, name=name, namespace=self.namespace,
                 policy=policy, flow_direction=direction, target=target, status="")

    # -- exposition ----------------------------------------------------------------
    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted(set(self._counters) | set(self._hists))
            for name in names:
                kind, text = self.HELP.get(name, ("counter", name))
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(self._counters.get(name, {}).items()):
                    lines.append(f"{name}{_fmt(labels)} {value:g}")
                for labels, hist in sorted(self._hists.get(name, {}).items()):
                    cumulative = 0
                    for bound, count in zip(BUCKETS_MS, hist.counts):
                        cumulative += count
                        lines.append(f"{name}_bucket{_fmt(labels, (('le', str(bound)),))} {cumulative}")
                    lines.append(f'{name}_bucket{_fmt(labels, (("le", "+Inf"),))} {hist.count}')
                    lines.append(f"{name}_sum{_fmt(labels)} {hist.sum:g}")
                    lines.append(f"{name}_count{_fmt(labels)} {hist.count}")
        return "\n".join(lines) + "\n"
