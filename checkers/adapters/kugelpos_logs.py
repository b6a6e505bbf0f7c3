"""Kugelpos' plain-text log lines -> breaker transitions/calls, applications, skips.

Format (services/*/app/logging.conf): `%(asctime)s [%(levelname)s] %(name)s: %(message)s`,
asctime `YYYY-MM-DD HH:MM:SS,mmm` in UTC, optionally behind a `docker compose logs` prefix
(`report-1  | ...`). The wording matched here is Kugelpos' own (kugelpos.md §5.2, §5.3, §6.1).

Quirks of the real breaker that shape this parser (kugelpos.md §6.1, Surprise 6):
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

Applications: report/journal "<log_type> received successfully. event_id: <id>, ..." (also
logged when the repository skipped an existing document: a preceding "... already exists"
warning marks the application `dedup="db_existing"`, an effect that did not happen again);
stock "Received transaction log: {...}". Skips: "Message already processed. event_id: <id>"
and "Duplicate transaction log received: <id>".
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

from checkers.inputs import CheckInputs
from checkers.keys import StringPool, event_key, topic_of_log_type
from checkers.model import TOPIC_TRANLOG, Application, BreakerCall, BreakerTransition, StateUnreachable

LINE_RE = re.compile(
    r"^(?:(?P<container>[\w.-]+)\s+\|\s+)?"
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2}),(?P<ms>\d{3}) "
    r"\[(?P<level>[A-Z]+)\] (?P<logger>[^:\s]+): (?P<msg>.*)$"
)

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
_ALREADY_EXISTS = re.compile(r"^(Transaction|Cashlog|OpenCloseLog) already exists(.*)$")
_DUP_CHECK_ERROR = re.compile(r"^Error checking for duplicates")

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


@dataclass(slots=True)
class _BreakerTrack:
    state: str = "CLOSED"
    admitted_as: deque = field(default_factory=deque)  # states for the next ok/fail lines


@dataclass(slots=True)
class LogParser:
    """Stateful parser: feed lines of one service (or a compose stream) in order."""

    inputs: CheckInputs
    clock_offset: float = 0.0  # mono = wall + offset
    apps: tuple[str, ...] = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
    lines: int = 0
    matched: int = 0
    unparsed: int = 0
    _breakers: dict[tuple[str, str], _BreakerTrack] = field(default_factory=dict)
    _db_existing: dict[tuple[str, str], deque] = field(default_factory=dict)
    _pool: StringPool = field(default_factory=StringPool)

    def feed(self, line: str, service: str = "") -> None:
        self.lines += 1
        m = LINE_RE.match(line.rstrip("\n"))
        if m is None:
            if line.strip():
                self.unparsed += 1
            return
        svc = service or app_of_container(m.group("container") or "", self.apps)
        wall = parse_asctime(m.group("date"), m.group("time"), m.group("ms"))
        mono = wall + self.clock_offset
        if self._breaker_line(svc, m.group("msg"), wall, mono) or self._subscriber_line(svc, m.group("msg"), wall, mono):
            self.matched += 1

    # ---- breakers ---------------------------------------------------------------------

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
        self.inputs.breaker_transitions.append(BreakerTransition(svc, name, mono, wall, tr.state, to,  # type: ignore[arg-type]
                                                                 failures, reason))
        tr.state = to

    def _call(self, svc: str, name: str, op: str, outcome: str, wall: float, mono: float) -> None:
        tr = self._track(svc, name)
        state = tr.admitted_as.popleft() if tr.admitted_as else tr.state
        if outcome == "rejected":
            state = "OPEN"
        self.inputs.breaker_calls.append(BreakerCall(svc, name, mono, wall, state, op, outcome))  # type: ignore[arg-type]

    def _breaker_line(self, svc: str, msg: str, wall: float, mono: float) -> bool:
        if not (msg.startswith("Circuit") or msg.startswith("Successfully") or msg.startswith("Failed to")):
            return False
        m = _OPEN_AFTER.match(msg)
        if m:
            tr = self._track(svc, "dapr")
            # The call whose failure this is was admitted before the breaker (re)opened.
            tr.admitted_as.append("HALF_OPEN" if tr.state in ("HALF_OPEN", "OPEN") else "CLOSED")
            self._transition(svc, "dapr", "OPEN", wall, mono, int(m.group(1)), msg)
            return True
        if msg.startswith(_HALF_OPEN):
            self._transition(svc, "dapr", "HALF_OPEN", wall, mono, None, msg)
            return True
        if msg.startswith(_CLOSED):
            self._track(svc, "dapr").admitted_as.append("HALF_OPEN")
            self._transition(svc, "dapr", "CLOSED", wall, mono, 0, msg)
            return True
        m = _REJECT.match(msg)
        if m:
            op = _OP_OF[m.group(1)]
            self._call(svc, "dapr", op, "rejected", wall, mono)
            if op == "get":
                self.inputs.state_unreachable.append(StateUnreachable(svc, mono, wall, op, m.group(2), "breaker open"))
            return True
        m = _OK.match(msg)
        if m:
            self._call(svc, "dapr", _OP_OF[m.group(1)], "ok", wall, mono)
            return True
        m = _FAIL.match(msg)
        if m:
            op = _OP_OF[m.group(1)]
            self._call(svc, "dapr", op, "fail", wall, mono)
            if op == "get":
                self.inputs.state_unreachable.append(StateUnreachable(svc, mono, wall, op, m.group(2).strip(), msg))
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
            self.inputs.applications.append(Application(svc, self._pool(event_id), topic, key, mono, wall, None, dedup))
            return True
        m = _STOCK_RECEIVED.match(msg)
        if m:
            fields = extract_fields(m.group(1))
            event_id = fields.get("event_id")
            self.inputs.applications.append(Application(
                svc or "stock", self._pool(event_id) if event_id else None, TOPIC_TRANLOG,
                event_key(TOPIC_TRANLOG, fields), mono, wall))
            return True
        m = _ALREADY_PROCESSED.match(msg) or _STOCK_DUPLICATE.match(msg)
        if m:
            self.inputs.duplicate_skips.append((svc, m.group(1), mono))
            return True
        m = _ALREADY_EXISTS.match(msg)
        if m:
            log_type = _LOG_TYPE_OF_EXISTS[m.group(1)]
            fields = extract_fields(m.group(2))
            key = event_key(topic_of_log_type(log_type) or "", fields) if fields else ""
            self._db_existing.setdefault((svc, log_type), deque()).append(key)
            return True
        if _DUP_CHECK_ERROR.match(msg):
            self.inputs.state_unreachable.append(StateUnreachable(svc, mono, wall, "get", "", msg))
            return True
        return False


def parse_log_lines(lines: Iterable[str], *, service: str = "", clock_offset: float = 0.0,
                    inputs: CheckInputs | None = None) -> CheckInputs:
    """Parse one stream of lines (one service's file, or a compose stream with prefixes)."""
    inputs = inputs if inputs is not None else CheckInputs()
    parser = LogParser(inputs, clock_offset)
    for line in lines:
        parser.feed(line, service)
    if parser.unparsed:
        inputs.notes.append(f"{parser.unparsed} log lines were not in Kugelpos' format")
    return inputs


def parse_log_files(files: Mapping[str, Iterable[str | Path]], *, clock_offset: float = 0.0) -> CheckInputs:
    """app -> log files ("" as app: compose-prefixed streams). Marks the log-derived fields."""
    inputs = CheckInputs()
    read: list[str] = []
    for app, paths in files.items():
        parser = LogParser(inputs, clock_offset)
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        parser.feed(line, app)
            except OSError as exc:
                inputs.notes.append(f"cannot read log {path}: {exc}")
                continue
            read.append(str(path))
        if parser.unparsed:
            inputs.notes.append(f"{parser.unparsed} lines of {app or 'compose'} logs were not in Kugelpos' format")
    names = ("breaker_transitions", "breaker_calls", "applications", "duplicate_skips", "state_unreachable")
    if read:
        for name in names:
            inputs.mark(name, "Kugelpos logs: " + ", ".join(read))
    else:
        for name in names:
            inputs.mark_missing(name, "no Kugelpos log file could be read")
    return inputs


def describe(inputs: CheckInputs) -> dict[str, Any]:
    """Small summary for tests and notes."""
    return {"transitions": len(inputs.breaker_transitions), "calls": len(inputs.breaker_calls),
            "applications": len(inputs.applications), "skips": len(inputs.duplicate_skips)}
