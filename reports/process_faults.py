"""The report's "Process faults" section: each kill, pause or restart with its pids, what
Redis lost and what came back, and what happened to the events in flight — as tables of
numbers (`data-*` attributes and classes let tests and tools read them)."""

from __future__ import annotations

from html import escape
from typing import Any

from kugeldrill.reports.cells import cell_text
from kugeldrill.chaos.record import AppliedFault
from kugeldrill.reports.summary import RunSummary

INVENTORY_ROWS = (("keys", "keys", None), ("markers_total", "idempotency markers", "markers_survived"),
                  ("stream_entries_total", "stream entries", "stream_entries_survived"),
                  ("groups_total", "consumer groups", "groups_survived"),
                  ("pending_total", "pending entries (read, not acked)", "pending_survived"))
RECOVERY_ROWS = (("in_flight", "event × subscriber pairs in flight at the fault"),
                 ("recovered", "… applied after the fault started"),
                 ("recovered_after_fault_end", "… of which only after it ended"),
                 ("lost", "… never applied"),
                 ("duplicated_across_fault", "applied before and again after the fault"),
                 ("publish_failed_during", "publishes that failed during the fault"),
                 ("republished_after", "republishes after the fault (outbox)"),
                 ("kills", "SIGKILLs"))


def _actions(fault: AppliedFault, summary: RunSummary) -> str:
    rows = []
    for a in fault.events:
        ready = f"{summary.since_t0(a.ready_mono):.2f}" if a.ready_mono is not None else escape(a.ready_error or "–")
        rows.append(f'<tr class="process-action{" failed" if a.error else ""}" data-action="{escape(a.action)}">'
                    f'<td>{escape(a.action)}</td><td class="num">{cell_text(summary.since_t0(a.mono), 2)}</td>'
                    f'<td>{escape(str(a.pids_before or []))}</td><td>{escape(str(a.pids_after or []))}</td>'
                    f'<td>{escape(a.outcome or "")}</td><td class="num">{ready}</td>'
                    f'<td>{escape(a.error or "")}</td></tr>')
    if not rows:
        return '<p class="muted">no action recorded</p>'
    return ('<table class="process-actions"><tr><th>action</th><th>at (s)</th><th>pids before</th><th>pids after</th>'
            '<th>outcome</th><th>answering again at (s)</th><th>error</th></tr>' + "".join(rows) + "</table>")


def _inventory(redis: dict[str, Any]) -> str:
    """Rows: keys, markers, stream entries, groups, pending. Columns: before; right after the
    restart (count, and how many of the ones before survived); lost; at the end."""
    after = redis.get("after_restart") or {}
    survived = after.get("survived") or {}
    lost = redis.get("lost") or {}
    head = ("<th>before the fault</th><th>right after the restart</th><th>… of those before, still there</th>"
            "<th>lost</th><th>at the end (quiet)</th>")
    body = []
    for key, label, surv in INVENTORY_ROWS:
        cells = [("before", (redis.get("before") or {}).get(key)), ("after_restart", after.get(key)),
                 ("survived", survived.get(surv) if surv else None), ("lost", lost.get(key) if surv else None),
                 ("end", (redis.get("end") or {}).get(key))]
        body.append(f'<tr data-row="{key}"><th>{escape(label)}</th>'
                    + "".join(f'<td class="num" data-col="{col}">{cell_text(v, 2)}</td>' for col, v in cells) + "</tr>")
    errors = [f"{col}: {(redis.get(col) or {}).get('error')}" for col in ("before", "after_restart", "end")
              if (redis.get(col) or {}).get("error")]
    note = f'<p class="muted">unreadable: {escape("; ".join(errors))}</p>' if errors else ""
    return f'<table class="redis-inventory"><tr><th>Redis</th>{head}</tr>{"".join(body)}</table>{note}'


def _recovery(rec: dict[str, Any] | None) -> str:
    if not rec:
        return '<p class="muted">no publication or application records to follow the events in flight</p>'
    body = "".join(f'<tr data-row="{key}"><th>{escape(label)}</th><td class="num">{cell_text(rec.get(key), 2)}</td></tr>'
                   for key, label in RECOVERY_ROWS)
    lost = rec.get("state_lost")
    body += (f'<tr data-row="state_lost"><th>idempotency markers lost</th><td>'
             f'{"–" if lost is None else ("yes" if lost else "no")}</td></tr>')
    return f'<table class="recovery">{body}</table>'


def render_process_faults(summary: RunSummary) -> str:
    """The section's HTML; empty when the run had no process fault."""
    faults = [f for f in summary.faults if f.process]
    if not faults:
        return ""
    extra = {p.id: p for p in summary.process_faults}
    parts = []
    for f in faults:
        info = extra.get(f.id)
        acted = [a for a in f.events if a.pids_before or a.pids_after]
        pids = (f"pids {acted[0].pids_before} → {acted[-1].pids_after}" if acted else "pids not known")
        parts.append(f'<div class="process-fault" data-process="{escape(f.process or "")}" data-kind="{escape(f.kind)}">'
                     f'<h3>{escape(f.kind)} <code>{escape(f.process or "")}</code> <span class="muted">'
                     f'({escape(f.id)}, {escape(pids)})</span></h3>')
        parts.append(_actions(f, summary))
        if info is not None and info.redis:
            parts.append(_inventory(info.redis))
        if info is not None:
            parts.append(_recovery(info.recovery))
        parts.append("</div>")
    return "".join(parts)
