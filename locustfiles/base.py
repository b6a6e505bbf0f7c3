"""The base of every load user: timeouts, a leased terminal, and the op recorder.

`PosUser.operation()` is the one place where a logical operation meets the history: it
opens the operation, makes its invoke durable just before the effecting request (the
write-ahead rule, kugeldrill.ground.history), runs the steps, and turns their outcome into
exactly one of ok / fail / info. If Locust stops the user mid-operation (GreenletExit at the end of a run) the
request may already be on the wire, so that completion is `info`, never silence.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gevent
from locust import FastHttpUser

from kugeldrill.locustfiles.api import PosApi, StepError
from kugeldrill.locustfiles.runtime import Runtime, Terminal, get_runtime

_USER_SEQ = itertools.count(1)


class _NullOp:
    """Stands in for an OpRecord when no history directory is configured."""

    value: dict[str, Any]

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.done: str | None = None

    def ok(self, **v: Any) -> None:
        self.done = "ok"

    def fail(self, error: str, **v: Any) -> None:
        self.done = "fail"

    def info(self, error: str, **v: Any) -> None:
        self.done = "info"

    def durable(self) -> None:
        pass


class PosUser(FastHttpUser):
    """Abstract: a user that drives one leased terminal of `pool`."""

    abstract = True
    pool_attr = "cart_pool"  # LoadConfig field naming the pool
    # Overwritten from the load config by locustfiles/pos.py; explicit so no request can hang.
    connection_timeout = 3.0
    network_timeout = 10.0
    max_retries = 0  # a retried POST could apply a sale twice behind the history's back

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rt: Runtime = get_runtime()
        self.rt.environment = environment
        # Unique across workers: "<worker>.u<n>" (Jepsen's process id).
        self.user_id = f"{self.rt.worker_id()}.u{next(_USER_SEQ)}"
        self.term: Terminal | None = None
        self.api: PosApi | None = None

    # -- terminal lease ------------------------------------------------------------------
    def on_start(self) -> None:
        self._lease()

    def on_stop(self) -> None:
        if self.term is not None:
            self.rt.release(self.term)
            self.term, self.api = None, None

    def _lease(self) -> bool:
        if self.term is None:
            cfg = self.rt.settings.config
            self.term = self.rt.acquire(getattr(cfg, self.pool_attr))
            if self.term is not None:
                self.api = PosApi(self.client, self.rt.settings.urls, self.host or "", cfg.auth, self.term,
                                  self.rt.settings.provision)
        return self.term is not None

    def ready(self) -> bool:
        """False (after a pause) when this user holds no terminal: more users than terminals."""
        if self._lease():
            return True
        gevent.sleep(1.0)
        return False

    # -- history -----------------------------------------------------------------------
    def base_value(self) -> dict[str, Any]:
        assert self.term is not None
        prov = self.rt.settings.provision
        return {"tenant_id": prov["tenant_id"], "store_code": prov["store_code"],
                "terminal_no": self.term.terminal_no, "terminal_id": self.term.terminal_id}

    @contextmanager
    def operation(self, f: str, **value: Any) -> Iterator[Any]:
        """Record one logical operation; the body calls `op.ok(...)` when it succeeds.

        StepError -> fail/info per its outcome; GreenletExit or any other exception
        -> fail if the effecting request was not sent yet, else info; then re-raised.
        """
        history = self.rt.history()
        full = {**self.base_value(), **value}
        op = history.start(f, self.user_id, full) if history is not None else _NullOp(full)
        if self.api is not None:
            self.api.effect_started = False
            self.api.before_effect = op.durable  # write-ahead: the invoke is recorded before the effect
        try:
            yield op
        except StepError as err:
            if err.outcome == "fail":
                op.fail(err.error)
            else:
                op.info(err.error)
        except BaseException as exc:  # GreenletExit (run ended), StopUser, a bug
            if op.done is None:
                why = f"interrupted: {type(exc).__name__}: {exc}"[:300]
                if self.api is not None and not self.api.effect_started:
                    op.fail(why + " (before the effecting call)")
                else:
                    op.info(why)
            raise
        else:
            if op.done is None:
                op.info("operation ended without a recorded outcome")
