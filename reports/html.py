"""report.html: one self-contained page (inline CSS and SVG, no script, no CDN).

It answers, in order: did the drill pass; which expectation failed and on what evidence;
what happened when (the timeline chart); then the details a person digs into: fan-out
matrix, duplicates, convergence, the faults as applied, and Locust's per-endpoint numbers.
"""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Any

from kugeldrill.checkers.model import CheckResult
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.chart import render_timeline_svg
from kugeldrill.reports.cells import cell_text
from kugeldrill.reports.process_faults import render_process_faults
from kugeldrill.reports.summary import LoadTotals, RunSummary

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}.badge{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:bold}
.badge.pass,.badge.passed{background:#2e7d32}.badge.fail,.badge.failed{background:#c62828}.badge.unknown,.badge.interrupted,.badge.error{background:#ef6c00}
tr.failed{background:#ffebee}tr.unknown{background:#fff3e0}
tr.failed td:first-child,tr.unknown td:first-child{border-left:4px solid #c62828}
pre{background:#fafafa;border:1px solid #eee;padding:6px;max-height:320px;overflow:auto;font-size:12px;margin:4px 0;white-space:pre-wrap;word-break:break-all}
td.observed{overflow-wrap:anywhere}.badge{white-space:nowrap}
.muted{color:#777}.num{text-align:right;font-variant-numeric:tabular-nums}
details summary{cursor:pointer;color:#1565c0}
"""


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "–"


MAX_ROWS = 20


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"<code>{escape(json.dumps(value, default=str))[:300]}</code>"
    return cell_text(value, 3) if isinstance(value, float) else escape("–" if value is None else str(value))


def _records_table(items: list[dict[str, Any]], cls: str = "evidence", limit: int = MAX_ROWS) -> str:
    """A list of flat records as a table: one column per key, first rows only."""
    cols: list[str] = []
    for item in items:
        cols += [k for k in item if k not in cols]
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(item.get(c))}</td>" for c in cols) + "</tr>"
                   for item in items[:limit])
    more = f'<p class="muted">… {len(items) - limit} more</p>' if len(items) > limit else ""
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>{more}'


def evidence_html(evidence: dict[str, Any]) -> str:
    """Evidence as tables a person reads: lists of records as tables (e.g. key, expected,
    observed), mappings as key/value rows, nested groups (examples per kind) each titled."""
    parts: list[str] = []
    scalars = {k: v for k, v in evidence.items() if not isinstance(v, (dict, list))}
    if scalars:
        parts.append(_kv_table(scalars, "evidence"))
    for key, value in evidence.items():
        if key in scalars or not value:
            continue
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            parts.append(f"<p><b>{escape(str(key))}</b></p>" + _records_table(value))
        elif isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
            for kind, items in value.items():
                if items and all(isinstance(i, dict) for i in items):
                    parts.append(f"<p><b>{escape(str(key))}: {escape(str(kind))}</b></p>" + _records_table(items))
                elif items:
                    parts.append(f"<p><b>{escape(str(key))}: {escape(str(kind))}</b> {_cell(items)}</p>")
        elif isinstance(value, dict):
            parts.append(f"<p><b>{escape(str(key))}</b></p>" + _kv_table(value, "evidence"))
        else:
            parts.append(f"<p><b>{escape(str(key))}</b> {_cell(value)}</p>")
    return "".join(parts)


def _expectations(summary: RunSummary) -> str:
    if not summary.expectations:
        return '<p class="muted">No expectation was judged (the drill did not get that far).</p>'
    rows = []
    for e in summary.expectations:
        evidence = (f'<details{" open" if e.passed is not True else ""}><summary>evidence</summary>'
                    f'{evidence_html(e.evidence)}</details>') if e.evidence else ""
        rows.append(f'<tr class="expectation {e.outcome}" data-outcome="{e.outcome}"><td><span class="badge {e.outcome}">'
                    f'{e.outcome}</span></td><td>{escape(e.name)}</td><td>{escape(e.expected)}</td>'
                    f'<td class="observed">{escape(e.observed)}{evidence}</td></tr>')
    return ('<table class="expectations"><tr><th>outcome</th><th>expectation</th><th>expected</th>'
            '<th>observed / evidence</th></tr>' + "".join(rows) + "</table>")


def _kv_table(data: dict[str, Any], cls: str = "") -> str:
    if not data:
        return '<p class="muted">none</p>'
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td class='num'>{cell_text(v, 3) if isinstance(v, float) else escape(str(v))}</td></tr>"
                   for k, v in data.items() if not isinstance(v, (dict, list)))
    nested = {k: v for k, v in data.items() if isinstance(v, (dict, list))}
    extra = ""
    for key, value in nested.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            extra += f"<p><b>{escape(str(key))}</b></p>" + _rows_table(value, "", f"{cls}-{key}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            extra += f"<p><b>{escape(str(key))}</b></p>" + _records_table(value, f"{cls}-{key}")
        elif isinstance(value, dict) and value:
            extra += f"<p><b>{escape(str(key))}</b></p>" + _kv_table(value, f"{cls}-{key}")
        elif value:
            extra += f"<p><b>{escape(str(key))}</b> {_cell(value)}</p>"
    return f'<table class="{cls}">{rows}</table>{extra}'


def _fanout(summary: RunSummary) -> str:
    """Topic × subscriber table: expected, once, missing, duplicated, ... (the checker's matrix)."""
    check = summary.check("fanout")
    if check is None:
        return '<p class="muted">The fan-out checker did not run.</p>'
    counts = check.counts
    matrix = counts.get("matrix") or check.details.get("matrix")
    outcome = {True: "passed", False: "failed", None: "unknown"}[check.valid]
    parts = [f'<p><span class="badge {outcome}">{outcome}</span> {escape(check.summary)}</p>']
    if isinstance(matrix, dict) and matrix:
        cols: list[str] = []
        for per_sub in matrix.values():
            for cell in per_sub.values():
                cols += [k for k in cell if k not in cols]
        head = "".join(f"<th>{escape(c)}</th>" for c in cols)
        rows = []
        for topic, per_sub in matrix.items():
            for sub, cell in per_sub.items():
                bad = any(cell.get(k) for k in ("missing", "duplicated", "unexpected"))
                cells = "".join(f'<td class="num">{escape(str(cell.get(c, 0)))}</td>' for c in cols)
                rows.append(f'<tr class="{"failed" if bad else ""}"><td>{escape(topic)}</td><td>{escape(sub)}</td>{cells}</tr>')
        parts.append(f'<table class="fanout-matrix"><tr><th>topic</th><th>subscriber</th>{head}</tr>{"".join(rows)}</table>')
        rest = {k: v for k, v in counts.items() if k != "matrix"}
        parts.append(_kv_table(rest, "fanout-counts"))
    else:
        parts.append(_kv_table(counts, "fanout-matrix"))
    parts.append(_examples(check))
    return "".join(parts)


def _rows_table(rows: dict[str, dict[str, Any]], first: str, cls: str) -> str:
    """A dict of dicts (e.g. per-subscriber counts) as a table."""
    cols: list[str] = []
    for cell in rows.values():
        cols += [k for k in cell if k not in cols and not isinstance(cell[k], (dict, list))]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join(f"<tr><td>{escape(name)}</td>" + "".join(
        f'<td class="num">{escape(str(cell.get(c, "")))}</td>' for c in cols) + "</tr>" for name, cell in rows.items())
    return f'<table class="{cls}"><tr><th>{escape(first)}</th>{head}</tr>{body}</table>'


def _examples(check: CheckResult) -> str:
    return "".join(f'<details><summary>{escape(kind)} ({len(items)} first examples)</summary>'
                   f'{_records_table(items)}</details>' for kind, items in check.examples.items() if items)


def _checker_section(summary: RunSummary, name: str, empty: str) -> str:
    check = summary.check(name)
    if check is None:
        return f'<p class="muted">{escape(empty)}</p>'
    outcome = {True: "passed", False: "failed", None: "unknown"}[check.valid]
    tolerated = check.details.get("tolerated") or []  # duplicates: each tolerated one with its evidence
    listed = (f"<p><b>tolerated, with the evidence of each</b></p>{_records_table(tolerated, f'{name}-tolerated')}"
              if tolerated else "")
    return (f'<p><span class="badge {outcome}">{outcome}</span> {escape(check.summary)}</p>'
            + _kv_table(check.counts, f"{name}-counts") + listed + _examples(check))


def _outcomes(summary: RunSummary) -> str:
    """Report, journal and stock: what the load should have changed against what they show."""
    check = summary.check("outcomes")
    if check is None:
        return '<p class="muted">The outcome checker did not run.</p>'
    outcome = {True: "passed", False: "failed", None: "unknown"}[check.valid]
    parts = [f'<p><span class="badge {outcome}">{outcome}</span> {escape(check.summary)}</p>']
    for why in check.details.get("unknown") or []:
        text = why.get("reason", why) if isinstance(why, dict) else why  # records carry it under "reason"
        parts.append(f'<p class="muted">unknown: {escape(str(text))}</p>')
    for part, rows in (check.details.get("tables") or {}).items():
        bad = [r for r in rows if r.get("ok") is not True]
        verdict = {True: "ok", False: "MISMATCH", None: "unknown"}
        shown = [{"key": r["key"], "expected": r["expected"], "observed": r["observed"],
                  "verdict": verdict[r.get("ok")], **({"note": r["note"]} if r.get("note") else {})} for r in rows]
        head = (f"<p><b>{escape(part)}</b>: {len(rows)} figures compared, "
                f"{sum(1 for r in rows if r.get('ok') is False)} mismatched, "
                f"{sum(1 for r in rows if r.get('ok') is None)} unknown</p>")
        parts.append(head)
        if bad:
            parts.append(_records_table([x for x, r in zip(shown, rows) if r.get("ok") is not True],
                                        f"outcomes-{part} outcome-mismatches"))
        parts.append(f'<details><summary>all {escape(part)} figures</summary>'
                     f'{_records_table(shown, f"outcomes-{part}")}</details>')
    info = check.details.get("info_operations") or []
    if info:
        parts.append(f"<p><b>info operations</b> (outcome unknown to the load): {len(info)}, each weighed as a whole "
                     "— applied in every figure, journal entry and stock line it touches, or in none</p>"
                     + _records_table(info, "outcomes-info"))
    for title, key in (("load records lacking figures", "load_records"), ("unreadable reads", "unreadable")):
        items = check.details.get(key) or []
        if items:
            parts.append(f"<p><b>{title}</b></p>" + _records_table(items, f"outcomes-{key}"))
    return "".join(parts)


def _origin_and_shrink(summary: RunSummary) -> str:
    """A drawn drill says where it came from; a shrunk one shows the path that led to it."""
    parts = []
    if summary.origin:
        parts.append('<p class="origin">Drawn by ' + escape(", ".join(f"{k} {v}" for k, v in summary.origin.items()))
                     + ". The same seed draws the same drill.</p>")
    rec = summary.shrink
    if rec is not None:
        parts.append(f'<h2>Shrink</h2><p>From the failing drill <code>{escape(rec.original)}</code>, keeping '
                     f'<b>{escape(" ".join(rec.failure))}</b>; ended at {escape(rec.finished)}. Minimal scenario: '
                     f'<code>{escape(rec.minimal_scenario)}</code></p>')
        rows = [{"step": i + 1, "change": st.change, "schedule": st.schedule, "runs": "; ".join(st.verdicts),
                 "kept": "KEPT" if st.kept else "rejected"} for i, st in enumerate(rec.steps)]
        parts.append(_records_table(rows, "shrink-path", limit=500) if rows else
                     '<p class="muted">No candidate was tried.</p>')
    return "".join(parts)


def _faults(summary: RunSummary) -> str:
    if not summary.faults:
        return '<p class="muted">No faults in this scenario.</p>'
    rows = "".join(
        f'<tr class="{"failed" if end is None or f.error else ""}"><td>{escape(f.id)}</td>'
        f'<td>{escape(f.subject)}</td><td>{escape(f.kind)}</td>'
        f'<td>{escape(json.dumps(f.params))}</td><td class="num">{cell_text(start)}</td>'
        f'<td class="num">{cell_text(end) if end is not None else "<b>never healed</b>"}</td>'
        f'<td>{escape(f.error or "")}</td></tr>'
        for f, (start, end) in ((f, summary.fault_window(f)) for f in summary.faults))
    return ('<table class="faults"><tr><th>id</th><th>link / process</th><th>kind</th><th>params</th><th>applied (s)</th>'
            f'<th>healed (s)</th><th>error</th></tr>{rows}</table>')


def _endpoints(summary: RunSummary) -> str:
    if not summary.endpoints:
        return '<p class="muted">No per-endpoint statistics.</p>'
    cols = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "95%", "99%", "Requests/s"]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f'<td>{escape(str(r.get(c, "")))}</td>' for c in cols) + "</tr>"
                   for r in summary.endpoints)
    return f'<table class="endpoints"><tr>{head}</tr>{rows}</table>'


def _files(run_dir: Path) -> str:
    have = RunFolder(run_dir).present()
    return " · ".join(f'<a href="{escape(n)}">{escape(n)}</a>' for n in have) or '<span class="muted">none</span>'


def render_html(summary: RunSummary, run_dir: Path | None = None) -> str:
    verdict = summary.verdict
    totals = summary.totals or LoadTotals()
    events = summary.events
    conv = ("not measured" if summary.convergence_seconds is None else
            f"{summary.convergence_seconds:.1f} s" + ("" if summary.converged is not False else " (bound reached, not quiescent)"))
    notes = "".join(f"<li>{escape(n)}</li>" for n in summary.notes)
    error = f'<p><b>Error:</b> {escape(summary.error)}</p>' if summary.error else ""
    if summary.unhealed:  # a fault left in place breaks the next run: said first, not among the notes
        error += ('<p class="unhealed"><b>Not healed</b> (run <code>kugeldrill heal</code>):</p><ul class="unhealed">'
                  + "".join(f"<li>{escape(u)}</li>" for u in summary.unhealed) + "</ul>")
    phases = " → ".join(f"{escape(p.name)} ({cell_text(p.start)}–{cell_text(p.end)} s)" for p in summary.phases)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kugeldrill: {escape(summary.scenario)} — {verdict}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body data-verdict="{verdict}">
<h1>Drill <code>{escape(summary.scenario)}</code> <span class="badge {verdict}" id="verdict">{verdict.upper()}</span></h1>
<p>{escape(summary.description)}</p>
<p class="muted">target {escape(summary.target)} · started {_when(summary.started_wall)} · ended {_when(summary.ended_wall)}
 · load {summary.load_seconds:g} s · status {escape(summary.status)} · exit code {summary.exit_code}</p>
{error}{f'<ul class="notes">{notes}</ul>' if notes else ''}
{_origin_and_shrink(summary)}
<h2>Expectations</h2>{_expectations(summary)}
<h2>Timeline</h2>
<p class="muted">Shaded bands are fault windows (orange: never healed); lanes show each breaker's state. Time is seconds since the load started.</p>
<div class="chart">{render_timeline_svg(summary)}</div>
<p class="muted">Phases: {phases or '–'}</p>
<h2>Load</h2>
<table class="totals"><tr><th>requests</th><th>failures</th><th>error rate</th><th>requests/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>
<tr><td class="num">{cell_text(totals.requests)}</td><td class="num">{cell_text(totals.failures)}</td>
<td class="num">{cell_text(totals.error_rate * 100, 2)} %</td><td class="num">{cell_text(totals.rps)}</td>
<td class="num">{cell_text(totals.p50)}</td><td class="num">{cell_text(totals.p95)}</td><td class="num">{cell_text(totals.p99)}</td>
<td class="num">{cell_text(totals.max)}</td></tr></table>
<p>{f"Events published {events.published} · applied {events.applied}" if events else "Events: not recorded by this source"}</p>
<h2>Business state: report, journal, stock</h2>{_outcomes(summary)}
<h2>Fan-out</h2>{_fanout(summary)}
<h2>Duplicates</h2>{_checker_section(summary, "duplicates", "The duplicate checker did not run.")}
<h2>Breakers</h2>{_checker_section(summary, "breaker", "The breaker checker did not run.")}
<h2>Convergence</h2><p class="convergence">Time to quiescence after the heal: <b>{conv}</b></p>
<h2>Faults as applied</h2>{_faults(summary)}
{('<h2>Process faults</h2>' + render_process_faults(summary)) if any(f.process for f in summary.faults) else ''}
<h2>Endpoints</h2>{_endpoints(summary)}
<h2>Files</h2><p>{_files(run_dir) if run_dir else ''}</p>
<p class="muted">kugeldrill report · run folder {escape(summary.run_dir)}</p>
</body></html>
"""


def write_html(run_dir: Path, summary: RunSummary) -> Path:
    path = RunFolder(run_dir).report_html
    path.write_text(render_html(summary, run_dir), encoding="utf-8")
    return path
