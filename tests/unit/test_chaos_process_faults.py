"""Process faults on the timeline: validation, the plan of each kind, and how the timeline runs,
records and heals them — against a recording ProcessControl (no real process here; the
stand-in's real processes are in tests/integration/test_process_faults.py)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from kugeldrill.chaos import lease as lease_mod
from kugeldrill.chaos.fault import FaultContext
from kugeldrill.chaos.kinds import get_kind
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.plan import plan
from kugeldrill.chaos.process_faults import ProcessFault
from kugeldrill.chaos.processes import ProcessControl, select_targets
from kugeldrill.chaos.record import PlannedFault
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.processes import ProcessActionError, ProcessResult

TARGETS = ["redis", "sidecar@cart", "sidecar@journal", "app@cart", "app@journal"]


class Recorder:
    """A ProcessControl that records calls and keeps a pid per target (a small unit-test fake)."""

    description = "a recording fake"

    def __init__(self, missing: dict[str, list[str]] | None = None, fail: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, str]] = []
        self.pids = {t: 100 + i for i, t in enumerate(TARGETS)}
        self.running = dict.fromkeys(TARGETS, True)
        self.stopped: set[str] = set()
        self.missing = missing or {}
        self.fail = fail
        self.ready_calls: list[str] = []
        self.lock = threading.Lock()

    def targets(self) -> list[str]:
        return list(TARGETS)

    def missing_actions(self, target: str, actions: Any) -> list[str]:
        return [a for a in actions if a in self.missing.get(target, [])]

    def _do(self, target: str, action: str) -> None:
        with self.lock:
            self.calls.append((action, target))
        if action in self.fail:
            raise ProcessActionError(f"{target}: {action} failed on purpose")

    def _pids(self, target: str) -> list[int]:
        return [self.pids[target]] if self.running[target] else []

    def pids(self, target: str) -> list[int]:  # type: ignore[override]
        return self._pids(target)

    def kill(self, target: str) -> ProcessResult:
        before = tuple(self._pids(target))
        self._do(target, "kill")
        self.running[target] = False
        return ProcessResult(target, "kill", before, ())

    def pause(self, target: str) -> ProcessResult:
        self._do(target, "pause")
        self.stopped.add(target)
        return ProcessResult(target, "pause", tuple(self._pids(target)), tuple(self._pids(target)))

    def resume(self, target: str) -> ProcessResult:
        self._do(target, "resume")
        if target not in self.stopped:
            return ProcessResult(target, "resume", (), (), outcome="already")
        self.stopped.discard(target)
        return ProcessResult(target, "resume", tuple(self._pids(target)), tuple(self._pids(target)))

    def stop(self, target: str, grace: float) -> ProcessResult:
        before = tuple(self._pids(target))
        self._do(target, "stop")
        self.running[target] = False
        return ProcessResult(target, "stop", before, (), facts={"grace": grace})

    def start(self, target: str) -> ProcessResult:
        self._do(target, "start")
        if self.running[target]:
            return ProcessResult(target, "start", tuple(self._pids(target)), tuple(self._pids(target)), outcome="already")
        old = self.pids[target]
        self.pids[target] = old + 1000
        self.running[target] = True
        return ProcessResult(target, "start", (old,), (self.pids[target],))

    def wait_ready(self, target: str, timeout: float) -> str | None:
        self.ready_calls.append(target)
        return None

    def problems(self, targets: Any) -> list[str]:
        return [f"process {t} is not running" for t in targets if not self.running[t]] + \
               [f"process {t} is stopped" for t in targets if t in self.stopped]

    def lease_entry(self, target: str, need: str) -> dict[str, Any]:
        return {"target": target, "need": need, "do": "command", "argv": ["true"]}


def entry(**kw: Any) -> dict[str, Any]:
    base = {"at": 0, "for": 1, "process": "app@journal", "kind": "kill"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_recorder_is_a_process_control() -> None:
    assert isinstance(Recorder(), ProcessControl)


@pytest.mark.parametrize("selector,expected", [
    ("redis", ["redis"]),
    ("app@*", ["app@cart", "app@journal"]),
    ("*@journal", ["sidecar@journal", "app@journal"]),
    ("sidecar@cart, redis", ["redis", "sidecar@cart"]),
])
def test_process_selectors(selector: str, expected: list[str]) -> None:
    assert select_targets(selector, TARGETS) == expected


@pytest.mark.parametrize("selector,message", [
    ("app@stock", "matches no process"),
    ("postgres", "must be 'redis'"),
    ("", "non-empty"),
])
def test_bad_process_selectors(selector: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_targets(selector, TARGETS)


def fault_of(planned: PlannedFault) -> ProcessFault:
    fault = get_kind(planned.kind, "").build(planned, FaultContext(processes=Recorder()))
    assert isinstance(fault, ProcessFault)
    return fault


def test_kill_plan_restart_after_and_immediately() -> None:
    (after,) = plan([entry(**{"for": 5})], None, processes=Recorder())
    assert after.params == {"restart": "after"}
    kill = fault_of(after)
    assert [(s.offset, s.label) for s in kill.steps()] == [(0.0, "apply"), (5.0, "heal")]
    assert (kill.apply_actions(), kill.heal_action) == ([("kill", {})], "start")
    (now,) = plan([entry(restart="immediately", **{"for": 5})], None, processes=Recorder())
    assert fault_of(now).apply_actions() == [("kill", {}), ("start", {})]


def test_kill_every_repeats_inside_the_fault() -> None:
    (f,) = plan([entry(every=2, **{"for": 7})], None, processes=Recorder())
    assert f.params["restart"] == "immediately"
    assert [(s.offset, s.label) for s in fault_of(f).steps()] == [
        (0.0, "apply"), (2.0, "kill"), (4.0, "kill"), (6.0, "kill"), (7.0, "heal")]


def test_pause_and_restart_plans() -> None:
    (p,) = plan([entry(kind="pause", process="redis")], None, processes=Recorder())
    assert (fault_of(p).apply_actions(), fault_of(p).heal_action) == ([("pause", {})], "resume")
    (r,) = plan([entry(kind="restart", process="sidecar@cart", grace=2.5)], None, processes=Recorder())
    assert r.params == {"grace": 2.5, "restart": "immediately"}
    assert fault_of(r).apply_actions() == [("stop", {"grace": 2.5}), ("start", {})]


@pytest.mark.parametrize("extra,message", [
    ({"every": 1, "uptime": 1}, "not both"),
    ({"every": 1, "restart": "after"}, "restarts at once"),
    ({"every": 3}, "shorter than the fault"),
    ({"restart": "sometimes"}, "restart must be one of after, immediately"),
    ({"latency": 5}, "not a parameter of fault kind 'kill'"),
    ({"every": 0.1}, "every must be at least 0.5"),
])
def test_bad_process_parameters(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan([entry(**{"for": 3}, **extra)], None, processes=Recorder())


def test_subject_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"faults\[0\].link: fault kind 'kill' acts on a process"):
        plan([entry(process=None, link="redis@cart")], None, processes=Recorder())
    with pytest.raises(ConfigError, match=r"faults\[0\].process: fault kind 'down' acts on a link"):
        plan([entry(kind="down")], LinkMap([Link("redis@cart", "127.0.0.1:1", "127.0.0.1:2")]))
    with pytest.raises(ConfigError, match=r"faults\[0\].process is missing"):
        plan([entry(process=None)], None, processes=Recorder())


def test_process_faults_need_a_controller_that_can_act() -> None:
    with pytest.raises(ConfigError, match="no process control is available"):
        plan([entry()], None)
    with pytest.raises(ConfigError, match="on process app@journal needs the action.s. start, which a recording fake"):
        plan([entry()], None, processes=Recorder(missing={"app@journal": ["start"]}))


def test_one_fault_per_process_at_a_time() -> None:
    with pytest.raises(ConfigError, match="overlaps faults\\[0\\].*on process app@journal"):
        plan([entry(**{"for": 5}), entry(kind="pause", at=2)], None, processes=Recorder())
    back_to_back = plan([entry(**{"for": 2}), entry(kind="pause", at=2), entry(process="app@cart")], None,
                        processes=Recorder())
    assert [f.id for f in back_to_back] == ["f1", "f2", "f3"]


def test_selector_over_several_processes_yields_one_fault_each() -> None:
    faults = plan([entry(id="crash", process="app@*")], None, processes=Recorder())
    assert [(f.id, f.process) for f in faults] == [("crash:app@cart", "app@cart"), ("crash:app@journal", "app@journal")]


def run_timeline(spec: list[dict[str, Any]], ctl: Recorder, tmp_path, **kw: Any) -> tuple[Timeline, dict[str, Any]]:
    tl = Timeline(spec, None, None, processes=ctl, out=tmp_path / "timeline.json", watchdog=False, **kw)
    report = tl.run()
    tl.wait_ready_recorded(5)
    tl._write()  # noqa: SLF001 - the readiness threads rewrite it; take the final state
    assert report.ok, report.remaining
    return tl, json.loads((tmp_path / "timeline.json").read_text())


def test_kill_is_applied_recorded_and_healed(tmp_path) -> None:
    ctl = Recorder()
    tl, doc = run_timeline([entry(id="k", **{"for": 0.3})], ctl, tmp_path)
    assert ctl.calls == [("kill", "app@journal"), ("start", "app@journal")]
    (f,) = doc["faults"]
    assert f["process"] == "app@journal" and f["link"] is None and f["proxy"] is None
    assert f["status"] == "healed" and f["error"] is None and doc["api"] is None
    assert f["pids"] == {"before": [104], "after": [1104]}
    assert [e["action"] for e in f["events"]] == ["kill", "start"]
    kill, start = f["events"]
    assert kill["mono"] == f["applied_mono"] and start["mono"] <= f["healed_mono"]
    assert start["ready_mono"] >= start["mono"] and ctl.ready_calls == ["app@journal"]
    assert tl.heal_report is not None and tl.heal_report.remaining == []


def test_pause_resumes_when_stopped_early(tmp_path) -> None:
    ctl = Recorder()
    tl = Timeline([entry(kind="pause", process="redis", **{"for": 60})], None, None, processes=ctl, watchdog=False)
    tl.start()
    assert tl.wait_applied(timeout=5)
    assert ctl.stopped == {"redis"}
    report = tl.stop()
    assert report.ok and ctl.stopped == set()
    (f,) = tl.faults
    assert f.status == "healed" and f.stopped_early and [e.action for e in f.events] == ["pause", "resume"]


def test_a_failed_apply_is_recorded_and_still_healed(tmp_path) -> None:
    ctl = Recorder(fail={"kill"})
    tl = Timeline([entry(**{"for": 0.2})], None, None, processes=ctl, watchdog=False)
    tl.run()
    (f,) = tl.faults
    assert f.status == "failed" and f.applied_mono is None and "kill failed on purpose" in f.error
    assert ("start", "app@journal") in ctl.calls  # the heal ran anyway (idempotent: already running)


def test_heal_failure_leaves_the_fault_unhealed_and_reported(tmp_path) -> None:
    ctl = Recorder()
    tl = Timeline([entry(**{"for": 60})], None, None, processes=ctl, watchdog=False)
    tl.start()
    assert tl.wait_applied(timeout=5)
    ctl.fail = {"start"}
    report = tl.stop()
    assert not report.ok and report.remaining == ["process app@journal is not running"]
    assert tl.faults[0].healed_mono is None and "start failed on purpose" in tl.faults[0].error


def test_observer_sees_before_and_after(tmp_path) -> None:
    seen: list[tuple[str, str]] = []

    def observe(target: str, phase: str) -> dict[str, Any] | None:
        seen.append((target, phase))
        return {"keys": len(seen)} if target == "redis" else None

    _, doc = run_timeline([entry(process="redis", restart="immediately", **{"for": 0.3}),
                           entry(kind="pause", at=0, **{"for": 0.3})], Recorder(), tmp_path, observe=observe)
    assert sorted(seen) == [("app@journal", "after"), ("app@journal", "before"), ("redis", "after"), ("redis", "before")]
    redis = next(f for f in doc["faults"] if f["process"] == "redis")
    assert [o["phase"] for o in redis["observations"]] == ["before", "after"]
    assert next(f for f in doc["faults"] if f["process"] == "app@journal")["observations"] == []


def test_uptime_kills_again_after_each_restart_answers(tmp_path) -> None:
    ctl = Recorder()
    _, doc = run_timeline([entry(uptime=0.2, **{"for": 1.2})], ctl, tmp_path)
    kills = [c for c in ctl.calls if c[0] == "kill"]
    assert 3 <= len(kills) <= 6, ctl.calls  # 0, ~0.2, ~0.4, ... stopping uptime/2 before the end
    (f,) = doc["faults"]
    monos = [e["mono"] for e in f["events"] if e["action"] == "kill"]
    assert all(b - a >= 0.2 for a, b in zip(monos, monos[1:]))
    assert f["status"] == "healed" and ctl.running["app@journal"]


def test_lease_holds_an_entry_while_a_process_fault_is_active(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lease_mod, "spawn_watchdog", lambda lease, log: None)
    ctl = Recorder()
    tl = Timeline([entry(id="crash", **{"for": 60})], None, None, processes=ctl, out=tmp_path / "timeline.json")
    tl.start()
    assert tl.wait_applied(timeout=5)
    lease_path = next(tmp_path.glob(".chaos-lease-*.json"))
    lease = json.loads(lease_path.read_text())
    assert lease["api"] is None and lease["proxies"] == []
    assert lease["processes"] == {"crash": {"target": "app@journal", "need": "start", "do": "command", "argv": ["true"]}}
    tl.stop()
    assert not lease_path.exists()  # healed: released and removed


def test_stop_waits_for_a_step_with_a_grace_period(tmp_path) -> None:
    tl = Timeline([entry(kind="restart", grace=30)], None, None, processes=Recorder(), watchdog=False)
    assert tl._step_limit() >= 35  # noqa: SLF001


def test_mixed_link_and_process_faults_need_a_toxiproxy_only_for_links() -> None:
    with pytest.raises(ConfigError, match="link faults but no Toxiproxy API"):
        Timeline([{"at": 0, "for": 1, "link": "redis@cart", "kind": "down"}, entry()],
                 LinkMap([Link("redis@cart", "127.0.0.1:1", "127.0.0.1:2")]), None, processes=Recorder())


def test_preflight_refuses_targets_that_are_not_healthy() -> None:
    ctl = Recorder()
    ctl.stopped.add("app@journal")
    tl = Timeline([entry()], None, None, processes=ctl, watchdog=False)
    with pytest.raises(Exception, match="not healthy before any fault: process app@journal is stopped"):
        tl.start()
    assert ctl.calls == []


def test_status_lists_process_faults() -> None:
    tl = Timeline([entry(at=30)], None, None, processes=Recorder(), watchdog=False)
    tl.start()
    try:
        time.sleep(0.05)
        (up,) = tl.status()["upcoming"]
        assert up["link"] == "app@journal" and up["process"] is True
    finally:
        tl.stop()


def test_throttle_freezes_part_of_every_period(tmp_path) -> None:
    """The kind added through the README's worked example: one class and one registration."""
    (f,) = plan([entry(kind="throttle", process="redis", period=0.4, stopped=0.1, **{"for": 1.0})], None,
                processes=Recorder())
    assert [(s.offset, s.label) for s in fault_of(f).steps()] == [
        (0.0, "apply"), (0.1, "run"), (0.4, "freeze"), (0.5, "run"), (0.8, "freeze"), (0.9, "run"), (1.0, "heal")]
    ctl = Recorder()
    _, doc = run_timeline([entry(kind="throttle", process="redis", period=0.4, stopped=0.1, **{"for": 1.0})],
                          ctl, tmp_path)
    assert ctl.calls == [(a, "redis") for a in ("pause", "resume") * 3 + ("resume",)]  # the heal finds it running
    (rec,) = doc["faults"]
    assert rec["status"] == "healed" and not ctl.stopped and len(rec["events"]) == 7
    with pytest.raises(ConfigError, match="stopped .* must be shorter than .*period"):
        plan([entry(kind="throttle", process="redis", period=0.4, stopped=0.4)], None, processes=Recorder())
    with pytest.raises(ConfigError, match="stopped must be at most 2"):
        plan([entry(kind="throttle", process="redis", period=5, stopped=3, **{"for": 10})], None, processes=Recorder())
