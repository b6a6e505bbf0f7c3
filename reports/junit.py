"""junit.xml: one testcase per expectation, so CI shows which promise a drill broke.

Failures carry the evidence (observed value and the checker's first examples) in the
failure body; an unknown expectation (data missing) is a failure of type "unknown",
because a drill that looked at nothing must not pass. A drill that did not complete
adds a testcase `drill.completed` that errors with the reason; a fault the heal could not
undo adds a failing testcase `drill.healed` naming what is left.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.reports.summary import RunSummary


def build_junit(summary: RunSummary) -> ET.Element:
    suites = ET.Element("testsuites", name="kugeldrill")
    suite = ET.SubElement(suites, "testsuite", name=f"drill.{summary.scenario}")
    tests = failures = errors = 0
    duration = max(summary.ended_wall - summary.started_wall, 0.0)
    for exp in summary.expectations:
        tests += 1
        case = ET.SubElement(suite, "testcase", classname=f"drill.{summary.scenario}.{exp.checker}",
                             name=exp.name, time="0")
        if exp.passed is True:
            out = ET.SubElement(case, "system-out")
            out.text = f"expected {exp.expected}; observed {exp.observed}"
            continue
        failures += 1
        kind = "unknown" if exp.passed is None else "expectation"
        fail = ET.SubElement(case, "failure", type=kind,
                             message=f"expected {exp.expected}; observed {exp.observed}")
        fail.text = json.dumps(exp.evidence, indent=2, default=str) if exp.evidence else exp.observed
    if summary.unhealed:  # a fault left in place: its own failing testcase, whatever else happened
        tests += 1
        failures += 1
        case = ET.SubElement(suite, "testcase", classname=f"drill.{summary.scenario}", name="drill.healed", time="0")
        fail = ET.SubElement(case, "failure", type="not_healed", message="; ".join(summary.unhealed))
        fail.text = "\n".join(summary.unhealed) + "\nrun 'kugeldrill heal'"
    if summary.status != "completed" or not summary.expectations:
        tests += 1
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"drill.{summary.scenario}", name="drill.completed",
                             time=f"{duration:.3f}")
        reason = summary.error or ("no expectation was judged" if summary.status == "completed" else summary.status)
        err = ET.SubElement(case, "error", type=summary.status, message=reason)
        err.text = "\n".join(summary.notes) or reason
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{duration:.3f}")
    props = ET.Element("properties")
    for key, value in (("run_dir", summary.run_dir), ("verdict", summary.verdict), ("target", summary.target)):
        ET.SubElement(props, "property", name=key, value=str(value))
    suite.insert(0, props)
    suites.set("tests", str(tests))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    return suites


def write_junit(run_dir: Path, summary: RunSummary) -> Path:
    path = RunFolder(run_dir).junit_xml
    tree = ET.ElementTree(build_junit(summary))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
