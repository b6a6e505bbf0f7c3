"""The fault vocabulary: what a drill can do to one link, validated before anything runs.

Each fault kind turns user parameters into a short, fixed plan of timed steps against
one proxy: an `apply` at offset 0, optional intermediate steps (flap toggles, ramp
increases), and a `heal` at the end of the fault's bounded duration. The timeline runs
the steps; heal is idempotent, so it can also be run early (stop, signal) or by the
watchdog / `kugeldrill heal` after a crash.

Direction follows Toxiproxy: `upstream` = bytes from the client to the server
(requests, Redis commands), `downstream` = server to client (responses, replies),
`both` = one toxic per stream. Toxicity is a per-connection probability (rolled when a
connection's toxic chain starts or is rebuilt), not per request: with pooled clients
0.5 means "about half the pooled sockets are fully poisoned".

Toxics are named `kugeldrill.<fault id>.<up|down>`, so `kugeldrill heal` finds them.

The observable effects on a Redis client (redis-py / go-redis inside a sidecar) and on
an HTTP client (httpx / Locust) are in each kind's `redis_effect` / `http_effect`, and
in the table of chaos/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kugeldrill.chaos.links import PREFIX
from kugeldrill.chaos.toxiproxy import NotFound, ToxiproxyClient
from kugeldrill.ground.durations import parse_duration
from kugeldrill.ground.errors import ConfigError

DIRECTIONS = ("upstream", "downstream", "both")
_STREAM_SHORT = {"upstream": "up", "downstream": "down"}
MAX_FAULT_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Param:
    """One parameter of a fault kind, with its unit and bounds (why: error messages name them)."""

    name: str
    kind: type = float  # float or int
    required: bool = False
    default: Any = None
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    unit: str = ""
    doc: str = ""
    choices: tuple[str, ...] = ()  # a word parameter (e.g. restart: after|immediately)

    def parse(self, raw: Any, where: str) -> Any:
        if self.choices:
            if raw not in self.choices:
                raise ConfigError(f"{where}.{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
            return raw
        if self.unit == "s" and isinstance(raw, str):
            try:
                raw = parse_duration(raw)
            except ValueError as exc:
                raise ConfigError(f"{where}.{self.name}: {exc}") from None
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"{where}.{self.name} must be a number ({self.unit or self.kind.__name__}), got {raw!r}")
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ConfigError(f"{where}.{self.name} must be finite, got {raw!r}")
        if self.kind is int and float(raw) != int(raw):
            raise ConfigError(f"{where}.{self.name} must be a whole number, got {raw!r}")
        value = self.kind(raw)
        if self.minimum is not None:
            if self.exclusive_min and value <= self.minimum:
                raise ConfigError(f"{where}.{self.name} must be greater than {self.minimum:g}, got {raw!r}")
            if not self.exclusive_min and value < self.minimum:
                raise ConfigError(f"{where}.{self.name} must be at least {self.minimum:g}, got {raw!r}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{where}.{self.name} must be at most {self.maximum:g}, got {raw!r}")
        return value


TOXICITY = Param("toxicity", float, default=1.0, minimum=0.0, maximum=1.0,
                 doc="probability per connection (not per request) that the toxic acts")


@dataclass(frozen=True)
class Step:
    """A timed action of one fault on one proxy, `offset` seconds after the fault starts."""

    offset: float
    label: str  # "apply", "heal", "down", "up", "latency=150"
    run: Callable[[ToxiproxyClient], None]


@dataclass(frozen=True)
class ProcessStep:
    """A timed step of a process fault: actions on its target, in order, `offset` s after the start.

    Declarative (action names and keyword arguments for `chaos.processes.ProcessControl`)
    so the timeline can time and record each action, and tests can read a plan.
    """

    offset: float
    label: str  # "apply", "heal", "kill", ...
    actions: tuple[tuple[str, dict[str, Any]], ...]


@dataclass
class FaultKind:
    """A fault kind: parameters, the steps it needs, and the effects users will see.

    `acts_on` is "link" (a Toxiproxy proxy; steps are `Step`) or "process" (a process
    target; steps are `ProcessStep`, healed by `heal_actions`, see chaos.process_faults).
    """

    name: str
    summary: str
    redis_effect: str
    http_effect: str
    params: tuple[Param, ...] = ()
    direction_default: str | None = None  # None: direction does not apply
    toxicity: bool = False
    extra_check: Callable[[dict[str, Any], float, str], None] | None = None
    planner: Callable[["FaultKind", dict[str, Any], float, str, str], list[Any]] = field(default=None)  # type: ignore[assignment]
    acts_on: str = "link"
    heal_actions: tuple[str, ...] = ()  # process kinds: what undoes the fault ("start", "resume")
    needs: Callable[[dict[str, Any]], tuple[str, ...]] | None = None  # process kinds: actions used

    def allowed(self) -> list[str]:
        names = [p.name for p in self.params]
        if self.direction_default is not None:
            names.append("direction")
        if self.toxicity:
            names.append("toxicity")
        return names

    def validate(self, raw: Mapping[str, Any], duration: float, where: str) -> dict[str, Any]:
        """Normalised params; ConfigError naming `<where>.<field>` on anything wrong."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}.params must be a mapping, got {type(raw).__name__}")
        allowed = self.allowed()
        for key in raw:
            if key not in allowed:
                shown = ", ".join(allowed) or "none"
                raise ConfigError(f"{where}.{key} is not a parameter of fault kind {self.name!r} (allowed: {shown})")
        out: dict[str, Any] = {}
        for param in self.params:
            if param.name in raw:
                out[param.name] = param.parse(raw[param.name], where)
            elif param.required:
                unit = f" ({param.unit})" if param.unit else ""
                raise ConfigError(f"{where}.{param.name} is required for fault kind {self.name!r}{unit}: {param.doc}")
            elif param.default is not None:
                out[param.name] = param.default
        if self.direction_default is not None:
            direction = raw.get("direction", self.direction_default)
            if direction not in DIRECTIONS:
                raise ConfigError(f"{where}.direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
            out["direction"] = direction
        if self.toxicity:
            out["toxicity"] = TOXICITY.parse(raw["toxicity"], where) if "toxicity" in raw else 1.0
        if self.extra_check:
            self.extra_check(out, duration, where)
        return out

    def plan(self, params: dict[str, Any], duration: float, proxy: str, fault_id: str) -> list[Step]:
        """The steps for one proxy; the last step is always `heal` at `duration`."""
        return self.planner(self, params, duration, proxy, fault_id)

    def heal_step(self, params: dict[str, Any], proxy: str, fault_id: str) -> Callable[[ToxiproxyClient], None]:
        """The idempotent heal action (used on schedule and on every early exit)."""
        if self.name in ("down", "flap"):
            return lambda c: _enable(c, proxy)
        names = toxic_names(fault_id, params.get("direction", "downstream"))
        return lambda c: _remove_toxics(c, proxy, names)


# --------------------------------------------------------------------------- actions


def streams_of(direction: str) -> list[str]:
    return ["upstream", "downstream"] if direction == "both" else [direction]


def toxic_names(fault_id: str, direction: str) -> list[str]:
    """`kugeldrill.<fault id>.<up|down>` for each stream the fault acts on."""
    return [f"{PREFIX}{fault_id}.{_STREAM_SHORT[s]}" for s in streams_of(direction)]


def _enable(client: ToxiproxyClient, proxy: str) -> None:
    client.update_proxy(proxy, enabled=True)


def _disable(client: ToxiproxyClient, proxy: str) -> None:
    client.update_proxy(proxy, enabled=False)


def _remove_toxics(client: ToxiproxyClient, proxy: str, names: list[str]) -> None:
    for name in names:
        try:
            client.remove_toxic(proxy, name)
        except NotFound:
            pass  # already gone: healing is idempotent


def _add_toxics(client: ToxiproxyClient, proxy: str, fault_id: str, type_: str, direction: str,
                toxicity: float, attributes: dict[str, Any]) -> None:
    for stream, name in zip(streams_of(direction), toxic_names(fault_id, direction)):
        client.add_toxic(proxy, type=type_, stream=stream, toxicity=toxicity, attributes=attributes, name=name)


def _toxic_planner(toxic_type: str, attributes: Callable[[dict[str, Any]], dict[str, Any]]):
    def plan(kind: FaultKind, params: dict[str, Any], duration: float, proxy: str, fault_id: str) -> list[Step]:
        attrs = attributes(params)
        apply = lambda c: _add_toxics(c, proxy, fault_id, toxic_type, params["direction"],  # noqa: E731
                                      params.get("toxicity", 1.0), attrs)
        return [Step(0.0, "apply", apply), Step(duration, "heal", kind.heal_step(params, proxy, fault_id))]

    return plan


def _plan_down(kind: FaultKind, params: dict[str, Any], duration: float, proxy: str, fault_id: str) -> list[Step]:
    return [Step(0.0, "apply", lambda c: _disable(c, proxy)),
            Step(duration, "heal", kind.heal_step(params, proxy, fault_id))]


def _plan_flap(kind: FaultKind, params: dict[str, Any], duration: float, proxy: str, fault_id: str) -> list[Step]:
    period, down = params["period"], params["down"]
    steps = [Step(0.0, "apply", lambda c: _disable(c, proxy))]
    start = 0.0
    while True:
        up_at, next_down = start + down, start + period
        if up_at >= duration - 1e-9:
            break
        steps.append(Step(up_at, "up", lambda c: _enable(c, proxy)))
        if next_down >= duration - 1e-9:
            break
        steps.append(Step(next_down, "down", lambda c: _disable(c, proxy)))
        start = next_down
    steps.append(Step(duration, "heal", kind.heal_step(params, proxy, fault_id)))
    return steps


def ramp_values(params: dict[str, Any], duration: float) -> list[tuple[float, int]]:
    """(offset, latency ms) for each ramp step: evenly spaced, from `start` to `end`."""
    n = params["steps"]
    start, end = params["start"], params["end"]
    return [(duration * i / n, int(round(start + (end - start) * i / (n - 1)))) for i in range(n)]


def _plan_ramp(kind: FaultKind, params: dict[str, Any], duration: float, proxy: str, fault_id: str) -> list[Step]:
    values = ramp_values(params, duration)
    names = toxic_names(fault_id, params["direction"])
    jitter = params.get("jitter", 0)

    def first(c: ToxiproxyClient, v: int = values[0][1]) -> None:
        _add_toxics(c, proxy, fault_id, "latency", params["direction"], params["toxicity"],
                    {"latency": v, "jitter": jitter})

    def update(v: int) -> Callable[[ToxiproxyClient], None]:
        def run(c: ToxiproxyClient) -> None:
            for name in names:  # update in place: no re-roll of toxicity, no disconnect
                c.update_toxic(proxy, name, attributes={"latency": v})
        return run

    steps = [Step(0.0, "apply", first)]
    steps += [Step(offset, f"latency={v}", update(v)) for offset, v in values[1:]]
    steps.append(Step(duration, "heal", kind.heal_step(params, proxy, fault_id)))
    return steps


# --------------------------------------------------------------------------- extra checks


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


# --------------------------------------------------------------------------- the vocabulary


_MS = "ms"
KINDS: dict[str, FaultKind] = {}


def _register(kind: FaultKind) -> FaultKind:
    KINDS[kind.name] = kind
    return kind


_register(FaultKind(
    "down", "proxy disabled: listener closed, live connections closed",
    redis_effect="new connects fail with ConnectionRefusedError; pooled connections are closed "
                 "(redis.ConnectionError 'Connection closed by server' on the next command)",
    http_effect="connect fails (httpx.ConnectError: connection refused) — definitely not sent; "
                "in-flight requests see a closed connection (RemoteProtocolError/ReadError)",
    planner=_plan_down,
))
_register(FaultKind(
    "blackhole", "timeout toxic 0: connections accept, data vanishes until healed",
    redis_effect="connect succeeds, commands get no reply: redis.TimeoutError after socket_timeout; "
                 "on heal every touched connection is closed (ConnectionError once, then recovers)",
    http_effect="connect succeeds, the request hangs until the client's read timeout "
                "(httpx.ReadTimeout — outcome unknown); on heal the connection is closed",
    direction_default="both", toxicity=True,
    planner=_toxic_planner("timeout", lambda p: {"timeout": 0}),
))
_register(FaultKind(
    "latency", "each data chunk delayed by latency ± jitter",
    redis_effect="every reply (downstream) or command (upstream) arrives `latency` ms later; "
                 "a socket_timeout below the latency turns into redis.TimeoutError",
    http_effect="response time grows by `latency` ms per direction (connect time unchanged); "
                "client read timeouts below it give httpx.ReadTimeout",
    params=(Param("latency", int, required=True, minimum=0, unit=_MS, doc="delay added to each chunk"),
            Param("jitter", int, default=0, minimum=0, unit=_MS, doc="uniform ± variation")),
    direction_default="downstream", toxicity=True,
    planner=_toxic_planner("latency", lambda p: {"latency": p["latency"], "jitter": p["jitter"]}),
))
_register(FaultKind(
    "bandwidth", "stream paced to `rate` KB/s",
    redis_effect="large values (bulk reads, big stream entries) take size/rate seconds; small "
                 "commands barely change",
    http_effect="large bodies download slowly; small JSON requests are little affected",
    params=(Param("rate", int, required=True, unit="KB/s", doc="bytes per second / 1000"),),
    direction_default="downstream", toxicity=True, extra_check=_check_bandwidth,
    planner=_toxic_planner("bandwidth", lambda p: {"rate": p["rate"]}),
))
_register(FaultKind(
    "slow_close", "a close by one side is held back for `delay`",
    redis_effect="no effect on commands; QUIT / server-side closes linger `delay` ms",
    http_effect="responses arrive normally; Connection: close responses end `delay` ms late "
                "(clients that read to EOF wait)",
    params=(Param("delay", int, required=True, minimum=0, unit=_MS, doc="how long a close is delayed"),),
    direction_default="downstream", toxicity=True,
    planner=_toxic_planner("slow_close", lambda p: {"delay": p["delay"]}),
))
_register(FaultKind(
    "timeout", "data dropped; the connection is closed after `timeout` ms without data",
    redis_effect="commands get no reply and the connection closes after `timeout` ms idle: "
                 "redis.ConnectionError / TimeoutError; a chatty client (keepalives) is never closed",
    http_effect="request gets no response; connection closed after `timeout` ms "
                "(httpx.RemoteProtocolError/ReadError — outcome unknown)",
    params=(Param("timeout", int, required=True, minimum=0, unit=_MS, doc="idle time before close"),),
    direction_default="both", toxicity=True, extra_check=_check_timeout,
    planner=_toxic_planner("timeout", lambda p: {"timeout": p["timeout"]}),
))
_register(FaultKind(
    "reset_peer", "first data after `timeout` ms resets the connection (TCP RST)",
    redis_effect="next command on a new connection fails with ConnectionResetError (redis.ConnectionError); "
                 "connections that existed before the fault see EOF instead of RST",
    http_effect="request fails with a reset (httpx.ReadError/RemoteProtocolError — outcome unknown "
                "if the request was sent)",
    params=(Param("timeout", int, default=0, minimum=0, unit=_MS, doc="wait before resetting"),),
    direction_default="upstream", toxicity=True,
    planner=_toxic_planner("reset_peer", lambda p: {"timeout": p["timeout"]}),
))
_register(FaultKind(
    "slicer", "data cut into small pieces with a pause between them",
    redis_effect="replies arrive in fragments; exercises the client's partial-read parsing; "
                 "adds (size / average_size) × delay µs",
    http_effect="responses arrive in fragments (slower for large bodies), parsers must reassemble",
    params=(Param("average_size", int, required=True, minimum=1, unit="bytes", doc="mean piece size"),
            Param("size_variation", int, default=0, minimum=0, unit="bytes", doc="± variation, < average_size"),
            Param("delay", int, default=0, minimum=0, unit="µs", doc="pause between pieces (microseconds)")),
    direction_default="downstream", toxicity=True, extra_check=_check_slicer,
    planner=_toxic_planner("slicer", lambda p: {"average_size": p["average_size"],
                                                "size_variation": p["size_variation"], "delay": p["delay"]}),
))
_register(FaultKind(
    "limit_data", "connection closed after `bytes` bytes",
    redis_effect="a connection dies once it carried `bytes` (ConnectionError mid-reply); reconnects "
                 "get a fresh budget",
    http_effect="responses truncated then closed (httpx.RemoteProtocolError: incomplete body)",
    params=(Param("bytes", int, required=True, minimum=0, unit="bytes", doc="budget per connection"),),
    direction_default="downstream", toxicity=True,
    planner=_toxic_planner("limit_data", lambda p: {"bytes": p["bytes"]}),
))
_register(FaultKind(
    "flap", "down for `down` s, up for `period - down` s, repeating",
    redis_effect="alternating refused/closed connections and recoveries; pools churn, breakers "
                 "may oscillate open/half-open",
    http_effect="alternating connection refused and success windows",
    params=(Param("period", float, required=True, minimum=0.1, unit="s", doc="length of one down+up cycle"),
            Param("down", float, minimum=0.05, unit="s", doc="down part of each cycle (default period/2)")),
    extra_check=_check_flap, planner=_plan_flap,
))
_register(FaultKind(
    "ramp", "latency stepped from `start` to `end` ms by updating the toxic in place",
    redis_effect="replies get slower step by step; finds the latency where timeouts begin",
    http_effect="response time rises step by step until client timeouts trigger",
    params=(Param("start", int, required=True, minimum=0, unit=_MS, doc="first latency"),
            Param("end", int, required=True, minimum=0, unit=_MS, doc="last latency"),
            Param("steps", int, default=5, minimum=2, maximum=1000, doc="number of latency values"),
            Param("jitter", int, default=0, minimum=0, unit=_MS, doc="uniform ± variation")),
    direction_default="downstream", toxicity=True, extra_check=_check_ramp, planner=_plan_ramp,
))


# The process kinds (kill, pause, restart) register themselves into KINDS.
from kugeldrill.chaos import process_faults as _process_faults  # noqa: E402,F401


def get_kind(name: Any, where: str) -> FaultKind:
    """The kind named `name`, or ConfigError listing the vocabulary."""
    if name not in KINDS:
        raise ConfigError(f"{where}.kind {name!r} is not a fault kind (known: {', '.join(KINDS)})")
    return KINDS[name]


def validate_duration(raw: Any, where: str, field_name: str = "for",
                      maximum: float = MAX_FAULT_SECONDS) -> float:
    """Every fault is bounded: `for` is required, positive and at most `maximum` seconds."""
    return Param(field_name, float, required=True, minimum=0.0, exclusive_min=True, maximum=maximum,
                 unit="s").parse(raw, where)
