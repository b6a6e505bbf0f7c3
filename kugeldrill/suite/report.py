"""The suite's report: suite.json, suite-junit.xml (pytest's conventions for expected failures),
index.html (one row per drill, linking its report) and the console's closing lines.

JUnit, as pytest writes expected failures: an expectation that failed only through known
defects is `<skipped type="pytest.xfail" message="known defect …"/>`; a new failure is a
`<failure>`, an unjudged one a `<failure type="unknown">`; each listed defect gets a testcase
`known[<id>]` in the drill it is listed for: xfail when reproduced, and when not reproduced a
pass (pytest's XPASS) or, with `strict`, `<failure message="[XPASS(strict)] …">`.
"""

from __future__ import annotations

import html
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.html import CSS
from kugeldrill.suite.classify import Classified
from kugeldrill.suite.result import DrillOutcome, SuiteResult

SUITE_JSON = "suite.json"
SUITE_JUNIT = "suite-junit.xml"
SUITE_HTML = "index.html"
SUITE_VERSION = 1


# ---------------------------------------------------------------------- JSON


def _classified(c: Classified) -> dict[str, Any]:
    f = c.failure
    return {"checker": f.checker, "kind": f.kind, "expectation": f.expectation, "class": c.cls,
            "known_id": c.known_id, "known_ids": c.known_ids, "message": f.message, "reasons": f.reasons, "examples": f.examples[:3],
            "why": c.why, "evidence": c.evidence}


def suite_dict(result: SuiteResult) -> dict[str, Any]:
    known = {d.id: d for d in result.known.defects}
    return {
        "version": SUITE_VERSION, "suite": result.name, "target": result.target,
        "known_file": result.known.path, "known_revision": result.known.kugelpos, "strict": result.known.strict,
        "started_wall": result.started_wall, "ended_wall": result.ended_wall,
        "seconds": round(max(result.ended_wall - result.started_wall, 0.0), 1),
        "exit_code": result.exit_code, "green": result.green, "line": result.line(),
        "counts": {"drills": len(result.drills), "new": result.count("new"), "unknown": result.count("unknown"),
                   "known": result.count("known"), "reproduced": result.status_count("reproduced"),
                   "not_reproduced": result.status_count("not_reproduced"),
                   "not_judged": result.status_count("not_judged")},
        "drills": [{"scenario": d.summary.scenario, "run_dir": d.summary.run_dir, "verdict": d.summary.verdict,
                    "outcome": d.classes.outcome, "seconds": round(max(d.summary.ended_wall - d.summary.started_wall, 0), 1),
                    "error": d.summary.error, "failures": [_classified(c) for c in d.classes.failures],
                    "known": [s.__dict__ for s in d.classes.known]} for d in result.drills],
        "known": [{**s.__dict__, "title": known[s.defect_id].title, "finding": known[s.defect_id].finding}
                  for s in result.statuses],
        "notes": result.notes, "setup_error": result.setup_error, "interrupted": result.interrupted,
    }


# ---------------------------------------------------------------------- JUnit


def _defect_title(result: SuiteResult, defect_id: str | None) -> str:
    defect = result.known.get(defect_id) if defect_id else None
    return f"known defect {defect_id}: {defect.title} ({defect.finding})" if defect else f"known defect {defect_id}"


def _drill_suite(result: SuiteResult, drill: DrillOutcome) -> ET.Element:
    s, classes = drill.summary, drill.classes
    suite = ET.Element("testsuite", name=f"kugelpos.{s.scenario}" if result.name == "kugelpos" else f"drill.{s.scenario}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(classname: str, name: str) -> ET.Element:
        counts["tests"] += 1
        return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")

    for exp in s.expectations:
        tc = case(f"{suite.get('name')}.{exp.checker}", exp.name)
        if exp.passed is True:
            ET.SubElement(tc, "system-out").text = f"expected {exp.expected}; observed {exp.observed}"
            continue
        items = classes.for_expectation(exp.name)
        bad = [c for c in items if c.cls != "known"] or ([] if items else [None])
        if not bad:
            counts["skipped"] += 1
            ids = sorted({i for c in items for i in c.known_ids})
            ET.SubElement(tc, "skipped", type="pytest.xfail",
                          message="; ".join(_defect_title(result, i) for i in ids))
            continue
        counts["failures"] += 1
        unknown = all(c is not None and c.cls == "unknown" for c in bad)
        labels = ", ".join(c.failure.label for c in bad if c is not None) or exp.name
        fail = ET.SubElement(tc, "failure", type="unknown" if unknown else "new",
                             message=f"{'unknown' if unknown else 'new'}: {labels}: expected {exp.expected}; "
                                     f"observed {exp.observed}"[:2000])
        fail.text = json.dumps({"expected": exp.expected, "observed": exp.observed,
                                "classified": [_classified(c) for c in items]}, indent=2, default=str)
    for status in classes.known:
        tc = case(f"{suite.get('name')}.known", f"known[{status.defect_id}]")
        title = _defect_title(result, status.defect_id)
        if status.status == "reproduced":
            counts["skipped"] += 1
            ET.SubElement(tc, "skipped", type="pytest.xfail", message=f"{title}; reproduced: {status.detail}")
        elif status.status == "not_reproduced" and result.known.strict:
            counts["failures"] += 1
            ET.SubElement(tc, "failure", message=f"[XPASS(strict)] {title}: not reproduced — {status.detail}")
        elif status.status == "not_reproduced":
            ET.SubElement(tc, "system-out").text = f"XPASS {title}: not reproduced — {status.detail}"
        else:
            counts["skipped"] += 1
            ET.SubElement(tc, "skipped", message=f"{title}: not judged — {status.detail}")
    if s.status != "completed" or not s.expectations:
        tc = case(suite.get("name") or "", "drill.completed")
        counts["errors"] += 1
        reason = s.error or ("no expectation was judged" if s.status == "completed" else s.status)
        err = ET.SubElement(tc, "error", type=s.status, message=reason)
        err.text = "\n".join(s.notes) or reason
    props = ET.Element("properties")
    for key, value in (("run_dir", s.run_dir), ("verdict", s.verdict), ("outcome", classes.outcome)):
        ET.SubElement(props, "property", name=key, value=str(value))
    suite.insert(0, props)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{max(s.ended_wall - s.started_wall, 0.0):.3f}")
    return suite


def build_suite_junit(result: SuiteResult) -> ET.Element:
    root = ET.Element("testsuites", name=f"kugeldrill.{result.name}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for drill in result.drills:
        suite = _drill_suite(result, drill)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    if result.setup_error:
        suite = ET.SubElement(root, "testsuite", name=f"kugeldrill.{result.name}.deployment", tests="1", errors="1",
                              failures="0", skipped="0")
        case = ET.SubElement(suite, "testcase", classname=f"kugeldrill.{result.name}", name="deployment", time="0")
        ET.SubElement(case, "error", type="setup", message=result.setup_error)
        totals["tests"] += 1
        totals["errors"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{max(result.ended_wall - result.started_wall, 0.0):.3f}")
    return root


# ---------------------------------------------------------------------- HTML index

_OUTCOME_CLASS = {"green": "pass", "known": "known", "unknown": "unknown", "new": "fail", "error": "fail",
                  "interrupted": "fail"}
_INDEX_CSS = """
.known{color:#8a5a00;font-weight:600}.unknown{color:#6b4fbb;font-weight:600}.new{color:#b00020;font-weight:600}
.line{font-size:1.15em;padding:.6em .8em;border-radius:4px;margin:.8em 0}
.line.green{background:#e6f4ea}.line.red{background:#fde7e9}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _failure_cell(c: Classified) -> str:
    text = f"<span class='{c.cls}'>{_e(c.cls.upper())}</span> {_e(c.failure.label)}"
    if c.known_ids:
        text += f" — {_e(', '.join(c.known_ids))}"
    detail = c.why or c.failure.message
    return text + (f"<br><small>{_e(detail[:400])}</small>" if detail else "")


def render_index(result: SuiteResult, out_dir: Path) -> str:
    rows = []
    for d in result.drills:
        s, classes = d.summary, d.classes
        report = RunFolder(s.run_dir).report_html
        link = os.path.relpath(report, out_dir) if report.exists() else ""
        name = f"<a href='{_e(link)}'>{_e(s.scenario)}</a>" if link else _e(s.scenario)
        fails = "<br>".join(_failure_cell(c) for c in classes.failures) or "—"
        outcome = classes.outcome
        rows.append(f"<tr><td>{name}</td><td class='{_OUTCOME_CLASS.get(outcome, '')}'>{_e(outcome.upper())}</td>"
                    f"<td>{_e(s.verdict)}</td><td>{max(s.ended_wall - s.started_wall, 0):.0f} s</td><td>{fails}</td></tr>")
    known_rows = []
    for st in result.statuses:
        defect = result.known.get(st.defect_id)
        cls = {"reproduced": "known", "not_reproduced": "new" if result.known.strict else "unknown"}.get(st.status, "")
        known_rows.append(f"<tr><td>{_e(st.defect_id)}</td><td>{_e(defect.title if defect else '')}</td>"
                          f"<td>{_e(defect.finding if defect else '')}</td><td>{_e(st.scenario)}</td>"
                          f"<td class='{cls}'>{_e(st.status.replace('_', ' '))}</td><td>{_e(st.detail[:300])}</td></tr>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.started_wall)) if result.started_wall else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>kugeldrill {_e(result.name)} suite</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}{_INDEX_CSS}</style></head><body>
<h1>kugeldrill — {_e(result.name)} suite</h1>
<p>{_e(result.target)}<br>started {_e(when)}, {max(result.ended_wall - result.started_wall, 0):.0f} s;
known defects: {_e(result.known.path or 'none')}</p>
<div class="line {'green' if result.green else 'red'}">{_e(result.line())} (exit {result.exit_code})</div>
<h2>Drills</h2>
<table><tr><th>drill</th><th>outcome</th><th>verdict</th><th>time</th><th>failures (class, and why)</th></tr>
{''.join(rows)}</table>
<h2>Known defects</h2>
<table><tr><th>id</th><th>defect</th><th>finding</th><th>drill</th><th>status</th><th>detail</th></tr>
{''.join(known_rows) or '<tr><td colspan=6>none listed for these drills</td></tr>'}</table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
</body></html>"""


# ---------------------------------------------------------------------- console


def console_lines(result: SuiteResult) -> list[str]:
    """What the command prints last: each drill's outcome and its classed failures, the known
    defects' statuses (loudly when not reproduced), then the one line."""
    out = [f"kugeldrill: {result.name} suite — {len(result.drills)} drill(s)"]
    for d in result.drills:
        s, classes = d.summary, d.classes
        out.append(f"  {classes.outcome.upper():<12} {s.scenario:<34} {RunFolder(s.run_dir).report_html}")
        for c in classes.failures:
            tag = {"known": "KNOWN", "new": "NEW", "unknown": "UNKNOWN"}[c.cls]
            line = f"      {tag:<8} {c.failure.label}" + (f" = {', '.join(c.known_ids)}" if c.known_ids else "")
            detail = c.failure.reasons[0] if c.cls == "unknown" and c.failure.reasons else c.failure.message
            if c.cls != "known" and detail:
                line += f": {detail}"
            out.append(line if len(line) <= 240 else line[:239] + "…")
    for st in result.statuses:
        if st.status == "not_reproduced":
            strict = " (strict: fails the run)" if result.known.strict else ""
            out.append(f"  !! KNOWN DEFECT NOT REPRODUCED{strict}: {st.defect_id} in {st.scenario} — fixed, or the drill "
                       f"no longer reaches it: {st.detail}")
        elif st.status == "not_judged":
            out.append(f"  known defect {st.defect_id} not judged in {st.scenario}: {st.detail}")
    out += [f"  note: {n}" for n in result.notes]
    out.append(f"kugeldrill: {result.line()}")
    return out


def _write(path: Path, text: str) -> None:
    """Replace `path` whole (a reader never sees half a report)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_suite(result: SuiteResult, out_dir: Path) -> dict[str, Path]:
    """suite.json, suite-junit.xml and index.html into `out_dir` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / SUITE_JSON, "junit": out_dir / SUITE_JUNIT, "html": out_dir / SUITE_HTML}
    _write(paths["json"], json.dumps(suite_dict(result), indent=2, default=str))
    tree = ET.ElementTree(build_suite_junit(result))
    ET.indent(tree)
    _write(paths["junit"], ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True))
    _write(paths["html"], render_index(result, out_dir))
    return paths
