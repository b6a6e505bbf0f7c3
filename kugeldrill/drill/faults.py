"""The drill's faults as one resource: the timeline, the links it needs, and the one heal.

Entered in the drill's "links" phase, it builds the scenario's timeline (with the
environment's process control and the Redis observer when there are process faults) and
makes sure the links exist. Whatever happens afterwards, leaving it heals — through the one
heal path (`chaos.heal.heal`) — the timeline's faults and the environment's share together
(its links, and its processes when the drill has process faults), and puts what could not
be healed into the run summary's `unhealed`, where the verdict shows it. The drill's own
heal phase calls the same `heal()`.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from kugeldrill.chaos.heal import HealReport, heal
from kugeldrill.chaos.timeline import Timeline, write_empty_timeline
from kugeldrill.drill.env import DrillEnvironment
from kugeldrill.drill.observe import redis_observer
from kugeldrill.ground.errors import DrillError
from kugeldrill.reports.summary import RunSummary
from kugeldrill.scenario_schema import Scenario


class DrillFaults:
    """The scenario's faults against one environment; a context manager that heals on exit."""

    def __init__(self, scenario: Scenario, env: DrillEnvironment, out: Path, summary: RunSummary) -> None:
        self.env = env
        self.summary = summary
        self.out = out
        self.process_targets: list[str] = []
        self.timeline = self._timeline(scenario) if scenario.faults else None
        if self.timeline is not None and self.timeline.proxies:
            try:
                env.ensure_links(env.link_map())
            except BaseException:
                self.timeline.close()
                raise

    def _timeline(self, sc: Scenario) -> Timeline:
        env = self.env
        links = [f for f in sc.faults if f.link is not None]
        api = env.toxiproxy_api()
        if links and not api:
            raise DrillError(f"scenario {sc.name} has link faults but {env.description} has no Toxiproxy API")
        processes = None
        if any(f.is_process for f in sc.faults):
            processes = env.process_control()
            if processes is None:
                raise DrillError(f"scenario {sc.name} has process faults but {env.description} names no process "
                                 "commands", hint="add a 'processes:' section to the target file "
                                                  "(kill/pause/resume/stop/start command templates)")
        timeline = Timeline(sc.faults, env.link_map(), api if links else None, processes=processes,
                            observe=redis_observer(env.redis_url, env.allow_hosts) if processes else None,
                            out=self.out)
        self.process_targets = timeline.process_targets
        return timeline

    def start(self, t0_wall: float, t0_mono: float) -> None:
        """The schedule from the load's first operation; without faults, still the run's clock."""
        if self.timeline is not None:
            self.timeline.start(t0_mono=t0_mono)
        else:
            write_empty_timeline(self.out, t0_wall, t0_mono)

    def status(self) -> dict[str, Any]:
        return self.timeline.status() if self.timeline is not None else {}

    def heal(self) -> HealReport:
        """The timeline's faults and the environment's links and processes, healed in one call;
        what is left becomes the summary's `unhealed`."""
        parts = self.env.heal_parts(self.process_targets)
        if self.timeline is None:
            report = heal(parts)
        else:
            with self.timeline.halted():
                report = self.timeline.finish(heal([*self.timeline.heal_parts(), *parts]))
        self.summary.unhealed = list(report.remaining)
        return report

    def forget(self) -> None:
        """The environment was torn down (a stand-in): what it held is gone, and so is the need
        for the timeline's watchdog (its ports may be someone else's by now)."""
        if self.timeline is not None:
            self.timeline.release_watchdog()

    def __enter__(self) -> DrillFaults:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.heal()
        except Exception as err:  # noqa: BLE001 - an unknown state is not healed
            self.summary.unhealed.append(f"heal failed: {type(err).__name__}: {err}")
        finally:
            if self.timeline is not None:
                self.timeline.close()
