"""Kugelpos' own per-request log (`request.log` in each service's working directory), read as records.

Every Kugelpos service logs each request it answers through kugel_common's `log_requests`
middleware into `request.log` (logging.conf's `requestLogger`), as a multi-line block:

    2026-12-07 03:45:19,052 : 
    [Client:]
    ip_address-> 127.0.0.1
    [Request:]
    method-> GET
    url-> http://127.0.0.1:43497/api/v1/terminals/T1234-5678-1?x=1
    body-> None
    [Response:]
    status_code-> 200
    process_time_ms-> 32
    body-> {...}
    ...

Counting these blocks per service during a load phase says how many internal calls one
sale costs (cart asking terminal to check the API key, master-data asked for items and
settings, each subscriber's delivery) — where the time goes, by process, from Kugelpos'
own records. Paths are reduced to route templates (`/api/v1/terminals/{}`) so that calls
of one route count together.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r"^method-> (?P<method>[A-Z]+)\nurl-> (?P<url>\S+)\n.*?"
                    r"^status_code-> (?P<status>\d+)\nprocess_time_ms-> (?P<ms>\d+)$", re.M | re.S)
_STATIC = re.compile(r"[a-z][a-zA-Z-]*|v\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request a service answered: method, route template, status and its own processing time."""

    method: str
    route: str
    status: int
    process_ms: int

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}"


def route_template(url: str) -> str:
    """`/api/v1/terminals/{}` for `http://h:p/api/v1/terminals/T1234-5678-1?x=1`: every path
    segment that is not a plain lower-case route word (ids, codes, numbers, setting names) is `{}`."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url).split("?", 1)[0] or "/"
    segments = [s if not s or (len(s) < 24 and _STATIC.fullmatch(s)) else "{}" for s in path.split("/")]
    return "/".join(segments) or "/"


def parse_requests(text: str) -> list[LoggedRequest]:
    """The request blocks of a piece of request.log (a block cut at either end is skipped)."""
    return [LoggedRequest(m["method"], route_template(m["url"]), int(m["status"]), int(m["ms"]))
            for m in _BLOCK.finditer(text)]


@dataclass
class RequestLogReader:
    """Reads the blocks a request.log gained since the last `mark()` (the file only grows)."""

    path: Path
    offset: int = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> list[LoggedRequest]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            text = fh.read().decode("utf-8", "replace")
        return parse_requests(text)


def count_routes(requests: list[LoggedRequest]) -> Counter[str]:
    return Counter(r.name for r in requests)
