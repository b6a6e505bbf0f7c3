"""The run folder's layout: every file a drill leaves, who writes it, and the one module that parses it.

A file parsed in two places drifts (two readers cut at different times, tolerate different
tears, disagree on a field); so each file of a run folder has exactly one parser, named
here, and every other module asks that parser for typed records. Paths are only built
through `RunFolder`; `tests/unit/test_run_folder_readers.py` scans the code base and fails
when a module other than a file's writer, its reader or a declared passer (which hands the
path to one of them) touches it, or when a file name is spelled anywhere but here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kugeldrill.ground.gzfiles import stored


@dataclass(frozen=True)
class RunFile:
    """One entry of the layout: its accessor on RunFolder, what it holds, writer, reader."""

    accessor: str
    what: str
    writers: tuple[str, ...]
    reader: str | None  # None: read by people only (reports, logs for a human)
    passers: tuple[str, ...] = ()  # modules that only hand the path to the writer or reader


LAYOUT: tuple[RunFile, ...] = (
    RunFile("scenario_yaml", "the scenario as run", ("kugeldrill.drill.runfolder",), "kugeldrill.scenario",
            ("kugeldrill.explore.shrink",)),
    RunFile("stack_dir", "the stand-in's state dir (stack.json while it runs, components, config, Redis and Toxiproxy "
            "logs; its databases are dropped after the drill)",
            ("kugeldrill.stack.launch.state", "kugeldrill.drill.compact"), "kugeldrill.stack.launch.state", ("kugeldrill.drill.env",)),
    RunFile("target_yaml", "the target file as run", ("kugeldrill.drill.env",), "kugeldrill.target"),
    RunFile("provision_json", "tenant, store, terminals, items, payment codes",
            ("kugeldrill.locustfiles.provision",), "kugeldrill.locustfiles.provision",
            ("kugeldrill.drill.run", "kugeldrill.drill.env", "kugeldrill.locustfiles.command")),
    RunFile("history_dir", "one history shard per Locust worker (removed once merged)",
            ("kugeldrill.ground.history", "kugeldrill.drill.compact"),
            "kugeldrill.ground.history",
            ("kugeldrill.drill.run", "kugeldrill.drill.locust", "kugeldrill.locustfiles.command",
             "kugeldrill.locustfiles.runtime", "kugeldrill.locustfiles.nodes", "kugeldrill.locustfiles.collector")),
    RunFile("history_jsonl", "the merged operation history (gzipped after the drill)",
            ("kugeldrill.ground.history", "kugeldrill.drill.compact", "kugeldrill.checkers.synthetic"),
            "kugeldrill.ground.history",
            ("kugeldrill.drill.run", "kugeldrill.checkers.adapters.standin", "kugeldrill.checkers.adapters.kugelpos")),
    RunFile("load_workers_json", "the Locust workers of a distributed load and how each history stream ended "
            "(lost workers named)", ("kugeldrill.locustfiles.collector",), "kugeldrill.locustfiles.collector",
            ("kugeldrill.locustfiles.nodes", "kugeldrill.drill.locust")),
    RunFile("timeline_json", "the faults as applied and healed", ("kugeldrill.chaos.timeline",),
            "kugeldrill.checkers.adapters.timeline",
            ("kugeldrill.drill.run", "kugeldrill.chaos.__main__", "kugeldrill.checkers.adapters.standin", "kugeldrill.checkers.adapters.kugelpos")),
    RunFile("events_dir", "the stand-in's structured events, one file per service (gzipped after the drill)",
            ("kugeldrill.stack.services.common.events", "kugeldrill.drill.compact", "kugeldrill.checkers.synthetic"),
            "kugeldrill.checkers.adapters.standin",
            ("kugeldrill.drill.env",)),
    RunFile("logs_dir", "service, sidecar and Locust logs; a target's copied logs (gzipped after the drill)",
            ("kugeldrill.stack.embedded.wiring", "kugeldrill.target_logs", "kugeldrill.drill.locust", "kugeldrill.drill.compact"),
            "kugeldrill.checkers.adapters.kugelpos_logs", ("kugeldrill.drill.env",)),
    RunFile("business_json", "report, journal and stock as read before the load and after the drill (gzipped after it)",
            ("kugeldrill.checkers.adapters.business", "kugeldrill.drill.compact"), "kugeldrill.checkers.adapters.business",
            ("kugeldrill.drill.run",)),
    RunFile("locust_prefix", "Locust's CSV statistics (<prefix>_stats.csv, _stats_history.csv, ...)",
            ("kugeldrill.locustfiles.command",), "kugeldrill.drill.locust"),
    RunFile("load_config_json", "the locustfile's configuration", ("kugeldrill.drill.locust",),
            "kugeldrill.locustfiles.loadconfig"),
    RunFile("locust_html", "Locust's own HTML report", ("kugeldrill.locustfiles.command",), None),
    RunFile("verdict_json", "the whole run summary", ("kugeldrill.reports.verdict",), "kugeldrill.reports.summary",
            ("kugeldrill.compare", "kugeldrill.drill.runfolder")),
    RunFile("junit_xml", "one testcase per expectation", ("kugeldrill.reports.junit",), None),
    RunFile("report_html", "the self-contained report", ("kugeldrill.reports.html",), None,
            ("kugeldrill.commands.run", "kugeldrill.pytest_plugin", "kugeldrill.suite.run", "kugeldrill.suite.report")),
)


class RunFolder:
    """Paths of one run folder's files (contracts §7)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def scenario_yaml(self) -> Path:
        return self.root / "scenario.yaml"

    @property
    def stack_dir(self) -> Path:
        return self.root / "stack"

    @property
    def target_yaml(self) -> Path:
        return self.root / "target.yaml"

    @property
    def provision_json(self) -> Path:
        return self.root / "provision.json"

    @property
    def history_dir(self) -> Path:
        return self.root / "history"

    @property
    def history_jsonl(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def load_workers_json(self) -> Path:
        return self.root / "load_workers.json"

    @property
    def timeline_json(self) -> Path:
        return self.root / "timeline.json"

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def business_json(self) -> Path:
        return self.root / "business.json"

    @property
    def locust_prefix(self) -> Path:
        return self.root / "locust"

    @property
    def load_config_json(self) -> Path:
        return self.root / "load_config.json"

    @property
    def locust_html(self) -> Path:
        return self.root / "locust.html"

    @property
    def verdict_json(self) -> Path:
        return self.root / "verdict.json"

    @property
    def junit_xml(self) -> Path:
        return self.root / "junit.xml"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def present(self) -> list[str]:
        """The layout's files and folders that exist, relative to the root, for a report to link."""
        out: list[str] = []
        for entry in LAYOUT:
            path = getattr(self, entry.accessor)
            if entry.accessor == "locust_prefix":
                out += sorted(p.name for p in self.root.glob(path.name + "_*.csv"))
            elif path.is_dir():
                out.append(path.name + "/")
            elif stored(path).exists():  # gzipped after the drill (drill.compact)
                out.append(stored(path).name)
        return out
