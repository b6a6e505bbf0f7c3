"""The Resiliency subset: retries (constant/exponential, maxRetries, status matching) and
per-attempt timeouts around component calls (dapr.md §5.1).

Why it matters for drills: in Dapr ≥ 1.17 an inbound retry policy is the only thing that
turns a failed delivery into a redelivery instead of a loss, and outbound timeouts decide
how fast a publish fails while Redis hangs. Circuit breakers are not implemented.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from kugeldrill.stack.sidecar.resources import Resiliency, RetryPolicy

T = TypeVar("T")

# cenkalti/backoff defaults that the CRD does not expose.
_EXP_INITIAL = 0.5
_EXP_MULTIPLIER = 1.5
_EXP_RANDOMIZATION = 0.5
_EXP_MAX_ELAPSED = 15 * 60.0


class DeadlineExceeded(Exception):
    """An attempt outlived its timeout policy (Go: `context deadline exceeded`)."""

    def __init__(self) -> None:
        super().__init__("context deadline exceeded")


class PermanentError(Exception):
    """Wraps an error that must not be retried (ETag mismatch, validation)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class Policy:
    """The retry and timeout that apply to one component in one direction."""

    retry: RetryPolicy | None = None
    timeout: float | None = None
    target: str = ""

    @property
    def empty(self) -> bool:
        return self.retry is None and self.timeout is None

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, PermanentError):
            return False
        codes = self.retry.http_status_codes if self.retry else None
        status = getattr(exc, "status_code", None)
        if codes and status is not None:
            return any(lo <= status <= hi for lo, hi in codes)
        return True

    def _delays(self):
        retry = self.retry
        assert retry is not None
        count = 0
        interval = _EXP_INITIAL
        started = time.monotonic()
        while retry.max_retries < 0 or count < retry.max_retries:
            count += 1
            if retry.policy == "constant":
                yield retry.duration
            else:
                if time.monotonic() - started > _EXP_MAX_ELAPSED:
                    return
                delta = _EXP_RANDOMIZATION * interval
                yield random.uniform(interval - delta, interval + delta)
                interval = min(interval * _EXP_MULTIPLIER, retry.max_interval)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        on_activation: Callable[[str], None] | None = None,
    ) -> T:
        """Run `attempt` under this policy; the last error is re-raised when retries end."""
        delays = self._delays() if self.retry else iter(())
        while True:
            try:
                if self.timeout is not None:
                    try:
                        async with asyncio.timeout(self.timeout):
                            return await attempt()
                    except TimeoutError:
                        if on_activation:
                            on_activation("timeout")
                        raise DeadlineExceeded() from None
                return await attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure kind is retryable unless told
                if not self._retryable(exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
                if on_activation:
                    on_activation("retry")
                await asyncio.sleep(delay)


def _default_names(kind: str, ctype: str, direction: str) -> list[str]:
    return [
        f"Default{ctype}Component{direction}{kind}Policy",
        f"DefaultComponent{direction}{kind}Policy",
        f"DefaultComponent{kind}Policy",
        f"Default{kind}Policy",
    ]


def component_policy(
    resiliencies: list[Resiliency], component: str, ctype: str, direction: str
) -> Policy:
    """The policy Dapr would attach: named target first, then the Default* names by kind.

    `ctype` is "Pubsub" or "Statestore"; `direction` is "Inbound" or "Outbound".
    """
    policy = Policy(target=f"{ctype}_{component}")
    table_attr = direction.lower()
    for res in resiliencies:
        refs = getattr(res, table_attr).get(component)
        if refs is None:
            continue
        if refs.retry and policy.retry is None:
            policy.retry = res.retries[refs.retry]
        if refs.timeout and policy.timeout is None:
            policy.timeout = res.timeouts[refs.timeout]
    if policy.retry is None:
        for name in _default_names("Retry", ctype, direction):
            found = next((r.retries[name] for r in resiliencies if name in r.retries), None)
            if found:
                policy.retry = found
                break
    if policy.timeout is None:
        for name in _default_names("Timeout", ctype, direction):
            found = next((r.timeouts[name] for r in resiliencies if name in r.timeouts), None)
            if found is not None:
                policy.timeout = found
                break
    return policy
