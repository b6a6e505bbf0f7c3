"""The roof's orchestration: one drill, end to end (run), what it runs against (env), its
faults and their one heal (faults), Locust as a subprocess (locust), the quiescence wait and checkers (checks), the run
folder's files gathered for reports (gather), the live console feed (watch), and the
scenario's expectations judged (expectations)."""

from kugeldrill.drill.run import DrillOptions, run_drill

__all__ = ["DrillOptions", "run_drill"]
