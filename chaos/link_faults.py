"""Faults on a link, through Toxiproxy: toxics added and removed, a proxy disabled and enabled.

Direction follows Toxiproxy: `upstream` = bytes from the client to the server (requests,
Redis commands), `downstream` = server to client (responses, replies), `both` = one toxic
per stream. Toxicity is a per-connection probability (rolled when a connection's toxic
chain starts or is rebuilt), not per request. Toxics are named
`kugeldrill.<fault id>.<up|down>`, so `kugeldrill heal` finds them after a crash.

* `ToxicFault` — one toxic per stream for the fault's length (latency, timeout, ...);
* `RampFault` — a latency toxic updated in place step by step;
* `DisableFault` — the proxy disabled (listener closed, live connections closed);
* `FlapFault` — disabled and enabled again on a period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from kugeldrill.chaos.fault import APPLY, HEAL, Fault, FaultContext, Step
from kugeldrill.chaos.kinds import FaultKind
from kugeldrill.chaos.links import PREFIX
from kugeldrill.chaos.event import FaultEvent
from kugeldrill.chaos.record import PlannedFault
from kugeldrill.chaos.toxiproxy import NotFound, Proxy, ToxiproxyClient, ToxiproxyError, version_tuple
from kugeldrill.ground.errors import DrillError

_STREAM_SHORT = {"upstream": "up", "downstream": "down"}


def streams_of(direction: str) -> list[str]:
    return ["upstream", "downstream"] if direction == "both" else [direction]


def toxic_names(fault_id: str, direction: str) -> list[str]:
    """`kugeldrill.<fault id>.<up|down>` for each stream the fault acts on."""
    return [f"{PREFIX}{fault_id}.{_STREAM_SHORT[s]}" for s in streams_of(direction)]


class LinkFault(Fault):
    """A fault on one Toxiproxy proxy; the timeline gives the client in its context."""

    def __init__(self, planned: PlannedFault, kind: FaultKind, ctx: FaultContext) -> None:
        super().__init__(planned, kind, ctx)
        if planned.proxy is None:
            raise ValueError(f"{planned.id}: a link fault needs a link")
        self.proxy: str = planned.proxy

    @property
    def client(self) -> ToxiproxyClient:
        if self.ctx.toxiproxy is None:
            raise DrillError(f"fault {self.record.id} on link {self.planned.link} has no Toxiproxy API to act through")
        return self.ctx.toxiproxy

    @property
    def resource(self) -> str:
        return self.proxy

    @property
    def toxic_id(self) -> str:
        """The fault id as used in toxic names (a selector's `<id>:<link>`: the link is the proxy)."""
        return str(self.planned.id).split(":", 1)[0]

    def toxics(self) -> list[str]:
        return toxic_names(self.toxic_id, self.planned.params.get("direction", "downstream"))

    def _state(self) -> Proxy | None:
        try:
            return self.client.get_proxy(self.proxy)
        except NotFound:
            return None

    def observe(self) -> list[str]:
        proxy = self._state()
        if proxy is None:
            return []  # the proxy itself is gone (a torn-down stack): nothing of the fault is left
        mine = set(self.toxics())
        return [f"toxic {t.name} on {self.proxy}" for t in proxy.toxics if t.name in mine]

    def _step_event(self, label: str, run: Callable[[], None]) -> None:
        """An intermediate step, recorded with its time and error (the fault goes on)."""
        event = FaultEvent(label, time.time(), time.monotonic())
        try:
            run()
        except ToxiproxyError as exc:
            event.error = str(exc)
            self.note_error(label, exc)
        self.record.events.append(event)


class ToxicFault(LinkFault):
    """One toxic per stream (`type`, attributes from the params) for the fault's length."""

    def __init__(self, planned: PlannedFault, kind: FaultKind, ctx: FaultContext, *, toxic: str,
                 attributes: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__(planned, kind, ctx)
        self.toxic = toxic
        self.attributes = attributes

    def apply(self) -> None:
        self.add(self.attributes(self.planned.params))

    def add(self, attributes: dict[str, Any]) -> None:
        params = self.planned.params
        for stream, name in zip(streams_of(params["direction"]), self.toxics()):
            self.client.add_toxic(self.proxy, type=self.toxic, stream=stream, toxicity=params.get("toxicity", 1.0),
                                  attributes=attributes, name=name)

    def heal(self) -> None:
        for name in self.toxics():
            try:
                self.client.remove_toxic(self.proxy, name)
            except NotFound:
                pass  # already gone: healing is idempotent


def ramp_values(params: dict[str, Any], duration: float) -> list[tuple[float, int]]:
    """(offset, latency ms) for each ramp step: evenly spaced, from `start` to `end`."""
    n = params["steps"]
    start, end = params["start"], params["end"]
    return [(duration * i / n, int(round(start + (end - start) * i / (n - 1)))) for i in range(n)]


class RampFault(ToxicFault):
    """A latency toxic stepped from `start` to `end` ms, updated in place (no re-roll of
    toxicity, no disconnect between steps)."""

    def __init__(self, planned: PlannedFault, kind: FaultKind, ctx: FaultContext) -> None:
        super().__init__(planned, kind, ctx, toxic="latency", attributes=self._first)
        self.values = ramp_values(planned.params, planned.duration)

    def _first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"latency": self.values[0][1], "jitter": params.get("jitter", 0)}

    def steps(self) -> list[Step]:
        return [Step(0.0, APPLY), *(Step(offset, f"latency={v}") for offset, v in self.values[1:]),
                Step(self.planned.duration, HEAL)]

    def act(self, label: str) -> None:
        value = int(label.split("=", 1)[1])

        def update() -> None:
            for name in self.toxics():
                self.client.update_toxic(self.proxy, name, attributes={"latency": value})

        self._step_event(label, update)


class DisableFault(LinkFault):
    """The proxy disabled: its listener closed and live connections closed; healed by enabling it."""

    def apply(self) -> None:
        self.client.update_proxy(self.proxy, enabled=False)

    def heal(self) -> None:
        self.client.update_proxy(self.proxy, enabled=True)

    def toxics(self) -> list[str]:
        return []

    def observe(self) -> list[str]:
        proxy = self._state()
        return [f"proxy {self.proxy} disabled"] if proxy is not None and not proxy.enabled else []


class FlapFault(DisableFault):
    """Down for `down` s, up for `period - down` s, repeating; up again at the end."""

    def steps(self) -> list[Step]:
        period, down, duration = self.planned.params["period"], self.planned.params["down"], self.planned.duration
        steps = [Step(0.0, APPLY)]
        start = 0.0
        while True:
            up_at, next_down = start + down, start + period
            if up_at >= duration - 1e-9:
                break
            steps.append(Step(up_at, "up"))
            if next_down >= duration - 1e-9:
                break
            steps.append(Step(next_down, "down"))
            start = next_down
        return [*steps, Step(duration, HEAL)]

    def act(self, label: str) -> None:
        self._step_event(label, self.apply if label == "down" else self.heal)


def preflight_links(client: ToxiproxyClient, faults: Iterable[Fault]) -> None:
    """Before anything is applied: every link fault's proxy exists, and the server is new enough
    for the toxics used. Raises DrillError naming what is wrong."""
    links = [f for f in faults if isinstance(f, LinkFault)]
    if not links:
        return
    existing = client.proxies()
    missing = sorted({f.proxy for f in links} - set(existing))
    if missing:
        raise DrillError(f"Toxiproxy {client.api} has no proxy {', '.join(missing)}",
                         hint="create the links first (LinkMap.ensure, or 'kugeldrill stack up')")
    version = version_tuple(client.version())
    for fault in links:
        need = fault.kind.min_server
        if version and need and version < need:
            raise DrillError(f"fault {fault.record.id}: kind {fault.kind.name!r} needs Toxiproxy >= "
                             f"{'.'.join(map(str, need))}, server {client.api} is {'.'.join(map(str, version))}")
