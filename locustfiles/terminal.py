"""TerminalUser: cash-in and cash-out on a leased, opened cash terminal.

Each movement carries a unique token in its description (`kd-<uuid>`) so checkers can
find that exact cash log again in report, journal or the terminal's own logs.
"""

from __future__ import annotations

import random
import uuid

from locust import between, task

from kugeldrill.locustfiles.base import PosUser


class TerminalUser(PosUser):
    pool_attr = "cash_pool"
    wait_time = between(0.2, 1.0)

    @task
    def cash_movement(self) -> None:
        if not self.ready():
            return
        assert self.api is not None
        lo, hi = self.rt.settings.config.cash_amount
        amount = random.randint(lo, hi)
        direction = random.choice(("cash-in", "cash-out"))
        token = f"kd-{uuid.uuid4().hex}"
        description = f"kugeldrill {direction} {token}"
        with self.operation(direction.replace("-", "_"), amount=amount, cash_token=token,
                            description=description) as op:
            # Kugelpos answers a cash movement without its business date or open counter
            # (BaseCashInOutResponse); the checkers place it by the terminal's business date.
            self.api.cash(direction, amount, description)
            op.ok()
