"""The embedded stack: what `kugeldrill stack up` and a drill with `target: embedded` start —
the stand-in services (`stack.services`), one Dapr sidecar per Dapr app, Redis and Toxiproxy
with a proxy on every link, all on loopback, started by the shared launcher (`stack.launch`).

`Stack` (start, inspect, stop) and `StackOptions` (what can vary) are the public entry points
(contracts §8)."""

from kugeldrill.stack.embedded.options import RecordedOptions, StackOptions
from kugeldrill.stack.embedded.stack import ACK_MODELS, COMPONENT_DEFECTS, Stack, StackStartError

__all__ = ["ACK_MODELS", "COMPONENT_DEFECTS", "RecordedOptions", "Stack", "StackOptions", "StackStartError"]
