"""The link fault kinds (Toxiproxy), each registered once with its parameters and effects.

The observable effects on a Redis client (redis-py / go-redis inside a sidecar) and on an
HTTP client (httpx / Locust) are in each kind's `redis_effect` / `http_effect`, and in the
table of chaos/README.md. A new link kind is one `register(...)` here (see the README's
worked example).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from kugeldrill.chaos.kinds import FaultKind, Param, register
from kugeldrill.chaos.link_faults import DisableFault, FlapFault, RampFault, ToxicFault
from kugeldrill.ground.errors import ConfigError

_MS = "ms"


def toxic(toxic_type: str, attributes: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """The Fault factory of a kind that is one Toxiproxy toxic per stream."""
    return partial(ToxicFault, toxic=toxic_type, attributes=attributes)


def _check_flap(p: dict[str, Any], duration: float, where: str) -> None:
    p.setdefault("down", p["period"] / 2)
    if p["down"] >= p["period"]:
        raise ConfigError(f"{where}.down ({p['down']:g}s) must be shorter than {where}.period ({p['period']:g}s)")
    if p["period"] > duration:
        raise ConfigError(f"{where}.period ({p['period']:g}s) is longer than the fault ({duration:g}s): use 'down'")


def _check_slicer(p: dict[str, Any], duration: float, where: str) -> None:
    if p["size_variation"] >= p["average_size"]:
        raise ConfigError(f"{where}.size_variation must be smaller than {where}.average_size")


def _check_ramp(p: dict[str, Any], duration: float, where: str) -> None:
    if duration / p["steps"] < 0.05:
        raise ConfigError(f"{where}.steps: {p['steps']} steps in {duration:g}s are closer than 50 ms apart")


def _check_timeout(p: dict[str, Any], duration: float, where: str) -> None:
    if p["timeout"] == 0:
        raise ConfigError(f"{where}.timeout must be greater than 0 ms (a zero timeout never closes: use kind 'blackhole')")


def _check_bandwidth(p: dict[str, Any], duration: float, where: str) -> None:
    if p["rate"] <= 0:
        raise ConfigError(f"{where}.rate must be greater than 0 KB/s (a zero rate stalls the stream: use kind 'blackhole')")


register(FaultKind(
    "down", "proxy disabled: listener closed, live connections closed",
    redis_effect="new connects fail with ConnectionRefusedError; pooled connections are closed "
                 "(redis.ConnectionError 'Connection closed by server' on the next command)",
    http_effect="connect fails (httpx.ConnectError: connection refused) — definitely not sent; "
                "in-flight requests see a closed connection (RemoteProtocolError/ReadError)",
    fault=DisableFault,
))
register(FaultKind(
    "blackhole", "timeout toxic 0: connections accept, data vanishes until healed",
    redis_effect="connect succeeds, commands get no reply: redis.TimeoutError after socket_timeout; "
                 "on heal every touched connection is closed (ConnectionError once, then recovers)",
    http_effect="connect succeeds, the request hangs until the client's read timeout "
                "(httpx.ReadTimeout — outcome unknown); on heal the connection is closed",
    direction_default="both", toxicity=True, fault=toxic("timeout", lambda p: {"timeout": 0}),
))
register(FaultKind(
    "latency", "each data chunk delayed by latency ± jitter",
    redis_effect="every reply (downstream) or command (upstream) arrives `latency` ms later; "
                 "a socket_timeout below the latency turns into redis.TimeoutError",
    http_effect="response time grows by `latency` ms per direction (connect time unchanged); "
                "client read timeouts below it give httpx.ReadTimeout",
    params=(Param("latency", int, required=True, minimum=0, unit=_MS, doc="delay added to each chunk"),
            Param("jitter", int, default=0, minimum=0, unit=_MS, doc="uniform ± variation")),
    direction_default="downstream", toxicity=True,
    fault=toxic("latency", lambda p: {"latency": p["latency"], "jitter": p["jitter"]}),
))
register(FaultKind(
    "bandwidth", "stream paced to `rate` KB/s",
    redis_effect="large values (bulk reads, big stream entries) take size/rate seconds; small "
                 "commands barely change",
    http_effect="large bodies download slowly; small JSON requests are little affected",
    params=(Param("rate", int, required=True, unit="KB/s", doc="bytes per second / 1000"),),
    direction_default="downstream", toxicity=True, extra_check=_check_bandwidth,
    fault=toxic("bandwidth", lambda p: {"rate": p["rate"]}),
))
register(FaultKind(
    "slow_close", "a close by one side is held back for `delay`",
    redis_effect="no effect on commands; QUIT / server-side closes linger `delay` ms",
    http_effect="responses arrive normally; Connection: close responses end `delay` ms late "
                "(clients that read to EOF wait)",
    params=(Param("delay", int, required=True, minimum=0, unit=_MS, doc="how long a close is delayed"),),
    direction_default="downstream", toxicity=True, fault=toxic("slow_close", lambda p: {"delay": p["delay"]}),
))
register(FaultKind(
    "timeout", "data dropped; the connection is closed after `timeout` ms without data",
    redis_effect="commands get no reply and the connection closes after `timeout` ms idle: "
                 "redis.ConnectionError / TimeoutError; a chatty client (keepalives) is never closed",
    http_effect="request gets no response; connection closed after `timeout` ms "
                "(httpx.RemoteProtocolError/ReadError — outcome unknown)",
    params=(Param("timeout", int, required=True, minimum=0, unit=_MS, doc="idle time before close"),),
    direction_default="both", toxicity=True, extra_check=_check_timeout,
    fault=toxic("timeout", lambda p: {"timeout": p["timeout"]}),
))
register(FaultKind(
    "reset_peer", "first data after `timeout` ms resets the connection (TCP RST)",
    redis_effect="next command on a new connection fails with ConnectionResetError (redis.ConnectionError); "
                 "connections that existed before the fault see EOF instead of RST",
    http_effect="request fails with a reset (httpx.ReadError/RemoteProtocolError — outcome unknown "
                "if the request was sent)",
    params=(Param("timeout", int, default=0, minimum=0, unit=_MS, doc="wait before resetting"),),
    direction_default="upstream", toxicity=True, min_server=(2, 2, 0),
    fault=toxic("reset_peer", lambda p: {"timeout": p["timeout"]}),
))
register(FaultKind(
    "slicer", "data cut into small pieces with a pause between them",
    redis_effect="replies arrive in fragments; exercises the client's partial-read parsing; "
                 "adds (size / average_size) × delay µs",
    http_effect="responses arrive in fragments (slower for large bodies), parsers must reassemble",
    params=(Param("average_size", int, required=True, minimum=1, unit="bytes", doc="mean piece size"),
            Param("size_variation", int, default=0, minimum=0, unit="bytes", doc="± variation, < average_size"),
            Param("delay", int, default=0, minimum=0, unit="µs", doc="pause between pieces (microseconds)")),
    direction_default="downstream", toxicity=True, extra_check=_check_slicer,
    fault=toxic("slicer", lambda p: {"average_size": p["average_size"], "size_variation": p["size_variation"],
                                     "delay": p["delay"]}),
))
register(FaultKind(
    "limit_data", "connection closed after `bytes` bytes",
    redis_effect="a connection dies once it carried `bytes` (ConnectionError mid-reply); reconnects "
                 "get a fresh budget",
    http_effect="responses truncated then closed (httpx.RemoteProtocolError: incomplete body)",
    params=(Param("bytes", int, required=True, minimum=0, unit="bytes", doc="budget per connection"),),
    direction_default="downstream", toxicity=True, min_server=(2, 1, 0),
    fault=toxic("limit_data", lambda p: {"bytes": p["bytes"]}),
))
register(FaultKind(
    "flap", "down for `down` s, up for `period - down` s, repeating",
    redis_effect="alternating refused/closed connections and recoveries; pools churn, breakers "
                 "may oscillate open/half-open",
    http_effect="alternating connection refused and success windows",
    params=(Param("period", float, required=True, minimum=0.1, unit="s", doc="length of one down+up cycle"),
            Param("down", float, minimum=0.05, unit="s", doc="down part of each cycle (default period/2)")),
    extra_check=_check_flap, fault=FlapFault,
))
register(FaultKind(
    "ramp", "latency stepped from `start` to `end` ms by updating the toxic in place",
    redis_effect="replies get slower step by step; finds the latency where timeouts begin",
    http_effect="response time rises step by step until client timeouts trigger",
    params=(Param("start", int, required=True, minimum=0, unit=_MS, doc="first latency"),
            Param("end", int, required=True, minimum=0, unit=_MS, doc="last latency"),
            Param("steps", int, default=5, minimum=2, maximum=1000, doc="number of latency values"),
            Param("jitter", int, default=0, minimum=0, unit=_MS, doc="uniform ± variation")),
    direction_default="downstream", toxicity=True, extra_check=_check_ramp, fault=RampFault,
))
