"""Kugelpos' plain-text log lines -> breaker transitions/calls, applications, skips.

Format (services/*/app/logging.conf): `%(asctime)s [%(levelname)s] %(name)s: %(message)s`,
asctime `YYYY-MM-DD HH:MM:SS,mmm` in UTC, optionally behind a `docker compose logs` prefix
(`report-1  | ...`, with `--timestamps` also Docker's RFC 3339 time, which is skipped:
asctime is the service's own clock). The wording matched here is Kugelpos' own (docs/kugelpos-facts.md §5.2, §5.3, §6.1).

Quirks of the real breaker that shape this parser (docs/kugelpos-facts.md §6.1, Surprise 6):
* "Circuit breaker OPEN after N failures" is logged on every failure at or over the
  threshold, so a failed half-open trial logs it again, and with unlimited HALF_OPEN
  several concurrent trials can each log it; only a change of state is a transition.
* The opening call's own "Failed to ..." line follows the WARNING, and a half-open success's
  "Successfully ..." line follows the CLOSED line; such a line is attributed to the state
  in which the call was admitted, not the state it was logged in.
* Breakers are per instance: publishers create one per request and several uvicorn workers
  share one log, so transitions of different instances interleave in one stream; the
  adapter cannot separate them and names the breaker per service and kind
  ("dapr" for DaprClientHelper, "cartstore" for the cart cache's own breaker).
* A log line says when a call *ended*, not when it was admitted. A call admitted while
  CLOSED that fails or succeeds after concurrent calls opened the breaker is logged while
  OPEN (the seed's breaker logs nothing for it; Kugelpos' logs "OPEN after N failures"
  again). Neither breaker admits a call while OPEN without logging its move to HALF_OPEN,
  so such a line within `max_call_seconds` (the client's timeout x attempts + retry
  delays) of the opening is attributed to the state the breaker opened from; only a line
  later than any call can last is a call that passed while OPEN.

Applications: report/journal "<log_type> received successfully. event_id: <id>, ..." (also
logged when the repository skipped an existing document: a preceding "... already exists"
warning marks the application `dedup="db_existing"`, an effect that did not happen again);
stock "Received transaction log: {...}". Kugelpos' stock logs that line before its duplicate
check and then "Processing transaction N (type: T) for tenant …" for a delivery it applies;
once such a line is seen the stream is in that order, and a following "Duplicate transaction
log received: <id>" takes the delivery's application back (a stream without "Processing"
lines — the stand-in, which logs "Received" after the effect — keeps it). Skips: "Message
already processed. event_id: <id>" and "Duplicate transaction log received: <id>".

Per-event idempotency evidence (the duplicate checker's): the Dapr helper's "Successfully
saved state for <id>" / "Failed to save state for <id>" / "OPEN - rejecting save state for
<id>" lines of a subscriber are its mark writes; "Failed to get state for <id>" / "OPEN -
rejecting get state for <id>" / report's "Error checking for duplicates: ... event_id: <id>"
make that event's next application `dedup="error"` (its check could not reach the store).
"""

from __future__ import annotations

import calendar
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import StringPool, event_key, topic_of_log_type
from kugeldrill.checkers.model import (
    TOPIC_TRANLOG,
    Application,
    BreakerCall,
    BreakerTransition,
    MarkWrite,
    StateUnreachable,
)
from kugeldrill.ground.gzfiles import open_stored
from kugeldrill.ground.runfolder import RunFolder

LINE_RE = re.compile(
    r"^(?:(?P<container>[\w.-]+)\s+\|\s+)?"
    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})\s+)?"
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2}),(?P<ms>\d{3}) "
    r"\[(?P<level>[A-Z]+)\] (?P<logger>[^:\s]+): (?P<msg>.*)$"
)

# A line of Python's default logging format or uvicorn's (`INFO:     Started server process`),
# optionally behind a compose prefix: output of another logger, not a continuation line.
_FOREIGN_RE = re.compile(r"^(?:[\w.-]+\s+\|\s+)?(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):\s")
_OPEN_AFTER = re.compile(r"^Circuit breaker OPEN after (\d+) failures")
_HALF_OPEN = "Circuit breaker moved to HALF_OPEN state"
_CLOSED = "Circuit breaker CLOSED after successful operation"
_REJECT = re.compile(r"^Circuit breaker OPEN - rejecting (publish to|get state for|save state for|delete state for|bulk state operation)\s*(.*)$")
_OK = re.compile(r"^Successfully (published event to|saved state for|deleted state for) (.*)$")
_FAIL = re.compile(r"^Failed to (publish event to|save state for|get state for|delete state for) ([^:]*)(?::|$)")
_CART_TRIP = "Circuit breaker tripped. Opening the circuit."
_CART_HALF = "Circuit breaker reset timeout elapsed. Moving to half-open state."
_CART_CLOSE = "Circuit breaker successful request in half-open state. Closing the circuit."
_CART_BYPASS = "Circuit is open. Bypassing cache and using database directly."

_RECEIVED = re.compile(r"^(\w+) received successfully\. event_id: ([^,\s]+)(?:, (.*))?$")
_ALREADY_PROCESSED = re.compile(r"^Message already processed\. event_id: ([^,\s]+)")
_STOCK_RECEIVED = re.compile(r"^Received transaction log: (.*)$")
_STOCK_DUPLICATE = re.compile(r"^Duplicate transaction log received: (\S+)")
_STOCK_PROCESSING = re.compile(r"^Processing transaction (\S+) \(type: [^)]*\) for tenant (\S+) store (\S+), terminal (\S+)")
_ALREADY_EXISTS = re.compile(r"^(Transaction|Cashlog|OpenCloseLog) already exists(.*)$")
_DUP_CHECK_ERROR = re.compile(r"^Error checking for duplicates(?:.*event_id: (\S+))?")

_OP_OF = {
    "publish to": "publish", "published event to": "publish", "publish event to": "publish",
    "get state for": "get", "save state for": "save", "saved state for": "save",
    "delete state for": "delete", "deleted state for": "delete", "bulk state operation": "bulk",
}
_CAMEL = {"tenantId": "tenant_id", "storeCode": "store_code", "terminalNo": "terminal_no",
          "transactionNo": "transaction_no", "businessDate": "business_date", "openCounter": "open_counter",
          "generateDateTime": "generate_date_time", "eventId": "event_id", "eventType": "event_type"}
_FIELD_RE = re.compile(
    r"['\"]?(event_id|eventId|tenant_id|tenantId|store_code|storeCode|terminal_no|terminalNo|transaction_no|"
    r"transactionNo|business_date|businessDate|open_counter|openCounter|operation|generate_date_time|"
    r"generateDateTime|description|amount|event_type|eventType)['\"]?\s*[:=]\s*(?:['\"]([^'\"]*)['\"]|([^,}\s)]+))"
)
LOG_FIELDS = ("breaker_transitions", "breaker_calls", "applications", "duplicate_skips", "state_unreachable",
               "mark_writes")
SUBSCRIBER_APPS = ("report", "journal", "stock")
_LOG_TYPE_OF_EXISTS = {"Transaction": "tranlog", "Cashlog": "cashlog", "OpenCloseLog": "opencloselog"}


def extract_fields(text: str) -> dict[str, str]:
    """First occurrence of each correlation field in JSON, Python-repr or k=v text."""
    out: dict[str, str] = {}
    for m in _FIELD_RE.finditer(text):
        name = _CAMEL.get(m.group(1), m.group(1))
        if name not in out:
            out[name] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def parse_asctime(date: str, clock: str, ms: str) -> float:
    """Kugelpos' asctime (UTC) -> epoch seconds."""
    return calendar.timegm(time.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000.0


def app_of_container(container: str, apps: Iterable[str]) -> str:
    """`kugelpos-report-1` / `report_1` / `report` -> `report` (longest app id contained)."""
    best = ""
    name = container.lower()
    for app in apps:
        if app in name and len(app) > len(best):
            best = app
    return best


# Longest one Dapr call of the stand-in can take (5 s timeout x 3 attempts + backoff), the
# default bound for attributing a call logged while OPEN to the state it opened from.
DEFAULT_MAX_CALL_SECONDS = 20.0


# A transition line and the line of the call that caused it are written back to back (no
# await between them, in the seed and in Kugelpos); further apart, they are not one call.
ADJACENT_SECONDS = 0.1


@dataclass(slots=True)
class _BreakerTrack:
    state: str = "CLOSED"
    # The state the call that caused the last transition was admitted in, for its own
    # ok/fail line right after: (state, wall of the transition line, outcome it must have).
    pending: tuple[str, float, str] | None = None
    opened_from: str = "CLOSED"  # the state of the last move to OPEN
    opened_wall: float = float("-inf")

    def admitted_state(self, wall: float, max_call_seconds: float) -> str:
        """State a call ending now was admitted in (no transition line told us).

        While OPEN, a call that ended within max_call_seconds of the opening may have been
        admitted before it; later than that it can only have passed while OPEN.
        """
        if self.state == "OPEN" and wall - self.opened_wall <= max_call_seconds:
            return self.opened_from
        return self.state

    def take_pending(self, wall: float, outcome: str) -> str | None:
        """The causing call's admission state, if this line is that call's own line.

        A half-open `get` that succeeds logs nothing after "CLOSED after successful
        operation", so a pending entry is dropped unless the very next call line matches.
        """
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        state, at, needs = pending
        if outcome == needs and wall - at <= ADJACENT_SECONDS:
            return state
        return None


@dataclass(slots=True)
class LogParser:
    """Stateful parser: feed lines of one service (or a compose stream) in order."""

    inputs: CheckInputs
    clock_offset: float = 0.0  # mono = wall + offset
    max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS
    since_wall: float | None = None  # earlier lines only update breaker state (a log older than the drill)
    apps: tuple[str, ...] = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
    lines: int = 0
    matched: int = 0
    unparsed: int = 0
    continued: int = 0  # lines of a multi-line record (a receipt's XML, a traceback) after its first line
    matched_records: int = 0  # lines that start a record in Kugelpos' format
    in_flight: int = 0  # call lines logged while OPEN, attributed to the state it opened from
    _breakers: dict[tuple[str, str], _BreakerTrack] = field(default_factory=dict)
    _db_existing: dict[tuple[str, str], deque] = field(default_factory=dict)
    _check_failed: set[tuple[str, str]] = field(default_factory=set)  # (service, event id): its dedup check failed
    _stock_processing: set[int] = field(default_factory=set)  # ids of stock applications that passed the check
    _stock_prechecks: bool = False  # stock's "Received" lines come before its check (Kugelpos' order, seen)
    _pool: StringPool = field(default_factory=StringPool)
    _in_drill: set[str] = field(default_factory=set)  # services whose first line of the drill was seen
    _scratch: CheckInputs = field(default_factory=CheckInputs)
    _out: CheckInputs | None = None

    def feed(self, line: str, service: str = "") -> None:
        self.lines += 1
        m = LINE_RE.match(line.rstrip("\n"))
        if m is None:
            if line.strip():
                # Kugelpos logs multi-line messages (receipts, journals, tracebacks) as one
                # record: the lines after a record's first belong to it. Text before any
                # record, and another logger's lines in a container's output (uvicorn's
                # `INFO:     ...`), are not in Kugelpos' format.
                if self.matched_records and not _FOREIGN_RE.match(line):
                    self.continued += 1
                else:
                    self.unparsed += 1
            return
        self.matched_records += 1
        svc = service or app_of_container(m.group("container") or "", self.apps)
        wall = parse_asctime(m.group("date"), m.group("time"), m.group("ms"))
        mono = wall + self.clock_offset
        # Lines before the drill keep the breaker state machine right but record nothing.
        self._out = self._scratch if self.since_wall is not None and wall < self.since_wall else self.inputs
        if self._out is self._scratch:
            for name in LOG_FIELDS:
                getattr(self._scratch, name).clear()
        elif svc not in self._in_drill:
            self._in_drill.add(svc)
            self._forget_instance_breakers(svc)
        if self._breaker_line(svc, m.group("msg"), wall, mono) or self._subscriber_line(svc, m.group("msg"), wall, mono):
            self.matched += 1

    def _rec(self) -> CheckInputs:
        return self._out if self._out is not None else self.inputs

    # ---- breakers ---------------------------------------------------------------------

    def _forget_instance_breakers(self, svc: str) -> None:
        """A drill starts with the state its own lines give a breaker that lives per instance.

        Only the subscribers hold one breaker for the life of the process (docs/kugelpos-facts.md
        §6.1): their state before the drill is still theirs. Every other service builds its
        Dapr client, and its breaker, per request (the republish job: per run), so an OPEN
        logged before the drill belonged to an instance that is gone; carried over, it would
        make every later call of the service look as if it passed an open breaker."""
        if svc not in SUBSCRIBER_APPS:
            for key in [k for k in self._breakers if k[0] == svc]:
                del self._breakers[key]

    def _track(self, svc: str, name: str) -> _BreakerTrack:
        key = (svc, name)
        tr = self._breakers.get(key)
        if tr is None:
            tr = self._breakers[key] = _BreakerTrack()
        return tr

    def _transition(self, svc: str, name: str, to: str, wall: float, mono: float, failures: int | None,
                    reason: str) -> None:
        tr = self._track(svc, name)
        if tr.state == to:
            return
        self._rec().breaker_transitions.append(BreakerTransition(svc, name, mono, wall, tr.state, to,  # type: ignore[arg-type]
                                                                 failures, reason, seq=self.lines))
        if to == "OPEN":
            tr.opened_from, tr.opened_wall = tr.state, wall
        tr.state = to

    def _call(self, svc: str, name: str, op: str, outcome: str, wall: float, mono: float) -> None:
        tr = self._track(svc, name)
        if outcome == "rejected":
            # Kugelpos' HALF_OPEN admits everything; the seed's rejects calls beyond its trial
            # with the same wording: a rejection is in whichever of the two the breaker is in.
            tr.pending, state = None, tr.state if tr.state in ("OPEN", "HALF_OPEN") else "OPEN"
        else:
            state = tr.take_pending(wall, outcome)
            if state is None:
                state = tr.admitted_state(wall, self.max_call_seconds)
                if tr.state == "OPEN" and state != "OPEN":
                    self.in_flight += 1
        self._rec().breaker_calls.append(BreakerCall(svc, name, mono, wall, state, op, outcome,  # type: ignore[arg-type]
                                                     seq=self.lines))

    def _dapr_call(self, svc: str, verb: str, outcome: str, wall: float, mono: float, key: str = "",
                   reason: str = "") -> None:
        """One call through Kugelpos' Dapr helper (`verb` as its log line words it, `key` the
        state key or topic it names). A state read that did not get through says the store
        was unreachable for that key — for a subscriber, that event's dedup check failed; a
        subscriber's state save is its idempotency mark write."""
        op = _OP_OF[verb]
        self._call(svc, "dapr", op, outcome, wall, mono)
        if op == "get" and outcome != "ok":
            self._rec().state_unreachable.append(StateUnreachable(svc, mono, wall, op, key, reason))
            if svc == "stock" and key and self._stock_prechecks:
                # Stock's application line came before this check: it is that delivery's.
                i = self._latest_stock_application(svc, key)
                if i is not None and not self._rec().applications[i].dedup:
                    self._rec().applications[i].dedup = "error"
            elif svc in SUBSCRIBER_APPS and key:
                self._check_failed.add((svc, key))
        if op == "save" and svc in SUBSCRIBER_APPS and key:
            # A log line says when the call ended: it began at most max_call_seconds earlier.
            self._rec().mark_writes.append(MarkWrite(svc, self._pool(key), mono, wall, outcome == "ok",
                                                     "" if outcome == "ok" else reason,
                                                     started_mono=mono - self.max_call_seconds))

    def _breaker_line(self, svc: str, msg: str, wall: float, mono: float) -> bool:
        if not (msg.startswith("Circuit") or msg.startswith("Successfully") or msg.startswith("Failed to")):
            return False
        m = _OPEN_AFTER.match(msg)
        if m:
            tr = self._track(svc, "dapr")
            # The call whose failure this is was admitted before the breaker (re)opened: in the
            # current state, or (a repeated line while OPEN) in the state it opened from.
            tr.pending = (tr.admitted_state(wall, self.max_call_seconds), wall, "fail")
            self._transition(svc, "dapr", "OPEN", wall, mono, int(m.group(1)), msg)
            return True
        if msg.startswith(_HALF_OPEN):
            self._track(svc, "dapr").pending = None
            self._transition(svc, "dapr", "HALF_OPEN", wall, mono, None, msg)
            return True
        if msg.startswith(_CLOSED):
            self._track(svc, "dapr").pending = ("HALF_OPEN", wall, "ok")
            self._transition(svc, "dapr", "CLOSED", wall, mono, 0, msg)
            return True
        m = _REJECT.match(msg)
        if m:
            self._dapr_call(svc, m.group(1), "rejected", wall, mono, m.group(2).strip(), "breaker open")
            return True
        m = _OK.match(msg)
        if m:
            self._dapr_call(svc, m.group(1), "ok", wall, mono, m.group(2).strip())
            return True
        m = _FAIL.match(msg)
        if m:
            self._dapr_call(svc, m.group(1), "fail", wall, mono, m.group(2).strip(), msg)
            return True
        if msg.startswith(_CART_TRIP):
            self._transition(svc, "cartstore", "OPEN", wall, mono, None, msg)
            return True
        if msg.startswith(_CART_HALF):
            self._transition(svc, "cartstore", "HALF_OPEN", wall, mono, None, msg)
            return True
        if msg.startswith(_CART_CLOSE):
            self._transition(svc, "cartstore", "CLOSED", wall, mono, 0, msg)
            return True
        if msg.startswith(_CART_BYPASS):
            self._call(svc, "cartstore", "get", "rejected", wall, mono)
            return True
        return False

    # ---- subscribers ------------------------------------------------------------------

    def _subscriber_line(self, svc: str, msg: str, wall: float, mono: float) -> bool:
        m = _RECEIVED.match(msg)
        if m:
            log_type, event_id, body = m.group(1), m.group(2), m.group(3) or ""
            topic = topic_of_log_type(log_type) or ""
            fields = extract_fields(body)
            key = event_key(topic, fields)
            dedup = ""
            pending = self._db_existing.get((svc, log_type.lower()))
            if pending:
                # Match the "already exists" warning of this document: by key if it named one.
                for i, pkey in enumerate(pending):
                    if pkey == "" or pkey == key:
                        del pending[i]
                        dedup = "db_existing"
                        break
            if not dedup and (svc, event_id) in self._check_failed:
                self._check_failed.discard((svc, event_id))
                dedup = "error"
            self._rec().applications.append(Application(svc, self._pool(event_id), topic, key, mono, wall, None, dedup))
            return True
        m = _STOCK_RECEIVED.match(msg)
        if m:
            fields = extract_fields(m.group(1))
            event_id = fields.get("event_id")
            dedup = ""
            if event_id and not self._stock_prechecks and (svc or "stock", event_id) in self._check_failed:
                self._check_failed.discard((svc or "stock", event_id))
                dedup = "error"
            self._rec().applications.append(Application(
                svc or "stock", self._pool(event_id) if event_id else None, TOPIC_TRANLOG,
                event_key(TOPIC_TRANLOG, fields), mono, wall, None, dedup))
            return True
        m = _STOCK_PROCESSING.match(msg)
        if m:
            self._stock_prechecks = True
            txn, tenant, store, terminal = m.groups()
            key = event_key(TOPIC_TRANLOG, {"tenant_id": tenant, "store_code": store, "terminal_no": terminal,
                                            "transaction_no": txn})
            apps = self._rec().applications
            for i in range(len(apps) - 1, max(-1, len(apps) - 200), -1):
                if apps[i].subscriber == (svc or "stock") and apps[i].key == key and id(apps[i]) not in self._stock_processing:
                    self._stock_processing.add(id(apps[i]))
                    break
            return True
        m = _STOCK_DUPLICATE.match(msg)
        if m:
            self._rec().duplicate_skips.append((svc, m.group(1), mono))
            self._take_back_stock_application(svc or "stock", m.group(1))
            return True
        m = _ALREADY_PROCESSED.match(msg)
        if m:
            self._rec().duplicate_skips.append((svc, m.group(1), mono))
            return True
        m = _ALREADY_EXISTS.match(msg)
        if m:
            log_type = _LOG_TYPE_OF_EXISTS[m.group(1)]
            fields = extract_fields(m.group(2))
            key = event_key(topic_of_log_type(log_type) or "", fields) if fields else ""
            self._db_existing.setdefault((svc, log_type), deque()).append(key)
            return True
        m = _DUP_CHECK_ERROR.match(msg)
        if m:
            event_id = (m.group(1) or "").rstrip(".,")
            self._rec().state_unreachable.append(StateUnreachable(svc, mono, wall, "get", event_id, msg))
            if event_id:
                self._check_failed.add((svc, event_id))
            return True
        return False

    def _latest_stock_application(self, svc: str, event_id: str) -> int | None:
        """Index of the latest stock application of `event_id` among the recent records."""
        apps = self._rec().applications
        for i in range(len(apps) - 1, max(-1, len(apps) - 200), -1):
            if apps[i].subscriber == svc and apps[i].event_id == event_id:
                return i
        return None

    def _take_back_stock_application(self, svc: str, event_id: str) -> None:
        """Stock logs "Received transaction log" before its duplicate check: the latest such
        line for this event was a skipped duplicate, not an effect."""
        if not self._stock_prechecks:
            return  # "Received" follows the effect in this stream: the skip had its own line
        i = self._latest_stock_application(svc, event_id)
        if i is not None and id(self._rec().applications[i]) not in self._stock_processing:
            del self._rec().applications[i]


def parse_log_lines(lines: Iterable[str], *, service: str = "", clock_offset: float = 0.0,
                    inputs: CheckInputs | None = None, max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS,
                    since_wall: float | None = None) -> CheckInputs:
    """Parse one stream of lines (one service's file, or a compose stream with prefixes)."""
    inputs = inputs if inputs is not None else CheckInputs()
    parser = LogParser(inputs, clock_offset, max_call_seconds, since_wall)
    for line in lines:
        parser.feed(line, service)
    if parser.unparsed:
        inputs.notes.append(f"{parser.unparsed} log lines were not in Kugelpos' format")
    return inputs


def parse_log_files(files: Mapping[str, Iterable[str | Path]], *, clock_offset: float = 0.0,
                    max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS, since_wall: float | None = None) -> CheckInputs:
    """app -> log files ("" as app: compose-prefixed streams). Marks the log-derived fields.

    since_wall: lines older than this (a deployment's log from before the drill) only
    advance the breaker state machines; they produce no records.
    """
    inputs = CheckInputs()
    read: list[str] = []
    for app, paths in files.items():
        parser = LogParser(inputs, clock_offset, max_call_seconds, since_wall)
        for path in paths:
            try:
                with open_stored(path, "rt", errors="replace") as fh:  # plain or gzipped
                    for line in fh:
                        parser.feed(line, app)
            except OSError as exc:
                inputs.notes.append(f"cannot read log {path}: {exc}")
                continue
            read.append(str(path))
        if parser.unparsed:
            inputs.notes.append(f"{parser.unparsed} lines of {app or 'compose'} logs were not in Kugelpos' format")
        if parser.in_flight:
            inputs.notes.append(f"{parser.in_flight} call(s) of {app or 'compose'} logged while a breaker was OPEN, "
                                f"within {max_call_seconds:g}s of its opening, were counted as admitted before it")
    names = LOG_FIELDS
    if read:
        for name in names:
            inputs.mark(name, "Kugelpos logs: " + ", ".join(read))
        if inputs.applications and not any(m.ok for m in inputs.mark_writes):
            # The helper logs a written mark at INFO: a log without a single one does not say
            # that no mark was written, only that INFO lines were not logged.
            inputs.sources.pop("mark_writes", None)
            inputs.mark_missing("mark_writes", "no 'Successfully saved state for <id>' line in the logs "
                                               "(INFO not logged?): whether a mark was written is not known")
    else:
        for name in names:
            inputs.mark_missing(name, "no Kugelpos log file could be read")
    return inputs


@dataclass(frozen=True, slots=True)
class LineMatches:
    """Lines of one app's log that match a pattern: how many, and the first few verbatim."""

    count: int
    lines: tuple[str, ...]


def matching_lines(run_dir: str | Path, app: str, pattern: re.Pattern[str], *, since_wall: float | None = None,
                   until_wall: float | None = None, limit: int = 3) -> LineMatches | None:
    """`app`'s log in a run folder (`logs/<app>.log`, plain or gzipped): the lines matching
    `pattern` that were logged between `since_wall` and `until_wall` (a line without its own
    time belongs to the record above it). None when the run folder holds no log of `app`.

    What a suite's known-defect evidence reads (kugeldrill.suite): a deployment's log spans
    every drill since it started, so only the drill's own time counts."""
    path = RunFolder(run_dir).logs_dir / f"{app}.log"
    wall: float | None = None
    count, first = 0, []
    try:
        with open_stored(path, "rt", errors="replace") as fh:
            for raw in fh:
                line = raw.rstrip("\n")
                m = LINE_RE.match(line)
                if m:
                    wall = parse_asctime(m.group("date"), m.group("time"), m.group("ms"))
                if wall is not None and ((since_wall is not None and wall < since_wall)
                                         or (until_wall is not None and wall > until_wall)):
                    continue
                if pattern.search(line):
                    count += 1
                    if len(first) < limit:
                        first.append(line[:500])
    except FileNotFoundError:
        return None
    return LineMatches(count, tuple(first))


def describe(inputs: CheckInputs) -> dict[str, Any]:
    """Small summary for tests and notes."""
    return {"transitions": len(inputs.breaker_transitions), "calls": len(inputs.breaker_calls),
            "applications": len(inputs.applications), "skips": len(inputs.duplicate_skips)}
