"""A Locust load shape for staged scenarios (`load.stages`), read from KUGELDRILL_STAGES.

Passed to Locust next to the entry locustfile (`-f locustfiles/pos.py,kugeldrill/drill_shape.py`)
only when a scenario has stages; each stage holds its user count for its duration.
"""

from __future__ import annotations

import json
import os

from locust import LoadTestShape


class StagesShape(LoadTestShape):
    """[(duration, users, spawn_rate), ...] in order; None (stop) after the last."""

    stages = json.loads(os.environ.get("KUGELDRILL_STAGES", "[]"))

    def tick(self):  # type: ignore[override]
        run_time = self.get_run_time()
        elapsed = 0.0
        for stage in self.stages:
            elapsed += float(stage["duration"])
            if run_time < elapsed:
                return int(stage["users"]), float(stage["spawn_rate"])
        return None
