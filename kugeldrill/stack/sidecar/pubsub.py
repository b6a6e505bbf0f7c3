"""The `pubsub.redis` component: XADD on publish; consumer groups, XREADGROUP, workers,
XACK by the chosen Dapr ack model, and the XPENDING/XCLAIM reclaim loop (dapr.md §3).

Why separate from delivery: this half decides *when* a message is read, acked or
redelivered (the loss/duplicate behaviour drills look for); `delivery.py` decides what the
app's answer means. The two meet at `Handler`: it returns None for success or an error.

Deviation from daprd, on purpose: XREADGROUP blocks for `block_ms` (default 2 s) rather than
forever, and a failed read waits a short, growing pause before the next one, so every
Redis call has a timeout and an outage does not spin a core. Messages, groups and acks
behave the same.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import ResponseError

from kugeldrill.stack.sidecar.redisconn import describe, make_client, with_retries, wait_for_ping
from kugeldrill.stack.sidecar.resources import PubsubComponent
from kugeldrill.stack.sidecar.sidelog import SidecarLog

ACK_MODELS = ("1.18", "1.16")


@dataclass
class StreamMessage:
    """One stream entry handed to the runtime."""

    topic: str
    entry_id: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)


Handler = Callable[[StreamMessage], Awaitable[BaseException | None]]


class PublishError(Exception):
    """XADD failed (→ 500 ERR_PUBSUB_PUBLISH_MESSAGE)."""


class RedisStreamsPubsub:
    """One pub/sub component: its publisher and, once subscribed, its consumer."""

    def __init__(
        self,
        comp: PubsubComponent,
        *,
        log: SidecarLog,
        ack_model: str = "1.18",
        block_ms: int = 2000,
    ) -> None:
        if ack_model not in ACK_MODELS:
            raise ValueError(f"ack model {ack_model!r} is not one of {ACK_MODELS}")
        self.comp = comp
        self.name = comp.name
        self.settings = comp.redis
        self.log = log
        self.ack_model = ack_model
        self.block_ms = block_ms
        self.client = make_client(comp.redis)
        self.reader = make_client(comp.redis, block_margin=block_ms / 1000.0)
        self.group = comp.consumer_id
        self.consumer = comp.consumer_id
        self._queue: asyncio.Queue[StreamMessage] = asyncio.Queue(maxsize=comp.queue_depth)
        self._tasks: list[asyncio.Task] = []
        self._handlers: dict[str, Handler] = {}
        self._workers_started = False

    # -- lifecycle ---------------------------------------------------------------
    async def init(self, timeout: float = 5.0) -> None:
        """PING like the component's Init (raises after `timeout`)."""
        await wait_for_ping(self.client, timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.client.aclose()
        await self.reader.aclose()

    # -- publish -----------------------------------------------------------------
    async def publish(self, topic: str, data: bytes, metadata: dict[str, str]) -> None:
        fields = {"data": data, "metadata": json.dumps(metadata, separators=(",", ":"))}
        maxlen = self.comp.max_len_approx or None
        try:
            await with_retries(
                self.settings,
                lambda: self.client.xadd(topic, fields, maxlen=maxlen, approximate=True),
            )
        except Exception as exc:  # noqa: BLE001
            raise PublishError(f"redis streams: error from publish: {describe(exc)}") from None

    async def dead_letter(self, topic: str, msg: StreamMessage) -> None:
        """Republish the stored bytes and metadata unchanged to a DLQ topic (30 s cap)."""
        async with asyncio.timeout(30):
            await self.publish(topic, msg.data, msg.metadata)

    # -- subscribe ---------------------------------------------------------------
    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Create the group (from 0, MKSTREAM) and start the read and reclaim loops."""
        self._handlers[topic] = handler
        await self._create_group(topic)
        if not self._workers_started:
            self._workers_started = True
            for _ in range(self.comp.concurrency):
                self._tasks.append(asyncio.create_task(self._worker()))
        self._tasks.append(asyncio.create_task(self._poll_loop(topic)))
        if self.comp.processing_timeout > 0 and self.comp.redeliver_interval > 0:
            self._tasks.append(asyncio.create_task(self._reclaim_loop(topic)))

    async def _create_group(self, topic: str) -> bool:
        try:
            await self.client.xgroup_create(topic, self.group, id="0", mkstream=True)
            self.log.info(f"redis streams: created consumer group {self.group} on stream {topic}",
                          scope="dapr.contrib")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                self.log.error(f"redis streams: {exc}", scope="dapr.contrib")
                return False
        except Exception as exc:  # noqa: BLE001 - Redis away: the poll loop tries again
            self.log.error(f"redis streams: {describe(exc)}", scope="dapr.contrib")
            return False
        return True

    async def _poll_loop(self, topic: str) -> None:
        failures = 0
        while True:
            try:
                streams = await self.reader.xreadgroup(
                    self.group, self.consumer, {topic: ">"}, count=self.comp.queue_depth, block=self.block_ms
                )
                failures = 0
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self.log.warning(
                        f"redis streams: consumer group {self.group} on stream {topic} is gone (NOGROUP); "
                        f"re-creating it from 0", scope="dapr.contrib")
                    await self._create_group(topic)
                else:
                    self.log.error(f"redis streams: error reading from stream {topic}: {exc}", scope="dapr.contrib")
                failures += 1
                await asyncio.sleep(min(0.05 * failures, 1.0))
                continue
            except Exception as exc:  # noqa: BLE001 - never exit because Redis is away
                self.log.error(f"redis streams: error reading from stream {topic}: {describe(exc)}",
                               scope="dapr.contrib")
                failures += 1
                await asyncio.sleep(min(0.05 * failures, 1.0))
                continue
            for _stream, entries in streams or []:
                for entry_id, values in entries:
                    await self._queue.put(self._message(topic, entry_id, values))

    @staticmethod
    def _message(topic: str, entry_id: bytes, values: dict) -> StreamMessage:
        data = values.get(b"data", b"") or b""
        metadata: dict[str, str] = {}
        raw_meta = values.get(b"metadata")
        if raw_meta:
            try:
                loaded = json.loads(raw_meta)
                if isinstance(loaded, dict):
                    metadata = {str(k): str(v) for k, v in loaded.items()}
            except ValueError:
                pass
        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return StreamMessage(topic=topic, entry_id=eid, data=data, metadata=metadata)

    async def _worker(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                await self._process(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug in one message must not stop the worker
                self.log.error(f"Error processing Redis message {msg.entry_id}: {exc}", scope="dapr.contrib")

    async def _process(self, msg: StreamMessage) -> None:
        handler = self._handlers[msg.topic]
        started = time.monotonic()
        err = await handler(msg)
        if err is not None:
            self.log.error(f"Error processing Redis message {msg.entry_id}: {err}", scope="dapr.contrib")
            pt = self.comp.processing_timeout
            expired = pt > 0 and time.monotonic() - started >= pt
            if self.ack_model == "1.16" or expired:
                return  # stays pending; the reclaim loop redelivers it after processingTimeout
        await self.ack(msg)

    async def ack(self, msg: StreamMessage) -> None:
        try:
            await with_retries(self.settings, lambda: self.client.xack(msg.topic, self.group, msg.entry_id))
        except Exception as exc:  # noqa: BLE001 - left pending → redelivered later (a duplicate)
            self.log.error(f"Error acknowledging Redis message {msg.entry_id}: {describe(exc)}", scope="dapr.contrib")

    async def _reclaim_loop(self, topic: str) -> None:
        while True:
            try:
                await self._reclaim_once(topic)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    self.log.error(f"error retrieving pending Redis messages: {exc}", scope="dapr.contrib")
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any Redis trouble
                self.log.error(f"error retrieving pending Redis messages: {describe(exc)}", scope="dapr.contrib")
            await asyncio.sleep(self.comp.redeliver_interval)

    async def _reclaim_once(self, topic: str) -> None:
        min_idle_ms = int(self.comp.processing_timeout * 1000)
        while True:
            pending = await self.client.xpending_range(topic, self.group, min="-", max="+",
                                                       count=self.comp.queue_depth)
            ids = [p["message_id"] for p in pending if p["time_since_delivered"] >= min_idle_ms]
            if not ids:
                return
            claimed = await self.client.xclaim(topic, self.group, self.consumer, min_idle_ms, ids)
            got = set()
            for entry_id, values in claimed:
                if values is None:
                    continue
                got.add(entry_id)
                await self._queue.put(self._message(topic, entry_id, values))
            for missing in (i for i in ids if i not in got):
                # The entry was trimmed while pending: Dapr claims it with idle 0 and acks it away.
                await self.client.xclaim(topic, self.group, self.consumer, 0, [missing])
                await self.client.xack(topic, self.group, missing)
            if not got:
                return

    def pending_stats(self) -> dict[str, int]:
        return {"queued": self._queue.qsize()}
