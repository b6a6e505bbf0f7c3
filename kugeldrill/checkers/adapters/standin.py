"""The stand-in's structured events (contracts §3) -> normalised records.

Sources, in order of preference: the per-service events files listed in stack.json
(`state["services"][app]["events"]`), the copies in `<run_dir>/events/*.jsonl`, and, when
`use_diagnostics=True`, the read-only diagnostics endpoints of each service. The events
files are complete; the endpoints may only hold a recent tail, so they are a fallback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.checkers.adapters.event_lines import as_record, payload_of, wall_of
from kugeldrill.checkers.adapters.history import HistoryReading
from kugeldrill.checkers.adapters.standin_stream import read_folded
from kugeldrill.checkers.adapters.timeline import load_timeline
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import StringPool, event_key
from kugeldrill.checkers.model import (
    Application,
    BreakerCall,
    BreakerTransition,
    MarkWrite,
    OutboxEntry,
    ProcessCrash,
    Publication,
    StateUnreachable,
)
from kugeldrill.ground.gcpause import gc_paused
from kugeldrill.ground.gzfiles import GZ_SUFFIX, plain_name, stored
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.runfolder import RunFolder

_STATES = {"closed": "CLOSED", "open": "OPEN", "half_open": "HALF_OPEN", "half-open": "HALF_OPEN"}
_EVENT_FIELDS = ("breaker_transitions", "breaker_calls", "publications", "applications", "duplicate_skips",
                 "state_unreachable", "crashes", "mark_writes")


def _state(value: Any) -> str:
    if type(value) is str:  # one of a few names, normalised once each
        named = _NAMED.get(value)
        if named is None:
            named = _NAMED[value] = _STATES.get(value.lower(), value.upper())
        return named
    text = str(value or "")
    return _STATES.get(text.lower(), text.upper())


_NAMED: dict[str, str] = {}


def _text(value: Any, default: str = "") -> str:
    """A field as text; absent (None) gives the default."""
    return default if value is None else str(value)


class EventConverter:
    """Turns events-file lines into records, appending to a CheckInputs; counts what it skipped.

    One conversion, attribute by attribute, from a decoded line (adapters.event_lines: typed
    or loose); an event given as a dict (a diagnostics endpoint, the live tail, a test) is made
    a loose line first. Absent and null fields are the same: absent."""

    def __init__(self, inputs: CheckInputs) -> None:
        self.inputs = inputs
        self.skipped = 0
        self._intern = StringPool()
        self._seq: dict[str, int] = {}

    def add(self, rec: Mapping[str, Any]) -> None:
        """One event given as a dict."""
        self.add_line(as_record(rec))

    def add_line(self, rec: Any) -> None:
        """One decoded line; records of one service are numbered in the order they come."""
        kind = rec.kind
        service = self._intern(_text(rec.service))
        mono = float(rec.mono if rec.mono is not None else 0.0)
        wall = wall_of(rec)
        inp = self.inputs
        if kind == "breaker_call":
            admitted = rec.admitted_mono
            inp.breaker_calls.append(BreakerCall(
                service=service, breaker=_text(rec.breaker), mono=mono, wall=wall,
                state=_state(rec.state), op=_text(rec.op),  # type: ignore[arg-type]
                outcome=rec.outcome if rec.outcome is not None else "ok", seq=self._next(service),
                admitted_mono=None if admitted is None else float(admitted),
            ))
        elif kind == "marked":
            inp.mark_writes.append(MarkWrite(
                subscriber=self._intern(str(rec.subscriber or service)),
                event_id=self._intern(_text(rec.event_id)), mono=mono, wall=wall, ok=bool(rec.ok),
                started_mono=None if rec.started_mono is None else float(rec.started_mono)))
        elif kind == "applied":
            topic = self._intern(_text(rec.topic))
            inp.applications.append(Application(
                subscriber=self._intern(str(rec.subscriber or service)),
                event_id=self._intern(str(rec.event_id)) if rec.event_id else None,
                topic=topic,
                key=self._intern(event_key(topic, payload_of(rec.payload_keys))),
                mono=mono, wall=wall,
                attempt=rec.attempt,
                dedup=str(rec.dedup or ""),
            ))
        elif kind == "publish":
            topic = self._intern(_text(rec.topic))
            inp.publications.append(Publication(
                publisher=service,
                event_id=self._intern(_text(rec.event_id)),
                topic=topic,
                key=self._intern(event_key(topic, payload_of(rec.payload_keys))),
                mono=mono, wall=wall,
                outcome=rec.outcome if rec.outcome is not None else "ok",
                attempt=rec.attempt if rec.attempt is not None else "initial",
            ))
        elif kind == "breaker":
            inp.breaker_transitions.append(BreakerTransition(
                service=service, breaker=_text(rec.breaker), mono=mono, wall=wall,
                from_state=_state(rec.from_), to_state=_state(rec.to_),  # type: ignore[arg-type]
                failures=rec.failures, reason=str(rec.reason or ""), seq=self._next(service),
            ))
        elif kind == "duplicate_skipped":
            inp.duplicate_skips.append((str(rec.subscriber or service), _text(rec.event_id), mono))
        elif kind == "state_unreachable":
            inp.state_unreachable.append(StateUnreachable(
                service=service, mono=mono, wall=wall, op=_text(rec.op), key=_text(rec.key), error=_text(rec.error),
            ))
        elif kind == "crash":
            inp.crashes.append(ProcessCrash(service=service, mono=mono, wall=wall, reason=_text(rec.reason)))
        else:
            self.skipped += 1

    def counted(self) -> dict[str, int]:
        """Records numbered so far, per service (what `adopt` continues from)."""
        return dict(self._seq)

    def adopt(self, other: CheckInputs, seq: Mapping[str, int], skipped: int) -> None:
        """Append another converter's records (a forked reader's, of files read after this
        one's): their per-service numbers continue this converter's."""
        offset = dict(self._seq)
        for rec in (*other.breaker_transitions, *other.breaker_calls):
            rec.seq = (rec.seq or 0) + offset.get(rec.service, 0)
        for service, n in seq.items():
            self._seq[service] = offset.get(service, 0) + n
        for name in _EVENT_FIELDS:
            if name not in ("publications", "applications"):
                getattr(self.inputs, name).extend(getattr(other, name))
        self.skipped += skipped

    def _next(self, service: str) -> int:
        n = self._seq.get(service, 0)
        self._seq[service] = n + 1
        return n


def events_files(run_dir: str | Path | None, stack_state: Mapping[str, Any] | None) -> dict[str, Path]:
    """app -> events file: stack.json's paths if they exist, else `<run_dir>/events/<app>.jsonl`
    (either one gzipped, `.jsonl.gz`, in a compacted run folder)."""
    files: dict[str, Path] = {}
    for app, svc in ((stack_state or {}).get("services") or {}).items():
        path = svc.get("events") if isinstance(svc, Mapping) else None
        if path and stored(path).is_file():  # gzipped once the run folder was compacted
            files[app] = stored(path)
    if run_dir is not None:
        events = RunFolder(run_dir).events_dir
        for path in sorted([*events.glob("*.jsonl"), *events.glob("*.jsonl" + GZ_SUFFIX)]):
            files.setdefault(Path(plain_name(path)).stem, path)
    return files


def read_events_files(files: Mapping[str, Path], while_counted: Callable[[], None] | None = None,
                      ready: Callable[[], bool] | None = None) -> CheckInputs:
    """All records of the given events files (one pass each, torn last lines skipped).

    Publications and applications are folded into the event table and per-event counts as
    they are read (adapters.standin_stream), so memory grows with the number of events, not
    of lines; every other kind of event becomes its record. `while_counted`, `ready`: see
    read_folded."""
    inputs = CheckInputs()
    conv = EventConverter(inputs)
    with gc_paused():
        inputs.publications, inputs.applications = read_folded(  # type: ignore[assignment]
            files, conv, lambda: EventConverter(CheckInputs()), while_counted, ready)
    src = "events files: " + ", ".join(str(p) for p in files.values())
    for name in _EVENT_FIELDS:
        inputs.mark(name, src)
    if conv.skipped:
        inputs.notes.append(f"{conv.skipped} stand-in event records of unknown kind were skipped")
    return inputs


def _items(body: Any, *names: str) -> list[dict[str, Any]]:
    """Lists out of a diagnostics body: a bare list, the Kugelpos envelope's data, or named keys."""
    if isinstance(body, Mapping) and "data" in body and isinstance(body["data"], (list, Mapping)):
        body = body["data"]
    if isinstance(body, list):
        return [b for b in body if isinstance(b, Mapping)]
    out: list[dict[str, Any]] = []
    if isinstance(body, Mapping):
        for name in names:
            val = body.get(name)
            if isinstance(val, list):
                out.extend(v for v in val if isinstance(v, Mapping))
    return out


def read_diagnostics(services: Mapping[str, str], *, timeout: float = 5.0,
                     client: httpx.Client | None = None) -> CheckInputs:
    """GET /api/v1/diagnostics/{applied,outbox,breaker} of each service (app -> base URL)."""
    inputs = CheckInputs()
    conv = EventConverter(inputs)
    errors: list[str] = []
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        for app, base in services.items():
            require_loopback(base, what=f"diagnostics URL of {app}")
            for path, names, kind_default in (
                ("applied", ("items", "applied", "events"), "applied"),
                ("outbox", ("items", "publications", "events", "outbox"), "publish"),
                ("breaker", ("transitions", "items", "events"), "breaker"),
            ):
                url = f"{base.rstrip('/')}/api/v1/diagnostics/{path}"
                try:
                    resp = http.get(url, timeout=timeout)
                except httpx.HTTPError as exc:
                    errors.append(f"{url}: {exc}")
                    continue
                if resp.status_code == 404:
                    continue  # this service does not serve that view (e.g. outbox on a subscriber)
                if resp.status_code != 200:
                    errors.append(f"{url}: HTTP {resp.status_code}")
                    continue
                if path == "outbox":  # delivery-status documents, not publish attempts
                    for rec in _items(resp.json(), *names):
                        topic = str(rec.get("topic", ""))
                        services = {str(k): str(v.get("status") if isinstance(v, Mapping) else v)
                                    for k, v in (rec.get("services") or {}).items()}
                        inputs.outbox.append(OutboxEntry(app, str(rec.get("event_id", "")), topic,
                                                         event_key(topic, rec.get("payload_keys") or {}),
                                                         str(rec.get("status", "")), services))
                    continue
                for rec in _items(resp.json(), *names):
                    rec = dict(rec)
                    rec.setdefault("kind", kind_default)
                    rec.setdefault("service", app)
                    conv.add(rec)
    finally:
        if own:
            http.close()
    if errors:
        inputs.notes.extend(errors)
        for name in (*_EVENT_FIELDS, "outbox"):
            inputs.mark_missing(name, "diagnostics endpoints failed: " + "; ".join(errors[:3]))
    else:
        for name in (*_EVENT_FIELDS, "outbox"):
            if name != "publications":
                inputs.mark(name, "diagnostics endpoints (recent tail only)")
        inputs.mark_missing("publications", "diagnostics endpoints give outbox documents, not publish attempts")
    return inputs


def load_standin_inputs(run_dir: str | Path | None, stack_state: Mapping[str, Any] | None, *,
                        use_diagnostics: bool = False, timeout: float = 5.0,
                        history: str | Path | None = None, timeline: str | Path | None = None) -> CheckInputs:
    """Everything the checkers need from a stand-in run (contracts §8).

    Reads `<run_dir>/history.jsonl` (in a forked child while this process reads the rest,
    when it pays: adapters.history.HistoryReading), `<run_dir>/timeline.json` (or the given
    paths) and the events files (publications and applications folded as they are read); the
    diagnostics endpoints are used only if no events file exists and `use_diagnostics` is
    set. Redis stream groups are read by `checkers.quiescence`.
    """
    inputs = CheckInputs()
    base = Path(run_dir) if run_dir is not None else None
    folder = RunFolder(base) if base is not None else None
    hist = Path(history) if history else (folder.history_jsonl if folder else None)
    tl = Path(timeline) if timeline else (folder.timeline_json if folder else None)
    # The history is read in a second process while the events files are read here (adapters.aside).
    history_job = HistoryReading(hist) if hist else None
    try:
        timeline = load_timeline(tl) if tl else _missing("faults", "no run folder or timeline path")
        files = events_files(base, stack_state)
        # The history's columns are merged here while a forked reader still counts events, if
        # one does: as soon as the history's reader ended, between two pieces of events.
        early: list[CheckInputs] = []
        merge_early = (lambda: early.append(history_job.result())) if history_job is not None else None
        ready = history_job.ready if history_job is not None else None
        events = read_events_files(files, merge_early, ready) if files else None
    except BaseException:
        if history_job is not None:
            history_job.close()
        raise
    if early:
        inputs.merge(early[0])
    else:
        inputs.merge(history_job.result() if history_job else _missing("ops", "no run folder or history path"))
    inputs.merge(timeline)
    if events is not None:
        inputs.merge(events)
    elif use_diagnostics and stack_state:
        urls = {app: svc["url"] for app, svc in (stack_state.get("services") or {}).items()
                if isinstance(svc, Mapping) and svc.get("url")}
        inputs.merge(read_diagnostics(urls, timeout=timeout))
    else:
        for name in _EVENT_FIELDS:
            inputs.mark_missing(name, "no stand-in events files found (stack.json services[*].events, run/events/)")
    # The stand-in keeps no Kugelpos-style outbox documents or Dapr markers in its events.
    inputs.mark_missing("outbox", "not read by the stand-in adapter (publications come from events)")
    inputs.mark_missing("markers", "not read by the stand-in adapter")
    return inputs


def _missing(name: str, reason: str) -> CheckInputs:
    inputs = CheckInputs()
    inputs.mark_missing(name, reason)
    return inputs


class EventsTail:
    """The new complete lines of the events files since the last poll, as records.

    For the live console: the same converter as `read_events_files`, fed byte offsets at a
    time, so a soak's million-line files cost next to nothing each second.
    """

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = dict(files)
        self.offsets: dict[str, int] = dict.fromkeys(self.files, 0)

    def poll(self) -> CheckInputs:
        inputs = CheckInputs()
        conv = EventConverter(inputs)
        for app, path in self.files.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets[app])
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n")
            if end < 0:
                continue
            self.offsets[app] += end + 1
            for raw in chunk[: end + 1].splitlines():
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                conv.add(rec)
        return inputs


def iter_records(lines: Iterable[Mapping[str, Any]]) -> CheckInputs:
    """Records from already-parsed event dicts (tests, in-memory tails)."""
    inputs = CheckInputs()
    conv = EventConverter(inputs)
    for rec in lines:
        conv.add(rec)
    for name in _EVENT_FIELDS:
        inputs.mark(name, "in-memory events")
    return inputs
