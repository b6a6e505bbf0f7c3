"""The fault timeline: a schedule of faults, validated up front, run beside the load.

Schema (a scenario embeds it under `faults:`; a bare list is accepted too)::

    faults:
      - id: redis-cut          # optional, default f<N>; letters, digits, - and _
        at: 5                  # seconds after the timeline starts (>= 0)
        for: 10                # seconds (> 0, bounded): every fault ends
        link: redis@cart       # selector: redis@cart, redis@*, *@journal, a,b
        kind: latency          # see chaos.faults.KINDS
        latency: 200           # kind parameters, inline ...
        params: {jitter: 20}   # ... or under params (not both for one key)
      - at: 8
        for: 4
        process: app@journal   # process kinds (kill, pause, restart) name a process target
        kind: kill             # instead of a link: redis, sidecar@X, app@X, app@*, ...
        restart: immediately

Everything is checked before anything is applied — unknown kind, missing or unknown
parameter, negative or missing duration, a selector matching nothing, a non-loopback
link, two faults overlapping on one link — and the ConfigError names the entry and
field (`faults[2].latency is required ...`).

Running: `start()` spawns a background thread (and, by default, a watchdog process)
that performs each fault's steps at `t0 + at + offset` on the monotonic clock;
`stop()` heals everything now; `wait()` blocks until the schedule is done. Every
change rewrites `timeline.json` (contracts §5) atomically, so a crash keeps what
happened. A selector matching several links (or process targets) yields one entry per
link (target), with id `<id>:<link>`.

Process faults need a `ProcessControl` (chaos.processes), given as `processes=`; each of
their actions is recorded as an event with the pids before and after, a restarted
target's readiness is recorded when it answers, and an `observe(target, phase)` callback
may add measurements (e.g. what a Redis restart lost) before the fault and after restarts.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.chaos.faults import (MAX_FAULT_SECONDS, FaultKind, Param, ProcessStep, Step, get_kind,
                                     validate_duration)
from kugeldrill.chaos.heal import HealReport, heal_all
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.processes import ProcessControl, select_targets
from kugeldrill.chaos.toxiproxy import ToxiproxyClient, ToxiproxyError, version_tuple
from kugeldrill.chaos import watchdog as watchdog_mod
from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.ground.jsonfile import write_json_atomic
from kugeldrill.ground.processes import ProcessResult

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENTRY_KEYS = ("id", "at", "for", "link", "process", "kind", "params")
READY_TIMEOUT = 60.0  # seconds a restarted process target may take to answer its health probe
Observer = Callable[[str, str], "dict[str, Any] | None"]  # (target, "before" | "after") -> measurements
# Toxic types newer than Toxiproxy 2.0 (CHANGELOG): the server must have them.
MIN_SERVER: dict[str, tuple[int, ...]] = {"reset_peer": (2, 2, 0), "limit_data": (2, 1, 0)}


@dataclass
class PlannedFault:
    """One fault on one link (or one process target), with its steps and what actually happened."""

    id: str
    spec_id: str
    index: int
    link: Link | None
    kind: FaultKind
    params: dict[str, Any]
    at: float
    duration: float
    steps: list[Step] = field(default_factory=list)
    status: str = "pending"  # pending, active, healed, failed, skipped
    applied_wall: float | None = None
    applied_mono: float | None = None
    healed_wall: float | None = None
    healed_mono: float | None = None
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    process: str | None = None  # the process target of a process fault (link is None then)
    observations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end(self) -> float:
        return self.at + self.duration

    @property
    def is_process(self) -> bool:
        return self.process is not None

    @property
    def subject(self) -> str:
        """The link or process target the fault acts on (for messages and the console)."""
        return self.process if self.process is not None else self.link.name  # type: ignore[union-attr]

    @property
    def resource(self) -> str:
        """What one fault at a time may hold: a proxy, or a process target."""
        return f"process:{self.process}" if self.process is not None else self.link.proxy  # type: ignore[union-attr]

    def record(self) -> dict[str, Any]:
        """The timeline.json entry (contracts §5, plus status/events for reports).

        A process fault has `process` instead of `link`/`proxy` (both null), its actions
        (with pids before and after) in `events`, `pids` {before, after} and, when an
        observer measured something, `observations`."""
        out = {
            "id": self.id, "link": self.link.name if self.link else None, "proxy": self.link.proxy if self.link else None,
            "kind": self.kind.name,
            "params": dict(self.params), "at": self.at, "for": self.duration,
            "applied_wall": self.applied_wall, "applied_mono": self.applied_mono,
            "healed_wall": self.healed_wall, "healed_mono": self.healed_mono,
            "error": self.error, "status": self.status, "stopped_early": self.stopped_early,
            "events": [dict(e) for e in self.events],
        }
        if self.process is not None:
            acts = [e for e in self.events if e.get("pids_before") is not None]
            out["process"] = self.process
            out["pids"] = {"before": acts[0]["pids_before"] if acts else None,
                           "after": acts[-1]["pids_after"] if acts else None}
            out["observations"] = [dict(o) for o in self.observations]
        return out


def _entries(spec: Any) -> list[Any]:
    if isinstance(spec, Mapping):
        unknown = [k for k in spec if k != "faults"]
        if unknown:
            raise ConfigError(f"fault timeline has unknown key(s) {', '.join(map(str, unknown))} (expected 'faults')")
        spec = spec.get("faults")
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise ConfigError(f"faults must be a list of fault entries, got {type(spec).__name__}")
    return spec


def plan(spec: Any, links: LinkMap | None, *, allow_hosts: Iterable[str] | None = None,
         max_fault_seconds: float = MAX_FAULT_SECONDS,
         processes: ProcessControl | None = None) -> list[PlannedFault]:
    """Validate a timeline spec against the links and process targets; nothing applied.

    Scenario loaders call this at parse time to report errors before a stack starts.
    """
    links = links if links is not None else LinkMap([])
    allow = tuple(links.allow_hosts if allow_hosts is None else allow_hosts)
    planned: list[PlannedFault] = []
    seen_ids: set[str] = set()
    for i, entry in enumerate(_entries(spec)):
        where = f"faults[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with at, for, link (or process) and kind, got {entry!r}")
        spec_id = entry.get("id", f"f{i + 1}")
        if not isinstance(spec_id, str) or not _ID_RE.match(spec_id):
            raise ConfigError(f"{where}.id must be 1-64 letters, digits, '-' or '_', got {spec_id!r}")
        if spec_id in seen_ids:
            raise ConfigError(f"{where}.id {spec_id!r} is used twice")
        seen_ids.add(spec_id)
        for key in ("kind", "at", "for"):
            if key not in entry:
                raise ConfigError(f"{where}.{key} is missing (every fault needs at, for, link or process, and kind)")
        kind = get_kind(entry["kind"], where)
        subject_key = "process" if kind.acts_on == "process" else "link"
        other_key = "link" if subject_key == "process" else "process"
        if other_key in entry:
            raise ConfigError(f"{where}.{other_key}: fault kind {kind.name!r} acts on a {subject_key}, "
                              f"not a {other_key}; give '{subject_key}:' instead",
                              hint="process kinds (kill, pause, restart) take process: redis | sidecar@X | app@X; "
                                   "link kinds take link: redis@X | sidecar@X | app@X")
        if subject_key not in entry:
            raise ConfigError(f"{where}.{subject_key} is missing (fault kind {kind.name!r} needs a {subject_key})")
        at = Param("at", float, minimum=0.0, unit="s").parse(entry["at"], where)
        duration = validate_duration(entry["for"], where, maximum=max_fault_seconds)
        raw_params: dict[str, Any] = {}
        if "params" in entry:
            if not isinstance(entry["params"], Mapping):
                raise ConfigError(f"{where}.params must be a mapping, got {type(entry['params']).__name__}")
            raw_params.update(entry["params"])
        for key, value in entry.items():
            if key in _ENTRY_KEYS:
                continue
            if key in raw_params:
                raise ConfigError(f"{where}.{key} is given both inline and under params")
            raw_params[key] = value
        params = kind.validate(raw_params, duration, where)
        if kind.acts_on == "process":
            planned += _plan_process(entry, where, spec_id, i, kind, params, at, duration, processes)
            continue
        try:
            targets = links.select(entry["link"])
        except ConfigError as err:
            raise ConfigError(f"{where}.link: {err}") from None
        for link in targets:
            try:
                link.check_loopback(allow)
            except DrillError as err:
                raise ConfigError(f"{where}.link: {err}", hint=err.hint) from None
            fid = spec_id if len(targets) == 1 else f"{spec_id}:{link.name}"
            fault = PlannedFault(fid, spec_id, i, link, kind, params, at, duration)
            fault.steps = kind.plan(params, duration, link.proxy, _toxic_id(fid))
            planned.append(fault)
    _check_overlaps(planned)
    return planned


def _plan_process(entry: Mapping[str, Any], where: str, spec_id: str, index: int, kind: FaultKind,
                  params: dict[str, Any], at: float, duration: float,
                  processes: ProcessControl | None) -> list[PlannedFault]:
    """One PlannedFault per process target the selector names, refused where nobody can act."""
    if processes is None:
        raise ConfigError(f"{where}: fault kind {kind.name!r} acts on a process, but no process control is "
                          "available here", hint="the drill provides one for the embedded stand-in and for a "
                                                 "target file with process commands")
    try:
        targets = select_targets(entry["process"], processes.targets())
    except ConfigError as err:
        raise ConfigError(f"{where}.process: {err}", hint=err.hint) from None
    needs = kind.needs(params) if kind.needs else ()
    out = []
    for target in targets:
        missing = processes.missing_actions(target, needs)
        if missing:
            raise ConfigError(f"{where}: fault kind {kind.name!r} on process {target} needs the action(s) "
                              f"{', '.join(missing)}, which {processes.description} cannot do",
                              hint="a target file names them under processes.commands (e.g. kill: [docker, kill, "
                                   "'{container}'], start: [docker, start, '{container}'])")
        fid = spec_id if len(targets) == 1 else f"{spec_id}:{target}"
        fault = PlannedFault(fid, spec_id, index, None, kind, params, at, duration, process=target)
        fault.steps = kind.plan(params, duration, target, fid)
        out.append(fault)
    return out


def _toxic_id(fault_id: str) -> str:
    """Fault id as used inside toxic names (the link is implied by the proxy)."""
    return fault_id.split(":", 1)[0]


def _check_overlaps(planned: list[PlannedFault]) -> None:
    by_link: dict[str, list[PlannedFault]] = {}
    for fault in planned:
        by_link.setdefault(fault.subject, []).append(fault)
    for link, faults in by_link.items():
        faults.sort(key=lambda f: f.at)
        for a, b in zip(faults, faults[1:]):
            if b.at < a.end - 1e-9:
                first, second = sorted((a, b), key=lambda f: f.index)
                raise ConfigError(
                    f"faults[{second.index}] ({second.kind.name} at {second.at:g}s for {second.duration:g}s) overlaps "
                    f"faults[{first.index}] ({first.kind.name} at {first.at:g}s for {first.duration:g}s) on "
                    f"{'process' if first.is_process else 'link'} {link}",
                    hint="one fault per link or process at a time; shift 'at' or shorten 'for'",
                )


def load_spec(path: str | Path) -> Any:
    """Read a timeline spec from YAML or JSON (a file with `faults:` or a bare list)."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"timeline file {p} does not exist") from None
    try:
        return json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"timeline file {p} cannot be parsed: {exc}") from None


@dataclass(order=True)
class _Event:
    when: float
    order: int  # heals (0) before other steps (1) at the same instant
    seq: int
    fault: PlannedFault = field(compare=False)
    step: Step | ProcessStep = field(compare=False)


class Timeline:
    """A validated fault schedule bound to a Toxiproxy server; run it with start()/wait()/stop().

    `client` is a ToxiproxyClient or its API URL (None: only process faults). `out` is the
    timeline.json path (None: keep records in memory only). `watchdog` spawns the
    heal-on-death process; its lease file goes next to `out` (or a temp dir).
    `processes` acts on the process targets of process faults; `observe(target, phase)`
    is called before a process fault's first action ("before") and after each restart
    or resume ("after"); what it returns is kept in the fault's `observations`.
    """

    def __init__(self, spec: Any, links: LinkMap | None, client: ToxiproxyClient | str | None, *,
                 out: str | Path | None = None, allow_hosts: Iterable[str] | None = None, watchdog: bool = True,
                 max_fault_seconds: float = MAX_FAULT_SECONDS, processes: ProcessControl | None = None,
                 observe: Observer | None = None) -> None:
        self.links = links if links is not None else LinkMap([])
        self.allow_hosts = tuple(self.links.allow_hosts if allow_hosts is None else allow_hosts)
        self.processes = processes
        self.observe = observe
        self.faults = plan(spec, self.links, allow_hosts=self.allow_hosts, max_fault_seconds=max_fault_seconds,
                           processes=processes)
        if client is None and any(not f.is_process for f in self.faults):
            raise ConfigError("the timeline has link faults but no Toxiproxy API was given")
        self._owns_client = client is not None and not isinstance(client, ToxiproxyClient)
        self.client: ToxiproxyClient | None = client if (client is None or isinstance(client, ToxiproxyClient)) \
            else ToxiproxyClient(client, allow_hosts=self.allow_hosts)
        self.out = Path(out) if out else None
        self.use_watchdog = watchdog
        self.t0_wall: float | None = None
        self.t0_mono: float | None = None
        self.state = "planned"
        self.heal_report: HealReport | None = None
        self.error: str | None = None  # an unexpected failure of the schedule thread
        self._events = self._schedule()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._step_lock = threading.RLock()  # re-entrant: stop() may run in a signal handler during stop()
        self._heal_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._watchdog = None
        self._lease: Path | None = None
        self._lease_tmpdir: Path | None = None
        self._lease_lock = threading.Lock()
        self._lease_processes: dict[str, dict[str, Any]] = {}  # fault id -> lease entry while active
        self._ready_threads: list[threading.Thread] = []

    @classmethod
    def from_file(cls, path: str | Path, links: LinkMap, client: ToxiproxyClient | str, **kwargs: Any) -> "Timeline":
        return cls(load_spec(path), links, client, **kwargs)

    # -- schedule

    def _schedule(self) -> list[_Event]:
        events = []
        seq = 0
        for fault in self.faults:
            for step in fault.steps:
                events.append(_Event(fault.at + step.offset, 0 if step.label == "heal" else 1, seq, fault, step))
                seq += 1
        return sorted(events)

    @property
    def proxies(self) -> list[str]:
        return sorted({f.link.proxy for f in self.faults if f.link is not None})

    @property
    def process_targets(self) -> list[str]:
        return sorted({f.process for f in self.faults if f.process is not None})

    @property
    def end(self) -> float:
        """Seconds after t0 when the last fault heals."""
        return max((f.end for f in self.faults), default=0.0)

    # -- running

    def preflight(self) -> None:
        """Check the server before anything is applied: every fault's proxy exists and the
        server version has the toxic types used. Raises DrillError naming what is wrong."""
        if self.process_targets and self.processes is not None:
            problems = self.processes.problems(self.process_targets)
            if problems:
                raise DrillError("process targets are not healthy before any fault: " + "; ".join(problems),
                                 hint="heal the stack first ('kugeldrill heal') or restart it")
        if not self.proxies or self.client is None:
            return
        existing = self.client.proxies()
        missing = sorted(set(self.proxies) - set(existing))
        if missing:
            raise DrillError(f"Toxiproxy {self.client.api} has no proxy {', '.join(missing)}",
                             hint="create the links first (LinkMap.ensure, or 'kugeldrill stack up')")
        version = version_tuple(self.client.version())
        for fault in self.faults:
            if fault.is_process:
                continue
            need = MIN_SERVER.get(fault.kind.name)
            if version and need and version < need:
                raise DrillError(
                    f"faults[{fault.index}].kind {fault.kind.name!r} needs Toxiproxy >= "
                    f"{'.'.join(map(str, need))}, server {self.client.api} is {'.'.join(map(str, version))}")

    def start(self, *, t0_mono: float | None = None, preflight: bool = True) -> "Timeline":
        """Begin the schedule now (or at a given monotonic t0, e.g. the load's start).

        With `preflight` (default) the server is checked first, so a missing proxy or an
        old server is an error before any fault is applied, not a failure mid-run.
        """
        if self._thread is not None:
            raise DrillError("timeline already started")
        if preflight:
            self.preflight()
        now_mono, now_wall = time.monotonic(), time.time()
        self.t0_mono = now_mono if t0_mono is None else t0_mono
        self.t0_wall = now_wall - (now_mono - self.t0_mono)
        self.state = "running"
        if self.use_watchdog and self.faults:
            self._start_watchdog()
        self._write()
        atexit.register(self._at_exit)  # an interpreter exiting without stop() still heals
        self._thread = threading.Thread(target=self._run, name="kugeldrill-timeline", daemon=True)
        self._thread.start()
        return self

    def _at_exit(self) -> None:
        if self.state == "running":
            self.stop()

    def _start_watchdog(self) -> None:
        base = self.out.parent if self.out else Path(tempfile.mkdtemp(prefix="kugeldrill-lease-"))
        self._lease_tmpdir = None if self.out else base
        self._lease = base / f".chaos-lease-{os.getpid()}-{id(self):x}.json"
        api = self.client.api if self.client is not None else None
        watchdog_mod.write_lease(self._lease, watchdog_mod.make_lease(api, self.proxies, self.allow_hosts))
        log = (self.out.parent / "watchdog.log") if self.out else None
        self._watchdog = watchdog_mod.spawn(self._lease, log)

    def _lease_process(self, fault: PlannedFault, entry: dict[str, Any] | None) -> None:
        """Add (entry) or drop (None) what the watchdog must undo for an active process fault.

        Written before the fault's first action, so a drill killed mid-action is healed too."""
        if self._lease is None:
            return
        with self._lease_lock:
            if entry is None:
                if self._lease_processes.pop(fault.id, None) is None:
                    return
            else:
                self._lease_processes[fault.id] = entry
            lease = watchdog_mod.read_lease(self._lease)
            if lease is None or lease.get("state") != "active":
                return
            lease["processes"] = dict(self._lease_processes)
            watchdog_mod.write_lease(self._lease, lease)

    def _release_watchdog(self, healed: bool) -> None:
        if self._lease is None:
            return
        if healed:
            lease = watchdog_mod.read_lease(self._lease) or {}
            lease["state"] = "done"
            watchdog_mod.write_lease(self._lease, lease)
            if self._watchdog is not None:
                try:
                    self._watchdog.wait(timeout=2.0)
                except subprocess.TimeoutExpired:  # it exits on its own within one interval
                    self._watchdog.terminate()
                    self._watchdog.wait(timeout=2.0)
            try:
                self._lease.unlink()
                if self._lease_tmpdir is not None:
                    self._lease_tmpdir.rmdir()
            except OSError:
                pass
            self._lease = None
        # Not healed: keep the lease active; the watchdog heals after we exit.

    def _run(self) -> None:
        try:
            for batch in self._batches():
                due = self.t0_mono + batch[0].when  # type: ignore[operator]
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if self._stop.is_set():
                    break
                with self._step_lock:
                    if self._stop.is_set():
                        break
                    self._perform_batch(batch)
                self._write()
                with self._changed:
                    self._changed.notify_all()
        except Exception as exc:  # noqa: BLE001 - a bug must not leave faults applied
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if not self._stop.is_set():
                self.state = "finished" if self.error is None else "failed"
                self._finish(stopped=False)
            self._done.set()
            with self._changed:
                self._changed.notify_all()

    def _batches(self) -> list[list[_Event]]:
        """Events due at the same instant form one batch (sorted: heals before applies)."""
        batches: list[list[_Event]] = []
        for event in self._events:
            if batches and batches[-1][0].when == event.when:
                batches[-1].append(event)
            else:
                batches.append([event])
        return batches

    def _perform_batch(self, batch: list[_Event]) -> None:
        """Run a batch: proxies in parallel (a selector over many links applies at once, not
        one API round trip after another), each proxy's steps in order (heal, then apply)."""
        by_proxy: dict[str, list[_Event]] = {}
        for event in batch:
            by_proxy.setdefault(event.fault.resource, []).append(event)
        groups = list(by_proxy.values())

        def run(group: list[_Event]) -> None:
            for event in group:
                self._perform(event)

        if len(groups) == 1:
            run(groups[0])
            return
        with ThreadPoolExecutor(max_workers=min(8, len(groups)), thread_name_prefix="kugeldrill-step") as pool:
            for future in [pool.submit(run, group) for group in groups]:
                future.result()

    def _perform(self, event: _Event) -> None:
        fault, step = event.fault, event.step
        if step.label != "heal" and fault.status in ("failed", "healed"):
            return  # a failed apply: skip its intermediate steps, still heal on schedule
        if isinstance(step, ProcessStep):
            self._perform_process(fault, step)
            return
        err: str | None = None
        try:
            step.run(self.client)
        except ToxiproxyError as exc:
            err = str(exc)
        wall, mono = time.time(), time.monotonic()
        if step.label == "apply":
            if err is None:  # checkers use applied_mono only for faults that took effect
                fault.applied_wall, fault.applied_mono = wall, mono
            fault.status = "failed" if err else "active"
        elif step.label == "heal":
            if err is None or fault.status == "failed":
                fault.healed_wall, fault.healed_mono = wall, mono
                fault.status = "failed" if fault.status == "failed" else "healed"
        else:
            fault.events.append({"action": step.label, "wall": wall, "mono": mono, "error": err})
        if err and fault.error is None:
            fault.error = f"{step.label}: {err}"

    # -- process faults

    def _perform_process(self, fault: PlannedFault, step: ProcessStep) -> None:
        """Run a process step's actions in order, each recorded as an event (pids, times).

        The apply's first action (the signal that kills, stops or freezes) decides whether
        the fault took effect; its start is the fault's applied time. A heal's actions all
        succeeding is its healed time. A later action failing (a restart that does not
        come up) is recorded in `error`; the heal tries again on schedule and on stop."""
        assert self.processes is not None and fault.process is not None
        target = fault.process
        if step.label == "apply":
            need = fault.kind.heal_actions[0] if fault.kind.heal_actions else "start"
            try:
                self._lease_process(fault, self.processes.lease_entry(target, need))
            except Exception as exc:  # noqa: BLE001 - no lease entry: refuse to act unguarded
                fault.status = "failed"
                fault.error = f"apply: cannot prepare the watchdog's heal for {target}: {type(exc).__name__}: {exc}"
                return
            self._observe(fault, "before")
        err = None
        first: dict[str, Any] | None = None
        for action, kwargs in step.actions:
            record, ok = self._process_action(fault, action, kwargs)
            first = first or record
            if not ok:
                err = f"{step.label}: {action} {target}: {record.get('error')}"
                break
            if action in ("start", "resume") and record.get("outcome") != "already":
                self._observe(fault, "after")
        if step.label == "apply":
            if first is not None and not first.get("error"):
                fault.applied_wall, fault.applied_mono = first["wall"], first["mono"]
                fault.status = "active"
            else:
                fault.status = "failed"
        elif step.label == "heal" and err is None:
            fault.healed_wall, fault.healed_mono = time.time(), time.monotonic()
            if fault.status == "active":
                fault.status = "healed"
            self._lease_process(fault, None)
        if err and fault.error is None:
            fault.error = err

    def _process_action(self, fault: PlannedFault, action: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """One ProcessControl call, recorded: began at (wall, mono), took, pids, outcome, error."""
        assert self.processes is not None and fault.process is not None
        wall, mono = time.time(), time.monotonic()
        record: dict[str, Any] = {"action": action, "wall": wall, "mono": mono}
        ok = True
        try:
            result: ProcessResult = getattr(self.processes, action)(fault.process, **kwargs)
            record.update(result.record())
        except Exception as exc:  # noqa: BLE001 - a failed action is recorded; heal still runs
            record["error"] = f"{type(exc).__name__}: {exc}"
            ok = False
        record["seconds"] = round(time.monotonic() - mono, 4)
        fault.events.append(record)
        if ok and action == "start" and record.get("outcome") != "already":
            self._await_ready(fault, record)
        return record, ok

    def _await_ready(self, fault: PlannedFault, record: dict[str, Any]) -> None:
        """Record, in the start event, when the restarted target answers its probe (in the
        background: a slow start must not delay the rest of the schedule)."""
        processes, target = self.processes, fault.process
        assert processes is not None and target is not None

        def wait() -> None:
            try:
                problem = processes.wait_ready(target, READY_TIMEOUT)
            except Exception as exc:  # noqa: BLE001
                problem = f"{type(exc).__name__}: {exc}"
            now_wall, now_mono = time.time(), time.monotonic()
            if problem is None:
                record.update(ready_wall=now_wall, ready_mono=now_mono, ready_seconds=round(now_mono - record["mono"], 3))
            else:
                record["ready_error"] = problem
            self._write()
            if problem is None and fault.params.get("uptime"):
                self._repeat_after_uptime(fault)

        thread = threading.Thread(target=wait, name=f"kugeldrill-ready-{target}", daemon=True)
        self._ready_threads.append(thread)
        thread.start()

    def _repeat_after_uptime(self, fault: PlannedFault) -> None:
        """`uptime` mode: act again (kill / stop, then start) once the restarted target has
        answered for `uptime` seconds — however long its start took on this machine — as
        long as the fault lasts. Runs under the step lock, so it never races the heal."""
        uptime = float(fault.params["uptime"])
        if self._stop.wait(uptime):
            return
        repeat = next((s for s in fault.steps if isinstance(s, ProcessStep) and s.label == "apply"), None)
        if repeat is None:
            return
        with self._step_lock:
            if self._stop.is_set() or fault.status != "active" or self.elapsed() >= fault.end - uptime / 2:
                return
            self._perform_process(fault, ProcessStep(self.elapsed() - fault.at, fault.kind.name, repeat.actions))
        self._write()

    def _observe(self, fault: PlannedFault, phase: str) -> None:
        if self.observe is None or fault.process is None:
            return
        wall, mono = time.time(), time.monotonic()
        try:
            data = self.observe(fault.process, phase)
        except Exception as exc:  # noqa: BLE001 - a measurement must never stop a fault or its heal
            data = {"error": f"{type(exc).__name__}: {exc}"}
        if data is not None:
            fault.observations.append({"phase": phase, "wall": wall, "mono": mono, "data": data})

    def _heal_process_fault(self, fault: PlannedFault, stopped: bool) -> None:
        """The fault's heal actions now (stop, signal, exception): start / resume, idempotent."""
        step = ProcessStep(0.0, "heal", tuple((a, {}) for a in fault.kind.heal_actions))
        before = fault.status
        self._perform_process(fault, step)
        if fault.healed_mono is not None and before == "active":
            fault.stopped_early = stopped

    def wait_ready_recorded(self, timeout: float = READY_TIMEOUT) -> bool:
        """Block until every restarted target's readiness was recorded (tests, reports)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._ready_threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return all(not t.is_alive() for t in self._ready_threads)

    def _finish(self, *, stopped: bool) -> HealReport:
        """Heal what is left (idempotent), verify, release the watchdog, write the file."""
        with self._heal_lock:
            for fault in self.faults:
                if fault.is_process:
                    if fault.status in ("active", "failed") and fault.healed_mono is None:
                        self._heal_process_fault(fault, stopped)  # idempotent: a failed apply may have acted
                    elif fault.status == "pending":
                        fault.status = "skipped"
                    continue
                if fault.status == "active" or (fault.status == "failed" and fault.healed_mono is None):
                    heal = fault.kind.heal_step(fault.params, fault.link.proxy, _toxic_id(fault.id))
                    try:
                        heal(self.client)
                        fault.healed_wall, fault.healed_mono = time.time(), time.monotonic()
                        if fault.status == "active":
                            fault.status = "healed"
                            fault.stopped_early = stopped
                    except ToxiproxyError as exc:
                        fault.error = fault.error or f"heal: {exc}"
                elif fault.status == "pending":
                    fault.status = "skipped"
            report = heal_all(self.client, proxies=self.proxies) \
                if self.proxies and self.client is not None else HealReport()
            if self.process_targets and self.processes is not None:
                report.processes = [f"{e['action']} {e.get('target')}: {e.get('outcome') or e.get('error')}"
                                    for f in self.faults for e in f.events
                                    if e.get("action") in ("start", "resume") and e.get("outcome") != "already"]
                try:
                    report.remaining += self.processes.problems(self.process_targets)
                except Exception as exc:  # noqa: BLE001 - unknown is not healed
                    report.remaining.append(f"cannot verify processes: {type(exc).__name__}: {exc}")
            self.heal_report = report
            atexit.unregister(self._at_exit)
            self._release_watchdog(report.ok)
            self._write()
            return report

    def stop(self, timeout: float | None = None) -> HealReport:
        """Stop the schedule and heal every fault now; safe from signal handlers, repeatable."""
        with self._heal_lock:
            if self.state in ("stopped", "finished", "failed") and self.heal_report is not None and self.heal_report.ok:
                return self.heal_report
            self._stop.set()
            limit = timeout if timeout is not None else self._step_limit()
            got = self._step_lock.acquire(timeout=limit)  # let an in-flight step finish first
            try:
                if self.state == "running" or self.state == "planned":
                    self.state = "stopped"
                return self._finish(stopped=True)
            finally:
                if got:
                    self._step_lock.release()

    def _step_limit(self) -> float:
        """How long stop() lets an in-flight step finish before healing anyway."""
        limit = self.client.timeout * 2 + 1 if self.client is not None else 5.0
        graces = [float(f.params.get("grace", 0)) + 5.0 for f in self.faults if f.is_process]
        return max([limit, 15.0 if graces else 0.0, *graces])

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the schedule finished or was stopped; True if it did."""
        if self._thread is None:
            return True
        return self._done.wait(timeout)

    def wait_applied(self, fault_id: str | None = None, timeout: float = 10.0) -> bool:
        """Block until a fault (default: the first scheduled) left `pending`; True if it did.

        Lets a test or a console act once a fault is really in place, not merely scheduled.
        """
        targets = [f for f in self.faults if fault_id is None or f.id == fault_id or f.spec_id == fault_id]
        if fault_id is None and targets:
            first = min(f.at for f in targets)
            targets = [f for f in targets if f.at == first]
        if not targets:
            raise DrillError(f"timeline has no fault {fault_id!r}")
        with self._changed:
            return self._changed.wait_for(lambda: all(f.status != "pending" for f in targets) or self._done.is_set(),
                                          timeout)

    def run(self) -> HealReport:
        """start() + wait(); heals on any exception, including KeyboardInterrupt."""
        self.start()
        try:
            self.wait()
        finally:
            report = self.stop()
        return report

    def close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()

    def __enter__(self) -> "Timeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()

    # -- status and records

    def elapsed(self) -> float:
        return 0.0 if self.t0_mono is None else time.monotonic() - self.t0_mono

    def status(self) -> dict[str, Any]:
        """Live view for a console: active faults with time left, counts by status."""
        now = self.elapsed()
        counts: dict[str, int] = {}
        for f in self.faults:
            counts[f.status] = counts.get(f.status, 0) + 1
        active = [{"id": f.id, "link": f.subject, "kind": f.kind.name, "params": f.params,
                   "remaining": max(0.0, f.end - now), "process": f.is_process}
                  for f in self.faults if f.status == "active"]
        upcoming = [{"id": f.id, "link": f.subject, "kind": f.kind.name, "in": max(0.0, f.at - now),
                     "process": f.is_process} for f in self.faults if f.status == "pending"]
        return {"state": self.state, "elapsed": now, "end": self.end, "active": active,
                "upcoming": upcoming, "counts": counts}

    def to_json(self) -> dict[str, Any]:
        return {"t0_wall": self.t0_wall, "t0_mono": self.t0_mono, "state": self.state,
                "api": self.client.api if self.client is not None else None, "error": self.error,
                "faults": [f.record() for f in self.faults]}

    def _write(self) -> None:
        if self.out is None:
            return
        with self._write_lock:
            write_json_atomic(self.out, self.to_json(), indent=1)


def write_empty_timeline(path: Path, t0_wall: float, t0_mono: float) -> None:
    """timeline.json of a drill without faults: still the run's clock (t0) for checkers and reports."""
    write_json_atomic(path, {"t0_wall": t0_wall, "t0_mono": t0_mono, "state": "finished", "faults": []})
