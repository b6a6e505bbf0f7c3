"""The `kugeldrill` pytest plugin, registered by installing kugeldrill (a `pytest11` entry point).

Fixtures (docs/pytest.md):

* `kugeldrill_drill` — run a drill as a test and get its verdict:

      def test_cart_survives_a_sidecar_cut(kugeldrill_drill):
          verdict = kugeldrill_drill("sidecar-cut")
          assert verdict.passed, verdict.explain()

* `link_fault`, `kugeldrill_toxiproxy`, `toxiproxy_client`, `kugeldrill_toxiproxy_api` —
  faults in a test of your own against a running stack (kugeldrill.chaos.pytest_plugin).

Options: `--toxiproxy-url URL` (the Toxiproxy those fixtures use) and `--kugeldrill-runs-dir
DIR` (where drills run by tests keep their run folders; default: the test's tmp_path, which
pytest keeps for the last three sessions). Turn the plugin off with `-p no:kugeldrill`.

Imports stay light at collection time (pytest loads the plugin in every session of an
environment where kugeldrill is installed): the drill machinery is imported when a test
runs a drill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kugeldrill.chaos.pytest_plugin import (  # noqa: F401 - re-exported: pytest finds fixtures by name here
    kugeldrill_toxiproxy,
    kugeldrill_toxiproxy_api,
    link_fault,
    toxiproxy_client,
)

if TYPE_CHECKING:
    from kugeldrill.reports.summary import RunSummary


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kugeldrill")
    group.addoption("--toxiproxy-url", default=None,
                    help="Toxiproxy API for kugeldrill's fault fixtures (default: $TOXIPROXY_URL, else "
                         ".kugeldrill/stack.json)")
    group.addoption("--kugeldrill-runs-dir", default=None, type=Path, metavar="DIR",
                    help="where drills run by kugeldrill_drill keep their run folders (default: each test's tmp_path)")


@dataclass
class DrillVerdict:
    """What a drill run by a test concluded, with where its evidence is."""

    scenario: str
    verdict: str  # pass | fail | error | interrupted
    exit_code: int  # as `kugeldrill run` would exit: 0 pass, 1 fail, 2 could not run, 130 interrupted
    run_dir: Path
    report_html: Path
    failures: list[str] = field(default_factory=list)  # why it is red: one line per unmet expectation
    error: str | None = None
    summary: RunSummary | None = field(default=None, repr=False)  # the whole run summary

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def explain(self) -> str:
        """The lines a failing test should show: verdict, report, and each unmet expectation."""
        lines = [f"drill {self.scenario}: {self.verdict.upper()} (exit {self.exit_code}); report: {self.report_html}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines + self.failures)


@pytest.fixture
def kugeldrill_drill(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., DrillVerdict]:
    """`kugeldrill_drill(SCENARIO, target=None, processes=None) -> DrillVerdict`.

    SCENARIO is a library name (`kugeldrill list`) or a scenario file; `target` a target file
    to drill instead of the scenario's own. The scenario is validated first (a bad one
    raises, naming its file and line); then the drill runs exactly as `kugeldrill run` runs
    it, and the report's path is recorded in the test's JUnit properties
    (`kugeldrill_report`).
    """

    def run(scenario: str | Path, *, target: str | Path | None = None, processes: int | None = None) -> DrillVerdict:
        from kugeldrill.drill import DrillOptions, run_drill
        from kugeldrill.drill.runfolder import run_dir_for
        from kugeldrill.ground.runfolder import RunFolder
        from kugeldrill.reports.console import Console, failure_lines
        from kugeldrill.scenario import load_scenario

        loaded = load_scenario(scenario, target=Path(target) if target is not None else None)
        runs_dir = request.config.getoption("--kugeldrill-runs-dir") or tmp_path
        run_dir = run_dir_for(loaded.scenario.name, runs_dir=Path(runs_dir))
        with Console(live=False) as console:
            summary = run_drill(loaded, run_dir, DrillOptions(processes=processes, console=console))
        report = RunFolder(run_dir).report_html
        request.node.user_properties.append(("kugeldrill_report", str(report)))
        return DrillVerdict(loaded.scenario.name, summary.verdict, summary.exit_code, run_dir, report,
                            failure_lines(summary), summary.error, summary)

    return run
