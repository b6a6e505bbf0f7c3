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

from kugeldrill.reports.chart import render_timeline_svg
from kugeldrill.reports.summary import RunSummary

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


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, default=str))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "–"


def _expectations(summary: RunSummary) -> str:
    if not summary.expectations:
        return '<p class="muted">No expectation was judged (the drill did not get that far).</p>'
    rows = []
    for e in summary.expectations:
        evidence = (f'<details{" open" if e.passed is not True else ""}><summary>evidence</summary>'
                    f'<pre>{_json(e.evidence)}</pre></details>') if e.evidence else ""
        rows.append(f'<tr class="expectation {e.outcome}" data-outcome="{e.outcome}"><td><span class="badge {e.outcome}">'
                    f'{e.outcome}</span></td><td>{escape(e.name)}</td><td>{escape(e.expected)}</td>'
                    f'<td class="observed">{escape(e.observed)}{evidence}</td></tr>')
    return ('<table class="expectations"><tr><th>outcome</th><th>expectation</th><th>expected</th>'
            '<th>observed / evidence</th></tr>' + "".join(rows) + "</table>")


def _kv_table(data: dict[str, Any], cls: str = "") -> str:
    if not data:
        return '<p class="muted">none</p>'
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td class='num'>{_fmt(v, 3) if isinstance(v, float) else escape(str(v))}</td></tr>"
                   for k, v in data.items() if not isinstance(v, (dict, list)))
    nested = {k: v for k, v in data.items() if isinstance(v, (dict, list))}
    extra = ""
    for key, value in nested.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            extra += f"<p><b>{escape(str(key))}</b></p>" + _rows_table(value, "", f"{cls}-{key}")
        elif value:
            extra += f"<p><b>{escape(str(key))}</b></p><pre>{_json(value)}</pre>"
    return f'<table class="{cls}">{rows}</table>{extra}'


def _fanout(summary: RunSummary) -> str:
    """Topic × subscriber table: expected, once, missing, duplicated, ... (the checker's matrix)."""
    check = summary.check("fanout")
    if check is None:
        return '<p class="muted">The fan-out checker did not run.</p>'
    counts = check.get("counts") or {}
    matrix = counts.get("matrix") or (check.get("details") or {}).get("matrix")
    valid = check.get("valid")
    outcome = {True: "passed", False: "failed", None: "unknown"}[valid]
    parts = [f'<p><span class="badge {outcome}">{outcome}</span> {escape(check.get("summary", ""))}</p>']
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


def _examples(check: dict[str, Any]) -> str:
    examples = check.get("examples") or {}
    if not examples:
        return ""
    return "".join(f'<details><summary>{escape(kind)} ({len(items)} first examples)</summary><pre>{_json(items)}</pre></details>'
                   for kind, items in examples.items())


def _checker_section(summary: RunSummary, name: str, empty: str) -> str:
    check = summary.check(name)
    if check is None:
        return f'<p class="muted">{escape(empty)}</p>'
    valid = check.get("valid")
    outcome = {True: "passed", False: "failed", None: "unknown"}[valid]
    return (f'<p><span class="badge {outcome}">{outcome}</span> {escape(check.get("summary", ""))}</p>'
            + _kv_table(check.get("counts", {}), f"{name}-counts") + _examples(check))


def _faults(summary: RunSummary) -> str:
    if not summary.faults:
        return '<p class="muted">No faults in this scenario.</p>'
    rows = "".join(
        f'<tr class="{"failed" if f.get("end") is None or f.get("error") else ""}"><td>{escape(str(f.get("id", "")))}</td>'
        f'<td>{escape(str(f.get("link", "")))}</td><td>{escape(str(f.get("kind", "")))}</td>'
        f'<td>{escape(json.dumps(f.get("params") or {}))}</td><td class="num">{_fmt(f.get("start"))}</td>'
        f'<td class="num">{_fmt(f.get("end")) if f.get("end") is not None else "<b>never healed</b>"}</td>'
        f'<td>{escape(str(f.get("error") or ""))}</td></tr>' for f in summary.faults)
    return ('<table class="faults"><tr><th>id</th><th>link</th><th>kind</th><th>params</th><th>applied (s)</th>'
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
    names = ["verdict.json", "junit.xml", "timeline.json", "history.jsonl", "locust.html", "locust_stats.csv",
             "locust_stats_history.csv", "scenario.yaml", "stack.json", "provision.json"]
    have = [n for n in names if (run_dir / n).exists()] + sorted(
        f"{d}/" for d in ("events", "logs", "history") if (run_dir / d).is_dir())
    return " · ".join(f'<a href="{escape(n)}">{escape(n)}</a>' for n in have) or '<span class="muted">none</span>'


def render_html(summary: RunSummary, run_dir: Path | None = None) -> str:
    verdict = summary.verdict
    totals = summary.totals
    conv = ("not measured" if summary.convergence_seconds is None else
            f"{summary.convergence_seconds:.1f} s" + ("" if summary.converged is not False else " (bound reached, not quiescent)"))
    notes = "".join(f"<li>{escape(n)}</li>" for n in summary.notes)
    error = f'<p><b>Error:</b> {escape(summary.error)}</p>' if summary.error else ""
    phases = " → ".join(f'{escape(p.get("name", ""))} ({_fmt(p.get("start"))}–{_fmt(p.get("end"))} s)' for p in summary.phases)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kugeldrill: {escape(summary.scenario)} — {verdict}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body data-verdict="{verdict}">
<h1>Drill <code>{escape(summary.scenario)}</code> <span class="badge {verdict}" id="verdict">{verdict.upper()}</span></h1>
<p>{escape(summary.description)}</p>
<p class="muted">target {escape(summary.target)} · started {_when(summary.started_wall)} · ended {_when(summary.ended_wall)}
 · load {summary.load_seconds:g} s · status {escape(summary.status)} · exit code {summary.exit_code}</p>
{error}{f'<ul class="notes">{notes}</ul>' if notes else ''}
<h2>Expectations</h2>{_expectations(summary)}
<h2>Timeline</h2>
<p class="muted">Shaded bands are fault windows (orange: never healed); lanes show each breaker's state. Time is seconds since the load started.</p>
<div class="chart">{render_timeline_svg(summary)}</div>
<p class="muted">Phases: {phases or '–'}</p>
<h2>Load</h2>
<table class="totals"><tr><th>requests</th><th>failures</th><th>error rate</th><th>requests/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>
<tr><td class="num">{_fmt(totals.get("requests"))}</td><td class="num">{_fmt(totals.get("failures"))}</td>
<td class="num">{_fmt((totals.get("error_rate") or 0) * 100, 2)} %</td><td class="num">{_fmt(totals.get("rps"))}</td>
<td class="num">{_fmt(totals.get("p50"))}</td><td class="num">{_fmt(totals.get("p95"))}</td><td class="num">{_fmt(totals.get("p99"))}</td>
<td class="num">{_fmt(totals.get("max"))}</td></tr></table>
<p>Events published {summary.events.get("published", "–")} · applied {summary.events.get("applied", "–")}</p>
<h2>Fan-out</h2>{_fanout(summary)}
<h2>Duplicates</h2>{_checker_section(summary, "duplicates", "The duplicate checker did not run.")}
<h2>Breakers</h2>{_checker_section(summary, "breaker", "The breaker checker did not run.")}
<h2>Convergence</h2><p class="convergence">Time to quiescence after the heal: <b>{conv}</b></p>
<h2>Faults as applied</h2>{_faults(summary)}
<h2>Endpoints</h2>{_endpoints(summary)}
<h2>Files</h2><p>{_files(run_dir) if run_dir else ''}</p>
<p class="muted">kugeldrill report · run folder {escape(summary.run_dir)}</p>
</body></html>
"""


def write_html(run_dir: Path, summary: RunSummary) -> Path:
    path = run_dir / "report.html"
    path.write_text(render_html(summary, run_dir), encoding="utf-8")
    return path
