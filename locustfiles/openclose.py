"""OpenCloseUser: open/close cycles on terminals reserved for it (never used by carts).

Closing a terminal that carts are using would make their sales fail for reasons the
drill did not inject, so this user draws from its own pool. After an `info` outcome the
terminal's state is unknown; the user reads it back (GET /terminals/{id}) before
deciding whether the next operation is an open or a close.
"""

from __future__ import annotations

from locust import between, task

from kugeldrill.locustfiles.api import StepError
from kugeldrill.locustfiles.base import PosUser
from kugeldrill.locustfiles.totals import read_period, record


class OpenCloseUser(PosUser):
    pool_attr = "openclose_pool"
    wait_time = between(0.5, 2.0)

    def _refresh_status(self) -> bool:
        assert self.api is not None and self.term is not None
        try:
            self.term.status = self.api.terminal_info().get("status")
        except StepError:
            return False
        return self.term.status is not None

    @task
    def cycle(self) -> None:
        if not self.ready():
            return
        assert self.api is not None and self.term is not None
        if self.term.status is None and not self._refresh_status():
            return
        if self.term.status == "Opened":
            with self.operation("close") as op:
                self.term.status = None
                data = self.api.close()
                self.term.status = "Closed"
                record(op.value, read_period(data))
                op.ok()
        else:
            with self.operation("open") as op:
                self.term.status = None
                data = self.api.open()
                self.term.status = "Opened"
                record(op.value, read_period(data))
                op.ok()
