"""Synthetic records for the checkers' tests and benchmark.

`full_fanout_run(n)` builds the records of a healthy run of n load operations in which
every event reached every expected subscriber once: the shape the benchmark checks at a
million operations, and the baseline that tests break one way at a time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kugeldrill.chaos.event import FaultEvent
from kugeldrill.chaos.kinds import get_kind
from kugeldrill.chaos.record import AppliedFault, FaultStatus, PlannedFault
from kugeldrill.checkers.inputs import FIELDS, CheckInputs
from kugeldrill.checkers.keys import cash_key, openclose_key, tran_key
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.checkers.model import (
    EXPECTED_SUBSCRIBERS,
    TOPIC_CASHLOG,
    TOPIC_OPENCLOSELOG,
    TOPIC_TRANLOG,
    Application,
    BreakerCall,
    BreakerTransition,
    Op,
    Publication,
)

_MIX = ("sale", "sale", "sale", "sale", "sale", "sale", "cancel", "void", "return", "cash_in")
#: A sale's, void's or return's figures as the load records them (contracts §4), so that the
#: records are complete (checkers.load_figures) and the history's lines have their real size.
_FIGURES: dict[str, Any] = {
    "amount_without_tax": 100, "tax": 10, "quantity": 1,
    "taxes": [{"tax_code": "01", "tax_amount": 10, "target_amount": 100, "target_quantity": 1}],
    "payments": [{"payment_code": "01", "amount": 110}], "items": [{"item_code": "49-01", "quantity": 1}]}
_FIGURES_JSON = "," + json.dumps(_FIGURES, separators=(",", ":"))[1:-1]


def fault(fid: str, subject: str, kind: str, start: float, end: float | None, *, kills: tuple[float, ...] = (),
          state_lost: bool | None = None, **params: object) -> AppliedFault:
    """An applied fault from `start` to `end` (None: never healed) on a link or, for kill / pause /
    restart, a process; `kills` become kill actions, `state_lost` a Redis reading before and after."""
    key = get_kind(kind, "fault").acts_on
    planned = PlannedFault(kind=kind, at=start, duration=(end or start + 1.0) - start, params=dict(params), id=fid,
                           **{key: subject})
    observations = [] if state_lost is None else [
        {"phase": "before", "data": {"markers_total": 2}},
        {"phase": "after", "data": {"survived": {"markers_survived": 0 if state_lost else 2}}}]
    return AppliedFault(planned, status=FaultStatus.ACTIVE if end is None else FaultStatus.HEALED,
                        applied_wall=1_700_000_000.0 + start, applied_mono=start,
                        healed_wall=None if end is None else 1_700_000_000.0 + end, healed_mono=end,
                        events=[FaultEvent("kill", 1_700_000_000.0 + k, k, seconds=0.0) for k in kills],
                        observations=observations)


def transition(service: str, mono: float, frm: str, to: str, breaker: str = "dapr", failures: int | None = None,
               seq: int | None = None) -> BreakerTransition:
    return BreakerTransition(service, breaker, mono, 1_700_000_000.0 + mono, frm, to, failures,  # type: ignore[arg-type]
                             seq=seq)


def call(service: str, mono: float, state: str, outcome: str, op: str = "save", breaker: str = "dapr",
         seq: int | None = None, admitted: float | None = None) -> BreakerCall:
    return BreakerCall(service, breaker, mono, 1_700_000_000.0 + mono, state, op, outcome,  # type: ignore[arg-type]
                       seq=seq, admitted_mono=admitted)


def numbered(*records: BreakerCall | BreakerTransition) -> list[BreakerCall | BreakerTransition]:
    """Give records their stream order (seq) as listed: how one service's events file holds them."""
    for i, rec in enumerate(records):
        rec.seq = i
    return list(records)


def _operations(n_ops: int, terminals: int, uuids: bool) -> Iterator[tuple[int, str, int, int, float, float, str]]:
    """(i, kind, terminal, transaction number, mono, wall, event id) of each operation of the run."""
    mono = 1000.0
    for i in range(n_ops):
        mono += 0.001
        eid = str(uuid.uuid4()) if uuids else f"e{i:08x}"  # one object shared by all its records
        yield i, _MIX[i % len(_MIX)], i % terminals + 1, i // terminals + 1, mono, 1_700_000_000.0 + mono, eid


def full_fanout_run(n_ops: int, *, tenant: str = "T1", store: str = "S1", terminals: int = 20,
                    uuids: bool = False) -> CheckInputs:
    """n ok operations (sales, cancels, voids, returns, cash-ins), each published once and
    applied once by every expected subscriber. Event ids are short unique strings unless
    `uuids` (real ids are uuid4: 36 characters). `write_full_fanout_run` writes the same
    run as files."""
    inp = CheckInputs()
    ops, pubs, apps = inp.ops, inp.publications, inp.applications
    subs_tran = EXPECTED_SUBSCRIBERS[TOPIC_TRANLOG]
    subs_cash = EXPECTED_SUBSCRIBERS[TOPIC_CASHLOG]
    for i, f, term, txno, mono, wall, eid in _operations(n_ops, terminals, uuids):
        if f == "cash_in":
            token = f"kd{i:x}"
            topic, subs = TOPIC_CASHLOG, subs_cash
            key = cash_key(tenant, store, term, f"2026-01-01T00:00:{i % 60:02d}", f"drill {token}")
            value = {"tenant_id": tenant, "store_code": store, "terminal_no": term, "cash_token": token, "amount": 100}
        else:
            topic, subs = TOPIC_TRANLOG, subs_tran
            key = tran_key(tenant, store, term, txno)
            value = {"tenant_id": tenant, "store_code": store, "terminal_no": term, "transaction_no": txno,
                     "amount": 110, **(_FIGURES if f != "cancel" else {})}
        ops.append(Op(f"op{i}", f, "ok", "w1", f"u{term}", mono, wall, mono + 0.0005, wall + 0.0005, value))
        pubs.append(Publication("cart" if topic == TOPIC_TRANLOG else "terminal", eid, topic, key, mono, wall, "ok"))
        for sub in subs:
            apps.append(Application(sub, eid, topic, key, mono + 0.01, wall + 0.01, 1, "miss"))
    for name in FIELDS:
        inp.mark(name, "synthetic")
    return inp


def write_full_fanout_run(run_dir: str | Path, n_ops: int, *, tenant: str = "T1", store: str = "S1",
                          terminals: int = 20, uuids: bool = False) -> RunFolder:
    """The run of `full_fanout_run` as the files a stand-in drill leaves: `history.jsonl`
    (an invoke and an ok line per operation, as `ground.history.HistoryWriter` writes them)
    and `events/<service>.jsonl` (`publish` and `applied` lines, contracts §3), written as
    they are made, so ten million operations cost no more memory than ten."""
    run = RunFolder(run_dir)
    run.events_dir.mkdir(parents=True, exist_ok=True)
    big = 1 << 20
    with ExitStack() as files:
        history = files.enter_context(open(run.history_jsonl, "w", buffering=big))
        events = {svc: files.enter_context(open(run.events_dir / f"{svc}.jsonl", "w", buffering=big))
                  for svc in ("cart", "terminal", "report", "journal", "stock")}
        subs_tran = EXPECTED_SUBSCRIBERS[TOPIC_TRANLOG]
        subs_cash = EXPECTED_SUBSCRIBERS[TOPIC_CASHLOG]
        for i, f, term, txno, mono, wall, eid in _operations(n_ops, terminals, uuids):
            ids = f'"tenant_id":"{tenant}","store_code":"{store}","terminal_no":{term}'
            if f == "cash_in":
                token = f"kd{i:x}"
                topic, subs, publisher = TOPIC_CASHLOG, subs_cash, "terminal"
                invoked = f'{{{ids},"cash_token":"{token}"}}'
                done = f'{{{ids},"cash_token":"{token}","amount":100}}'
                payload = f'{{{ids},"generate_date_time":"2026-01-01T00:00:{i % 60:02d}","description":"drill {token}"}}'
            else:
                topic, subs, publisher = TOPIC_TRANLOG, subs_tran, "cart"
                invoked = f"{{{ids}}}"
                done = f'{{{ids},"transaction_no":{txno},"amount":110{_FIGURES_JSON if f != "cancel" else ""}}}'
                payload = f'{{{ids},"transaction_no":{txno},"transaction_type":101}}'
            head = f'"op":"op{i}","f":"{f}","worker":"w1","user":"u{term}"'
            history.write(f'{{"type":"invoke",{head},"wall":{wall!r},"mono":{mono!r},"value":{invoked}}}\n'
                          f'{{"type":"ok",{head},"wall":{wall + 0.0005!r},"mono":{mono + 0.0005!r},"value":{done},'
                          f'"error":null}}\n')
            events[publisher].write(
                f'{{"ts":{wall!r},"mono":{mono!r},"service":"{publisher}","kind":"publish","event_id":"{eid}",'
                f'"pubsub":"pubsub-{topic}","topic":"{topic}","outcome":"ok","attempt":"initial",'
                f'"payload_keys":{payload}}}\n')
            for sub in subs:
                events[sub].write(
                    f'{{"ts":{wall + 0.01!r},"mono":{mono + 0.01!r},"service":"{sub}","kind":"applied",'
                    f'"event_id":"{eid}","topic":"{topic}","subscriber":"{sub}","attempt":1,"dedup":"miss",'
                    f'"payload_keys":{payload},"row":{i + 1}}}\n')
    return run


def openclose_event_key(tenant: str, store: str, term: int, date: str, counter: int, operation: str) -> str:
    return openclose_key(tenant, store, term, date, counter, operation)


TOPICS = (TOPIC_TRANLOG, TOPIC_CASHLOG, TOPIC_OPENCLOSELOG)
