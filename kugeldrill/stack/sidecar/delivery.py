"""Delivering a stream entry to the app and reading its answer (dapr.md §2.3–2.6).

Why this is the sidecar's most delicate part: whether a message is acked, redelivered,
dead-lettered or lost depends on exactly how the app's HTTP answer is read (a 200 with a
JSON array is SUCCESS; a lower-case "success" is a retry; a 404 is a drop) and on the
inbound Resiliency policy around the attempt.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

import httpx

from kugeldrill.stack.sidecar.metrics import Metrics
from kugeldrill.stack.sidecar.pubsub import RedisStreamsPubsub, StreamMessage
from kugeldrill.stack.sidecar.resiliency import PermanentError, Policy
from kugeldrill.stack.sidecar.resources import Subscription
from kugeldrill.stack.sidecar.sidelog import SidecarLog

CLOUDEVENTS = "application/cloudevents+json"


class Verdict(Enum):
    SUCCESS = "success"
    RETRY = "retry"
    DROP = "drop"  # app said DROP: counted drop/success
    NOT_FOUND = "notfound"  # app answered 404: counted drop/drop


@dataclass
class AppAnswer:
    verdict: Verdict
    status_code: int | None
    body: bytes
    detail: str  # for the log line
    app_status: str = ""  # the "status" string the app sent, if any


class DeliveryError(Exception):
    """The delivery failed and may be retried; `status_code` feeds Resiliency `matching`."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Dropped(PermanentError):
    """DROP or 404: never retried by the inbound policy."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(Exception(verdict.value))
        self.verdict = verdict


def _status_field(body: bytes) -> tuple[bool, str]:
    """Decode like Go into `struct{Status string "json:status"}`: (decoded, status)."""
    if not body.strip():
        return True, ""
    try:
        value = json.loads(body)
    except ValueError:
        return False, ""
    if value is None:
        return True, ""
    if not isinstance(value, dict):
        return False, ""
    # Go's encoding/json: exact key first, else a case-insensitive match; last one wins.
    if "status" in value:
        found = value["status"]
    else:
        matches = [v for k, v in value.items() if k.lower() == "status"]
        if not matches:
            return True, ""
        found = matches[-1]
    if found is None:
        return True, ""
    if not isinstance(found, str):
        return False, ""
    return True, found


def interpret(status_code: int, body: bytes) -> AppAnswer:
    """The §2.4 table, single-message HTTP."""
    if 200 <= status_code < 300:
        decoded, status = _status_field(body)
        if not decoded:
            return AppAnswer(Verdict.SUCCESS, status_code, body, "skipping status check due to error parsing result from pub/sub event")
        if status in ("SUCCESS", ""):
            return AppAnswer(Verdict.SUCCESS, status_code, body, "")
        if status == "RETRY":
            return AppAnswer(Verdict.RETRY, status_code, body, "RETRY status returned from app while processing pub/sub event")
        if status == "DROP":
            return AppAnswer(Verdict.DROP, status_code, body, "DROP status returned from app while processing pub/sub event")
        return AppAnswer(Verdict.RETRY, status_code, body, "unknown status returned from app while processing pub/sub event", status)
    if status_code == 404:
        return AppAnswer(Verdict.NOT_FOUND, status_code, body, "non-retriable error returned from app while processing pub/sub event")
    return AppAnswer(Verdict.RETRY, status_code, body, "retriable error returned from app while processing pub/sub event")


def raw_wrapper(msg: StreamMessage, sub: Subscription) -> bytes:
    """The envelope built per delivery for `rawPayload` subscriptions (new id every time)."""
    event = {
        "id": str(uuid.uuid4()),
        "specversion": "1.0",
        "datacontenttype": "application/octet-stream",
        "source": "Dapr",
        "type": "com.dapr.event.sent",
        "topic": sub.topic,
        "pubsubname": sub.pubsubname,
        "data_base64": base64.b64encode(msg.data).decode("ascii"),
    }
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


class Deliverer:
    """The runtime side of one subscription: route, deliver under the inbound policy, DLQ."""

    def __init__(
        self,
        *,
        sub: Subscription,
        pubsub: RedisStreamsPubsub,
        client: httpx.AsyncClient,
        policy: Policy,
        metrics: Metrics,
        log: SidecarLog,
        ack_model: str,
        resiliency_name: str = "",
    ) -> None:
        self.sub = sub
        self.pubsub = pubsub
        self.client = client
        self.policy = policy
        self.metrics = metrics
        self.log = log
        self.ack_model = ack_model
        self.resiliency_name = resiliency_name
        self.path = sub.route if sub.route.startswith("/") else "/" + sub.route
        self.delivered = 0

    def _ingress(self, process_status: str, status: str, latency_ms: float | None) -> None:
        self.metrics.pubsub_ingress(self.sub.pubsubname, self.sub.topic, process_status, status, latency_ms)

    async def __call__(self, msg: StreamMessage) -> BaseException | None:
        """Handle one message; None = the component may ack it."""
        if self.sub.raw_payload:
            body = raw_wrapper(msg, self.sub)
            event_id = "(raw)"
        else:
            body = msg.data
            try:
                event = json.loads(body)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                err = DeliveryError(f"error deserializing cloud event in pubsub {self.sub.pubsubname} and topic {self.sub.topic}: {exc}")
                self.log.error(str(err), scope="dapr.runtime.processor.pubsub")
                return await self._final_failure(msg, err)
            event_id = str(event.get("id", ""))
            expiration = event.get("expiration")
            if isinstance(expiration, str) and _expired(expiration):
                self.log.warning(f"dropping expired pub/sub event {event_id} as of {expiration}",
                                 scope="dapr.runtime.processor.pubsub")
                self._ingress("drop", "drop", None)
                await self._dead_letter(msg)
                return None
        if not self.sub.route:
            self.log.warning(f"no matching route for event {event_id} in pubsub {self.sub.pubsubname} "
                             f"and topic {self.sub.topic}; skipping", scope="dapr.runtime.processor.pubsub")
            self._ingress("drop", "success", None)
            await self._dead_letter(msg)
            return None
        headers = {"content-type": CLOUDEVENTS, "pubsubname": self.sub.pubsubname}
        for key, value in msg.metadata.items():
            headers.setdefault(key, value)

        async def attempt() -> None:
            await self._attempt(body, headers, event_id)

        def activation(kind: str) -> None:
            self.metrics.resiliency_activation(self.resiliency_name, kind, "inbound", self.policy.target)

        try:
            await self.policy.run(attempt, activation)
        except Dropped as drop:
            if drop.verdict is Verdict.DROP or self.ack_model == "1.18":
                await self._dead_letter(msg)  # 404 goes to the DLQ only from 1.18 (dapr#9401)
            return None
        except Exception as exc:  # noqa: BLE001
            return await self._final_failure(msg, exc)
        return None

    async def _attempt(self, body: bytes, headers: dict[str, str], event_id: str) -> None:
        started = time.monotonic()
        url = self.path
        try:
            resp = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            latency = (time.monotonic() - started) * 1000
            self._ingress("retry", "retry", latency)
            self.log.error(f"error from app channel while sending pub/sub event to app: {exc!r}",
                           scope="dapr.runtime.processor.pubsub")
            raise DeliveryError(f"error from app channel while sending pub/sub event to app: {exc!r}") from None
        latency = (time.monotonic() - started) * 1000
        self.delivered += 1
        answer = interpret(resp.status_code, resp.content)
        text = resp.content.decode("utf-8", errors="replace")
        scope = "dapr.runtime.processor.pubsub"
        if answer.verdict is Verdict.SUCCESS:
            self._ingress("success", "success", latency)
            if answer.detail:
                self.log.debug(answer.detail, scope=scope)
            return
        if answer.verdict is Verdict.DROP:
            self._ingress("drop", "success", latency)
            self.log.warning(f"DROP status returned from app while processing pub/sub event {event_id}", scope=scope)
            raise Dropped(Verdict.DROP)
        if answer.verdict is Verdict.NOT_FOUND:
            self._ingress("drop", "drop", latency)
            self.log.error(f"non-retriable error returned from app while processing pub/sub event {event_id}: "
                           f"{text}. status code returned: {resp.status_code}", scope=scope)
            raise Dropped(Verdict.NOT_FOUND)
        self._ingress("retry", "retry", latency)
        if 200 <= resp.status_code < 300:
            line = f"{answer.detail} {event_id}" + (f": {answer.app_status}" if answer.app_status else "")
            self.log.warning(line, scope=scope)
            raise DeliveryError(line)  # a 2xx RETRY carries no HTTP code for `matching`
        self.log.warning(f"retriable error returned from app while processing pub/sub event {event_id}, "
                         f"topic: {self.sub.topic}, body: {text}. status code returned: {resp.status_code}", scope=scope)
        raise DeliveryError(f"retriable error returned from app while processing pub/sub event {event_id}, "
                            f"topic: {self.sub.topic}, body: {text}. status code returned: {resp.status_code}",
                            status_code=resp.status_code)

    async def _final_failure(self, msg: StreamMessage, err: BaseException) -> BaseException | None:
        if self.sub.dead_letter_topic:
            if await self._dead_letter(msg):
                self._ingress("drop", "drop", None)
                return None
        self._ingress("retry", "retry", None)
        return err

    async def _dead_letter(self, msg: StreamMessage) -> bool:
        topic = self.sub.dead_letter_topic
        if not topic:
            return False
        try:
            await self.pubsub.dead_letter(topic, msg)
        except Exception as exc:  # noqa: BLE001
            self.log.error(f"failed to send message to dead letter topic {topic}: {exc}",
                           scope="dapr.runtime.processor.pubsub")
            return False
        self.log.warning(f"sent message {msg.entry_id} to dead letter topic {topic}", scope="dapr.runtime.processor.pubsub")
        return True


def _expired(expiration: str) -> bool:
    try:
        moment = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment < datetime.now(timezone.utc)
