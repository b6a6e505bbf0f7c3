"""A Locust worker's history, streamed to its master over Locust's own message channel.

A worker on another host cannot write into the drill's run folder, so its history lines
travel to the master in batches (`runner.send_message`), and the master writes the shard
(kugeldrill.locustfiles.collector). Each batch carries a sequence number; the master
acknowledges the highest batch it holds without a gap, so a lost batch (a connection reset
drops what Locust's socket had queued) is seen on both sides and sent again, and a batch
arriving twice or late is recognised.

Durable means acknowledged: `durable()` (the write-ahead barrier before an effecting
request, see kugeldrill.ground.history) sends the batch holding the operation's invoke at
once and waits for the master's acknowledgement. So when a worker dies, every operation
that may have had an effect is already at the master, which then records it as `info`.
This module holds no Locust object: it is given a `send(type, data)` function, and the
node wiring (kugeldrill.locustfiles.nodes) feeds it acknowledgements and ticks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gevent.event import Event

from kugeldrill.ground.history import HistoryBuffer, HistoryError, OpRecord, encode_lines

MSG_BATCH = "kugeldrill_history"  # worker -> master: {"seq": n, "lines": [bytes, ...]}
MSG_ACK = "kugeldrill_history_ack"  # master -> worker: {"seq": highest batch held without a gap}
MSG_END = "kugeldrill_history_end"  # worker -> master: {"seq": last batch sent, "operations": n}


class HistoryNotDurable(HistoryError):
    """The master did not acknowledge an invoke in time: its effecting request must not be sent."""


class HistoryStream(HistoryBuffer):
    """The worker's end of the stream: batches with sequence numbers, resent until acknowledged."""

    RESEND_SECONDS = 3.0

    def __init__(self, worker: str, send: Callable[[str, dict[str, Any]], None],
                 durable_timeout: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(worker)
        self._send = send
        self._clock = clock
        self.durable_timeout = durable_timeout
        self.sent = 0  # highest sequence number sent
        self.acked = 0  # highest sequence number the master acknowledged
        self._unacked: dict[int, list[Any]] = {}  # seq -> [lines, last sent (monotonic)]
        self._acked_event = Event()

    # -- HistoryBuffer ---------------------------------------------------------------
    def _emit(self, data: bytes) -> None:
        self._batch(data)

    def _batch(self, data: bytes) -> int:
        lines = data.splitlines(keepends=True)  # a JSON line holds no raw newline
        self.sent += 1
        seq = self.sent
        self._unacked[seq] = [lines, self._clock()]
        self._send(MSG_BATCH, {"seq": seq, "lines": lines})  # may switch greenlets: the batch is recorded first
        return seq

    def durable(self, op: OpRecord) -> None:
        """Send `op`'s invoke now and return once the master acknowledged it.

        Raises HistoryNotDurable after `durable_timeout` seconds without that
        acknowledgement; the caller then does not send the effecting request."""
        if op.written:
            seq = self.sent
        else:  # one message: the completions waiting, then the invoke
            seq = self._batch(self._take_waiting() + encode_lines((self._invoke_record(op),)))
        deadline = time.monotonic() + self.durable_timeout
        while self.acked < seq:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HistoryNotDurable(f"the Locust master did not acknowledge history batch {seq} within "
                                        f"{self.durable_timeout:g} s")
            self._acked_event.clear()
            if self.acked < seq:
                self._acked_event.wait(left)

    # -- driven by the node wiring ------------------------------------------------------
    def on_ack(self, seq: int) -> None:
        """The master holds every batch up to `seq`."""
        if seq <= self.acked:
            return
        self.acked = seq
        for done in [s for s in self._unacked if s <= seq]:
            del self._unacked[done]
        self._acked_event.set()

    def tick(self) -> None:
        """Once a second: send lines that waited too long, resend batches not acknowledged."""
        now = self._clock()
        if self._waiting and now - self._oldest >= self.FLUSH_SECONDS:
            self.flush()
        overdue = [(seq, entry) for seq, entry in self._unacked.items() if now - entry[1] >= self.RESEND_SECONDS]
        for _, entry in overdue:
            entry[1] = now
        for seq, entry in sorted(overdue, key=lambda x: x[0]):
            self._send(MSG_BATCH, {"seq": seq, "lines": entry[0]})

    def finish(self) -> None:
        """The users stopped: send what is left and say which batch was the last."""
        self.flush()
        self._send(MSG_END, {"seq": self.sent, "operations": self.operations})

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def summary(self) -> str:
        """One line for the worker's console when it quits."""
        state = ("all acknowledged by the master" if not self._unacked
                 else f"{len(self._unacked)} not acknowledged by the master")
        return f"{self.operations} operations in {self.sent} history batches, {state}"
