"""Redis clients for the components, with go-redis' retry timing.

Why: how long a publish or state call takes to fail while Redis is refused or hung is what
the apps' breakers react to, so the stand-in retries like go-redis (dapr.md §3.6, §4.6):
`1 + redisMaxRetries` attempts with `RetryBackoff(min, max)` between them, and every
command bounded by the component's dial/read timeouts. redis-py's own retries are off.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.sidecar.resources import RedisSettings

T = TypeVar("T")

TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.IncompleteReadError)


def make_client(settings: RedisSettings, *, block_margin: float = 0.0) -> aioredis.Redis:
    """A pooled asyncio client; `block_margin` widens the socket timeout for blocking reads.

    The pool is a blocking one, like go-redis': when all `poolSize` connections are busy a
    call waits (up to readTimeout + 1 s, go-redis' poolTimeout) instead of failing at once.
    """
    require_loopback(f"{settings.host}:{settings.port}", what="redisHost")
    no_retry = Retry(NoBackoff(), 0)
    pool = aioredis.BlockingConnectionPool(
        max_connections=settings.pool_size,
        timeout=max(settings.read_timeout, 0.1) + 1.0,
        host=settings.host,
        port=settings.port,
        db=settings.db,
        password=settings.password,
        username=settings.username,
        socket_connect_timeout=settings.dial_timeout,
        socket_timeout=max(settings.read_timeout, 0.1) + block_margin,
        retry=no_retry,
    )
    return aioredis.Redis(connection_pool=pool, retry=no_retry, decode_responses=False)


async def wait_for_ping(client: aioredis.Redis, timeout: float = 5.0) -> None:
    """PING until Redis answers, like a component's Init (raises TimeoutError after `timeout`)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await client.ping()
                return
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                await asyncio.sleep(0.2)


def backoff(attempt: int, settings: RedisSettings) -> float:
    """go-redis `internal.RetryBackoff`: min<<attempt, randomised, capped at max."""
    lo, hi = settings.min_retry_interval, settings.max_retry_interval
    if lo <= 0:
        return 0.0
    span = lo * (2 ** attempt)
    delay = lo + random.uniform(0, span)
    return hi if delay > hi or delay < lo else delay


async def with_retries(settings: RedisSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run one Redis command with go-redis' retry rules for network errors."""
    attempt = 0
    while True:
        try:
            return await call()
        except TRANSIENT:
            if attempt >= settings.max_retries:
                raise
            await asyncio.sleep(backoff(attempt, settings))
            attempt += 1


def describe(exc: BaseException) -> str:
    """Error text in the shape of go-redis messages (`dial tcp ...: connect: connection refused`)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, RedisTimeoutError) or isinstance(exc, TimeoutError):
        return f"i/o timeout ({text})"
    return text
