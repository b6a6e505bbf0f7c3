"""Outputs for people and CI: live console, verdict JSON, JUnit XML, HTML with plots."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.reports.summary import ExpectationResult, RunSummary


def write_all(run_dir: str | Path, summary: RunSummary) -> dict[str, Path]:
    """Write verdict.json, junit.xml and report.html into `run_dir`; return their paths.

    Each writer runs even if another failed, so one rendering bug cannot cost the
    machine-readable verdict (written first).
    """
    from kugeldrill.reports.html import write_html
    from kugeldrill.reports.junit import write_junit
    from kugeldrill.reports.verdict import write_verdict

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    errors: list[str] = []
    for name, writer in (("verdict", write_verdict), ("junit", write_junit), ("html", write_html)):
        try:
            written[name] = writer(run_dir, summary)
        except Exception as exc:  # noqa: BLE001 - keep the other outputs
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    if errors:
        raise RuntimeError("report writers failed: " + "; ".join(errors))
    return written


__all__ = ["write_all", "RunSummary", "ExpectationResult"]
