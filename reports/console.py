"""The live console: what a person watching a drill needs, once a second.

On a terminal it is a rich Live panel (phase, elapsed/remaining, active faults, breaker
states, requests/s, errors, events published/applied). Elsewhere (CI logs) it prints one
plain line on each phase change and at most every `plain_interval` seconds, so a
ten-minute soak does not flood the log.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from kugeldrill.reports.summary import ExpectationResult, RunSummary

STATE_STYLE = {"CLOSED": "green", "HALF_OPEN": "yellow", "OPEN": "bold red"}


@dataclass
class LiveStatus:
    """One snapshot of the drill for the console."""

    scenario: str
    phase: str
    elapsed: float = 0.0
    remaining: float | None = None
    active_faults: list[dict[str, Any]] = field(default_factory=list)
    breakers: dict[str, str] = field(default_factory=dict)  # "cart/dapr" -> state
    rps: float | None = None
    fails_s: float | None = None
    requests: int | None = None
    failures: int | None = None
    published: int = 0
    applied: int = 0

    def plain(self) -> str:
        faults = ", ".join(f"{f.get('kind')} {f.get('link')}" for f in self.active_faults) or "none"
        opened = [k for k, v in self.breakers.items() if v != "CLOSED"]
        brk = ", ".join(f"{k}={self.breakers[k]}" for k in opened) or "all closed"
        rem = f" remaining {self.remaining:.0f}s" if self.remaining is not None else ""
        load = (f"{self.rps:.1f} req/s, {self.fails_s or 0:.1f} fail/s" if self.rps is not None else "no stats yet")
        return (f"[{self.scenario}] {self.phase} t={self.elapsed:.0f}s{rem} | load {load} | faults {faults} | "
                f"breakers {brk} | events published {self.published} applied {self.applied}")


class Console:
    """Chooses rich Live on a TTY, plain lines otherwise; `message()` for one-off lines."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, plain_interval: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.live_mode = self.stream.isatty() if live is None else live
        self.plain_interval = plain_interval
        self._last_plain = 0.0
        self._last_phase = ""
        self._live: Any = None
        self._rich_console: Any = None

    def __enter__(self) -> "Console":
        if self.live_mode:
            from rich.console import Console as RichConsole
            from rich.live import Live

            self._rich_console = RichConsole(file=self.stream)
            self._live = Live(console=self._rich_console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def message(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, status: LiveStatus) -> None:
        if self._live is not None:
            self._live.update(self._render(status))
            return
        now = time.monotonic()
        if status.phase != self._last_phase or now - self._last_plain >= self.plain_interval:
            self._last_phase, self._last_plain = status.phase, now
            print(status.plain(), file=self.stream, flush=True)

    @staticmethod
    def _render(s: LiveStatus) -> Any:
        from rich.table import Table

        table = Table(title=f"kugeldrill · {s.scenario}", show_header=False, expand=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        rem = f" / {s.remaining:.0f}s left" if s.remaining is not None else ""
        table.add_row("phase", f"{s.phase}  ({s.elapsed:.0f}s{rem})")
        table.add_row("load", "waiting for Locust stats" if s.rps is None else
                      f"{s.rps:.1f} req/s · {s.fails_s or 0:.1f} fail/s · total {s.requests or 0} "
                      f"({s.failures or 0} failed)")
        faults = "\n".join(f"[red]{f.get('kind')}[/] {f.get('link')} ({f.get('remaining', 0):.0f}s left)"
                           for f in s.active_faults) or "[green]none[/]"
        table.add_row("faults", faults)
        brk = "  ".join(f"{k}: [{STATE_STYLE.get(v, 'white')}]{v}[/]" for k, v in sorted(s.breakers.items()))
        table.add_row("breakers", brk or "[green]no transitions yet[/]")
        table.add_row("events", f"published {s.published} · applied {s.applied}")
        return table


MAX_LINE = 220


def _flat(record: dict[str, Any]) -> str:
    """`k=v` for a record's plain fields (nested values left out), for one evidence line."""
    return ", ".join(f"{k}={v}" for k, v in record.items() if not isinstance(v, (dict, list)) and v not in (None, ""))


def one_line_evidence(exp: ExpectationResult) -> str:
    """The first piece of evidence of a failed or unknown expectation, on one line.

    Comparison tables (key, expected, observed) give their first row; checkers give the
    first example of their first failure kind; otherwise the observed value says it.
    """
    ev = exp.evidence or {}
    rows = ev.get("mismatches")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        r = rows[0]
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        return f"{r.get('key')}: expected {r.get('expected')}, observed {r.get('observed')}{more}"
    examples = ev.get("examples")
    if isinstance(examples, dict):
        for kind, items in examples.items():
            if items and isinstance(items[0], dict):
                return f"{kind}: {_flat(items[0])}"
    return exp.observed


def failure_lines(summary: RunSummary) -> list[str]:
    """One line per failed or unknown expectation: what was expected, what was seen, first evidence.

    Printed at the end of a drill's console output (a terminal or a CI log), so the reason
    for a red verdict is where the user is looking, not only inside report.html.
    """
    out = [f"  NOT HEALED {item} — run 'kugeldrill heal'" for item in summary.unhealed]
    for exp in summary.failed_expectations():
        label = "UNKNOWN" if exp.passed is None else "FAILED"
        line = f"  {label} {exp.name}: expected {exp.expected}; observed {exp.observed}"
        evidence = one_line_evidence(exp)
        if evidence and evidence != exp.observed:
            line += f" | {evidence}"
        out.append(line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…")
    return out
