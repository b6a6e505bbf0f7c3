"""The drill's time chart as inline SVG: traffic, latency, fault windows, breaker lanes.

Drawn by our own code (no charting library, no CDN) so report.html opens offline and
stays one file. Locust's charts cannot mark fault windows (its issue #2397); this chart
exists to show, on one time axis, what the faults did to traffic and to the breakers.
Elements carry classes (`fault-window`, `breaker-lane`, `breaker-segment`,
`process-action`) and data attributes so tests and readers' tools can find them. A
process fault (kill, pause, restart) is a window like a link fault's, labelled with its
process target, with a tick at each action (kill, stop, start, pause, resume).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from kugeldrill.reports.summary import BreakerPoint, EventBucket, RunSummary, SeriesPoint

WIDTH = 960
LEFT = 150
RIGHT = 20
PANEL_H = 150
LANE_H = 18
STATE_COLOURS = {"CLOSED": "#4caf50", "HALF_OPEN": "#ffb300", "OPEN": "#e53935"}
SERIES_COLOURS = {"rps": "#1e88e5", "fails_s": "#e53935", "p50": "#43a047", "p95": "#fb8c00", "p99": "#8e24aa",
                  "published": "#1e88e5", "republished": "#fb8c00", "applied": "#43a047", "duplicates": "#8e24aa"}


def _axis_max(values: list[float]) -> float:
    top = max(values, default=0.0)
    if top <= 0:
        return 1.0
    mag = 10 ** (len(str(int(top))) - 1) if top >= 1 else 0.1
    for mult in (1, 2, 2.5, 5, 10):
        if mult * mag >= top:
            return float(mult * mag)
    return float(top)


def time_extent(summary: RunSummary) -> float:
    """The chart's right edge in seconds since t0."""
    ends = [summary.load_seconds]
    ends += [row.t for row in summary.series]
    ends += [end if end is not None else start for start, end in map(summary.fault_window, summary.faults)]
    ends += [tr.t for tr in summary.breaker_transitions]
    ends += [p.end for p in summary.phases]
    return max([e for e in ends if e is not None] + [1.0])


def breaker_lanes(summary: RunSummary, x_max: float) -> list[dict[str, Any]]:
    """Per (service, breaker): segments [start, end, state] covering the run."""
    by_key: dict[tuple[str, str], list[BreakerPoint]] = {}
    for tr in sorted(summary.breaker_transitions, key=lambda r: r.t):
        by_key.setdefault((tr.service, tr.breaker), []).append(tr)
    lanes = []
    for (service, breaker), trs in sorted(by_key.items()):
        segs = []
        start = min(0.0, trs[0].t)
        state = trs[0].from_state
        for tr in trs:
            segs.append({"start": start, "end": tr.t, "state": state})
            start, state = tr.t, tr.to_state
        segs.append({"start": start, "end": max(x_max, start), "state": state})
        lanes.append({"service": service, "breaker": breaker, "segments": [s for s in segs if s["end"] > s["start"]]})
    return lanes


def _fault_labels(summary: RunSummary) -> list[tuple[str, int]]:
    """(label, row) per fault: one label for faults of one kind starting together (a
    selector like redis@* yields one entry per link), rows staggered so labels do not collide."""
    faults = summary.faults
    starts = [summary.fault_window(f)[0] for f in faults]
    out: list[tuple[str, int]] = [("", 0)] * len(faults)
    groups: list[tuple[int, list[int]]] = []
    for i, f in enumerate(faults):
        for head, members in groups:
            g = faults[head]
            if g.kind == f.kind and abs(starts[head] - starts[i]) < 1.0:
                members.append(i)
                break
        else:
            groups.append((i, [i]))
    for row, (head, members) in enumerate(groups):
        f = faults[head]
        links = [faults[m].subject for m in members]
        if len(links) == 1:
            text = f"{f.kind} {links[0]}"
        else:
            kinds = {ln.split("@", 1)[0] for ln in links}
            text = f'{f.kind} {kinds.pop() + "@*" if len(kinds) == 1 else "…"} ({len(links)} links)'
        out[head] = (text, row % 3)
    return out


ACTION_COLOURS = {"kill": "#b71c1c", "stop": "#e65100", "start": "#1b5e20", "pause": "#4a148c", "resume": "#1b5e20"}


def _polyline(points: list[tuple[float, float]], colour: str, cls: str) -> str:
    if not points:
        return ""
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline class="series {cls}" fill="none" stroke="{colour}" stroke-width="1.6" points="{pts}"/>'


def render_timeline_svg(summary: RunSummary) -> str:
    """The whole chart as an <svg> element string."""
    x_max = time_extent(summary)
    plot_w = WIDTH - LEFT - RIGHT
    lanes = breaker_lanes(summary, x_max)
    lane_block = max(len(lanes), 1) * (LANE_H + 4) + 24
    top_a, top_b = 28, 28 + PANEL_H + 30
    top_c = top_b + PANEL_H + 30  # events panel, when the source publishes events
    top_lanes = (top_c if summary.event_series else top_b) + PANEL_H + 34
    height = top_lanes + lane_block + 30

    def x(t: float) -> float:
        return LEFT + max(0.0, min(t, x_max)) / x_max * plot_w

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="drill-timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="drill timeline" font-family="sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    # Fault windows first, so lines draw over them; they span the traffic and latency panels and the lanes.
    band_top, band_bottom = top_a, top_lanes + lane_block - 20
    labels = _fault_labels(summary)
    for i, f in enumerate(summary.faults):
        start, healed_at = summary.fault_window(f)
        healed = healed_at is not None
        end = healed_at if healed_at is not None else x_max
        label = f"{f.kind} {f.subject}"
        title = f"{label}: {start:.1f}s → " + (f"{end:.1f}s" if healed else "never healed")
        if f.error:
            title += f" (error: {f.error})"
        subject_attr = f'data-process="{escape(f.process)}"' if f.process else f'data-link="{escape(f.link)}"'
        acts = [(a, summary.since_t0(a.mono)) for a in f.events if f.process and a.acted]
        ticks = "".join(
            f'<line class="process-action" data-action="{escape(a.action)}" data-t="{t:.3f}" '
            f'x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{band_top}" y2="{band_bottom}" '
            f'stroke="{ACTION_COLOURS.get(a.action, "#455a64")}" stroke-width="1.2">'
            f'<title>{escape(a.action)} {escape(f.subject)} at {t:.2f}s: pids {a.pids_before} → {a.pids_after}'
            f'</title></line>' for a, t in acts)
        out.append(
            f'<g class="fault-window" {subject_attr} data-kind="{escape(f.kind)}" '
            f'data-start="{start:.3f}" data-end="{end:.3f}" data-healed="{str(healed).lower()}">'
            f'<title>{escape(title)}</title>'
            f'<rect x="{x(start):.1f}" y="{band_top}" width="{max(x(end) - x(start), 1.5):.1f}" '
            f'height="{band_bottom - band_top}" fill="{"#90a4ae" if healed else "#ff7043"}" fill-opacity="0.22" '
            f'stroke="#607d8b" stroke-dasharray="3,2"/>' + ticks
            + (f'<text x="{x(start) + 3:.1f}" y="{band_top + 12 + labels[i][1] * 11}" fill="#37474f">'
               f'{escape(labels[i][0])}</text>' if labels[i][0] else "") + '</g>')

    def panel(top: int, title: str, keys: list[tuple[str, str]], unit: str,
              rows: Sequence[SeriesPoint | EventBucket] | None = None) -> None:
        rows = summary.series if rows is None else rows
        values = [float(getattr(row, k) or 0.0) for row in rows for k, _ in keys]
        y_max = _axis_max(values)
        out.append(f'<g class="panel" data-panel="{escape(title)}">')
        out.append(f'<text x="{LEFT}" y="{top - 4}" font-weight="bold">{escape(title)}</text>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#bbb"/>')
        for frac in (0, 0.5, 1):
            yy = top + PANEL_H - frac * PANEL_H
            out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                       f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{frac * y_max:g}{unit}</text>')
        for key, label in keys:
            pts = [(x(row.t), top + PANEL_H - float(getattr(row, key)) / y_max * PANEL_H)
                   for row in rows if getattr(row, key) is not None]
            out.append(_polyline(pts, SERIES_COLOURS[key], key))
        lx = LEFT + plot_w - 10
        for j, (key, label) in enumerate(reversed(keys)):
            out.append(f'<text x="{lx - j * 90}" y="{top - 4}" text-anchor="end" fill="{SERIES_COLOURS[key]}">■ {escape(label)}</text>')
        if not rows:
            out.append(f'<text x="{LEFT + plot_w / 2}" y="{top + PANEL_H / 2}" text-anchor="middle" fill="#999">'
                       'no load statistics recorded</text>')
        out.append("</g>")

    panel(top_a, "Requests/s and failures/s", [("rps", "requests/s"), ("fails_s", "failures/s")], "")
    panel(top_b, "Latency (ms)", [("p50", "p50"), ("p95", "p95"), ("p99", "p99")], "")
    if summary.event_series:
        panel(top_c, "Events/s (publish, republish, applied, duplicate skipped)",
              [("published", "published"), ("republished", "republished"), ("applied", "applied"),
               ("duplicates", "dup. skipped")], "", summary.event_series)

    out.append(f'<g class="breaker-lanes"><text x="{LEFT}" y="{top_lanes - 6}" font-weight="bold">Circuit breakers</text>')
    for c_i, (state, colour) in enumerate(STATE_COLOURS.items()):
        out.append(f'<text x="{LEFT + plot_w - 10 - c_i * 80}" y="{top_lanes - 6}" text-anchor="end" fill="{colour}">■ {state}</text>')
    if not lanes:
        out.append(f'<text x="{LEFT}" y="{top_lanes + 14}" fill="#999">no breaker transitions recorded '
                   '(every breaker stayed CLOSED, or no breaker events were gathered)</text>')
    for i, lane in enumerate(lanes):
        y0 = top_lanes + i * (LANE_H + 4)
        name = lane["service"] + (f' / {lane["breaker"]}' if lane["breaker"] else "")
        out.append(f'<g class="breaker-lane" data-service="{escape(lane["service"])}" data-breaker="{escape(lane["breaker"])}">'
                   f'<text x="{LEFT - 6}" y="{y0 + 13}" text-anchor="end">{escape(name)}</text>')
        for seg in lane["segments"]:
            out.append(f'<rect class="breaker-segment" data-state="{seg["state"]}" x="{x(seg["start"]):.1f}" y="{y0}" '
                       f'width="{max(x(seg["end"]) - x(seg["start"]), 1.0):.1f}" height="{LANE_H}" '
                       f'fill="{STATE_COLOURS.get(seg["state"], "#9e9e9e")}"><title>{escape(name)}: {seg["state"]} '
                       f'{seg["start"]:.1f}s–{seg["end"]:.1f}s</title></rect>')
        out.append("</g>")
    out.append("</g>")
    # Where the load ended: what follows is recovery and quiescence, without traffic.
    if 0 < summary.load_seconds < x_max:
        lx = x(summary.load_seconds)
        out.append(f'<g class="load-end"><line x1="{lx:.1f}" x2="{lx:.1f}" y1="{top_a}" y2="{band_bottom}" '
                   f'stroke="#455a64" stroke-dasharray="6,3"/><text x="{lx - 3:.1f}" y="{band_bottom - 4}" '
                   f'text-anchor="end" fill="#455a64">load end</text></g>')
    # Time axis under the lanes.
    axis_y = top_lanes + lane_block - 14
    out.append(f'<g class="time-axis"><line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#555"/>')
    step = _axis_max([x_max / 8])
    t = 0.0
    while t <= x_max + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#555"/>'
                   f'<text x="{x(t):.1f}" y="{axis_y + 15}" text-anchor="middle">{t:g}s</text>')
        t += step
    out.append("</g></svg>")
    return "".join(out)
