"""What a store manager sees: report, journal and stock read through Kugelpos' public APIs.

The outcome checker's evidence (checkers/outcomes/). Two snapshots are taken: `before`
the load (after provisioning, once nothing is in flight) and `after` it (after
quiescence); the checker compares their difference with what the load's history says was
done, so a deployment with data of its own (a reused tenant, earlier drills) is judged by
what this drill changed.

Reads use a user token (account `/accounts/token`), not a terminal's API key: in Kugelpos an
API-key report request also posts the rendered report to the journal (docs/kugelpos-facts.md §5.7), and
the drill must not write what it then reads. Every call has a timeout and goes through the
loopback guard; a part that cannot be read is recorded as an error (its checks become
unknown, never a pass). Snapshots are saved in the run folder's business.json (this module
is its one reader).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.checkers.model import UNNAMED, BusinessSnapshot, Figure, JournalEntry, SalesReport, Unreadable
from kugeldrill.ground.gzfiles import open_stored
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.numbers import number_or_none
from kugeldrill.locustfiles.provision import PAYMENTS

PAGE = 1000  # rows per page (the report's cash logs are read with the request's limit: no cap of 100)
REPORT_PARTS = ("report", "journal", "stock")


def _pick(d: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(d, Mapping) and d.get(n) is not None:
            return d[n]
    return default


def _sum(total: float | None, value: Any) -> float | None:
    """Add a report figure; one the answer did not carry makes the sum unknown (None), never 0."""
    v = number_or_none(value)
    return None if total is None or v is None else total + v


def _figure(d: Any) -> Figure:
    """A report block; a block or figure the answer does not carry is None (unknown)."""
    if not isinstance(d, Mapping):
        return Figure(None, None, None)
    return Figure(*(number_or_none(d.get(k)) for k in ("amount", "quantity", "count")))


# Kugelpos' report names its taxes and payments but does not give their codes (docs/kugelpos-facts.md
# §5.7: `taxes[{taxName, ...}]`, `payments[{paymentName, ...}]`; the stand-in answers the
# same); the figures are keyed by code, so a name is mapped back: taxes through Kugelpos' built-in TAX_MASTER
# (kugel_common/config/settings_tax.py), payments through the payment masters kugeldrill
# provisions (locustfiles/provision.py). An unknown name stays as it is (and will not match).
TAX_CODES_BY_NAME = {"非課税": "00", "外税10%": "01", "内税10%": "02", "外税 8%": "11", "内税 8%": "12"}
PAYMENT_CODES_BY_NAME = {str(p["description"]): str(p["payment_code"]) for p in PAYMENTS}


def _lines(data: Mapping[str, Any], list_name: str, name_field: str, codes: Mapping[str, str],
           figures: dict[str, str]) -> dict[str, dict[str, float | None]]:
    """A report's tax or payment lines by code (`figures`: record name -> answer name).

    Kugelpos always answers both lists (BaseSalesReportResponse); a list the answer does not
    carry, or a line without its name, cannot be told apart by code: it is filed under
    UNNAMED with every figure None, which makes every line of its kind unknown, not 0."""
    out: dict[str, dict[str, float | None]] = {}
    lines = data.get(list_name) if isinstance(data, Mapping) else None
    if not isinstance(lines, list):
        return {UNNAMED: dict.fromkeys(figures)}
    for line in lines:
        name = _pick(line, name_field)
        if name is None:
            out[UNNAMED] = dict.fromkeys(figures)
            continue
        entry = out.setdefault(codes.get(str(name), str(name)), dict.fromkeys(figures, 0.0))
        for ours, theirs in figures.items():
            entry[ours] = _sum(entry[ours], _pick(line, theirs))
    return out


def parse_report(terminal_no: int, business_date: str, data: Mapping[str, Any]) -> SalesReport:
    """Kugelpos' sales report body (BaseSalesReportResponse) as a typed record, keyed by tax and payment code."""
    cash = _pick(data, "cash", default={})
    taxes = _lines(data, "taxes", "taxName", TAX_CODES_BY_NAME,
                   {"tax_amount": "taxAmount", "target_amount": "targetAmount", "target_quantity": "targetQuantity"})
    payments = _lines(data, "payments", "paymentName", PAYMENT_CODES_BY_NAME, {"amount": "amount", "count": "count"})
    return SalesReport(
        terminal_no=terminal_no, business_date=business_date,
        gross=_figure(_pick(data, "salesGross")), returns=_figure(_pick(data, "returns")),
        net=_figure(_pick(data, "salesNet")), taxes=taxes, payments=payments,
        cash_in=_figure(_pick(cash, "cashIn")), cash_out=_figure(_pick(cash, "cashOut")))


def parse_journal_entry(e: Mapping[str, Any]) -> JournalEntry:
    """Kugelpos' journal entry (BaseJournalSchema) as a typed record."""
    def opt_int(v: Any) -> int | None:
        try:
            return None if v is None else int(v)
        except (TypeError, ValueError):
            return None

    return JournalEntry(
        terminal_no=opt_int(_pick(e, "terminalNo")),  # None: an entry no terminal can claim (unknown)
        transaction_type=opt_int(_pick(e, "transactionType")),
        transaction_no=opt_int(_pick(e, "transactionNo")),
        receipt_no=opt_int(_pick(e, "receiptNo")),
        amount=number_or_none(_pick(e, "amount")), quantity=number_or_none(_pick(e, "quantity")),
        business_date=_pick(e, "businessDate"),
        generate_date_time=str(_pick(e, "generateDateTime", default="")))


class _Reader:
    """The HTTP side: a user token, then GETs with the Kugelpos envelope unwrapped."""

    def __init__(self, urls: Mapping[str, str], provision: Mapping[str, Any], timeout: float,
                 allow_hosts: Iterable[str], client: httpx.Client | None) -> None:
        self.urls = {k: require_loopback(v, allow_hosts=tuple(allow_hosts), what=f"{k} URL").rstrip("/")
                     for k, v in urls.items()}
        self.tenant, self.store = str(provision["tenant_id"]), str(provision["store_code"])
        self.user = provision.get("user") or {}
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)
        self.own = client is None
        self.headers: dict[str, str] = {}

    def login(self) -> None:
        resp = self.client.post(self.urls["account"] + "/api/v1/accounts/token", timeout=self.timeout,
                                data={"username": self.user.get("username", "admin"),
                                      "password": self.user.get("password", "admin"), "client_id": self.tenant})
        resp.raise_for_status()
        token = resp.json().get("access_token")
        if not token:
            raise httpx.HTTPError("account token answer without access_token")
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, app: str, path: str, **params: Any) -> tuple[Any, dict[str, Any]]:
        resp = self.client.get(self.urls[app] + path, params=params, headers=self.headers, timeout=self.timeout)
        resp.raise_for_status()
        body = resp.json()
        if isinstance(body, Mapping) and "data" in body:
            return body["data"], dict(body.get("metadata") or {})
        return body, {}

    def close(self) -> None:
        if self.own:
            self.client.close()


def _rows(data: Any) -> list[Mapping[str, Any]]:
    """List payloads: a bare list, or stock's nested `data.data[]`."""
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("items") or []
    return [r for r in data or [] if isinstance(r, Mapping)]


def _paged(reader: _Reader, app: str, path: str, **params: Any) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    page = 1
    while True:
        data, meta = reader.get(app, path, limit=PAGE, page=page, **params)
        rows = _rows(data)
        out.extend(rows)
        total = meta.get("total") if meta else (data.get("metadata") or {}).get("total") if isinstance(data, Mapping) else None
        if len(rows) < PAGE or (total is not None and len(out) >= int(total)):
            return out
        page += 1


def read_business(urls: Mapping[str, str], provision: Mapping[str, Any], *,
                  dates: Mapping[int, Iterable[str]] | None = None, parts: Iterable[str] = REPORT_PARTS,
                  timeout: float = 10.0, allow_hosts: Iterable[str] = (),
                  client: httpx.Client | None = None) -> BusinessSnapshot:
    """Read the drill's tenant and store: each provisioned terminal's business date, its flash
    sales reports (for its current date and any in `dates`), the journal of those terminals,
    and every item's stock. Unreadable parts are recorded in `errors`, never raised."""
    snap = BusinessSnapshot(taken_wall=time.time())
    parts = set(parts)
    terminals = sorted({(int(t["terminal_no"]), str(t["terminal_id"]))
                        for pool in (provision.get("terminals") or {}).values() for t in pool})
    try:
        reader = _Reader(urls, provision, timeout, allow_hosts, client)
    except KeyError as exc:
        snap.errors = {p: f"no {exc} in the provisioning record" for p in parts}
        return snap
    base = f"/api/v1/tenants/{reader.tenant}/stores/{reader.store}"
    try:
        try:
            reader.login()
        except (httpx.HTTPError, ValueError) as exc:
            snap.errors = {p: f"cannot log in to read it: {type(exc).__name__}: {exc}" for p in parts}
            return snap
        for no, tid in terminals:
            path = f"/api/v1/terminals/{tid}"
            try:
                info, _ = reader.get("terminal", path)
                date = _pick(info, "businessDate")
                if date:
                    snap.terminal_dates[no] = str(date)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                snap.unreadable.append(_unreadable("terminal", path, exc, terminal_no=no))
        if "report" in parts:
            _read_reports(reader, base, terminals, snap, dates or {})
        if "journal" in parts:
            try:
                rows = _paged(reader, "journal", base + "/journals", terminals=[no for no, _ in terminals])
                snap.journal = [parse_journal_entry(r) for r in rows]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                snap.errors["journal"] = f"GET journals: {type(exc).__name__}: {exc}"
        if "stock" in parts:
            try:
                rows = _paged(reader, "stock", base + "/stock")
                snap.stock = {str(_pick(r, "itemCode")): number_or_none(_pick(r, "currentQuantity"))
                              for r in rows}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                snap.errors["stock"] = f"GET stock: {type(exc).__name__}: {exc}"
    finally:
        reader.close()
    return snap


def _read_reports(reader: _Reader, base: str, terminals: list[tuple[int, str]], snap: BusinessSnapshot,
                  dates: Mapping[int, Iterable[str]]) -> None:
    for no, _tid in terminals:
        wanted = set(dates.get(no, ()))
        if no in snap.terminal_dates:
            wanted.add(snap.terminal_dates[no])
        for date in sorted(wanted):
            path = f"{base}/terminals/{no}/reports"
            try:
                data, _ = reader.get("report", path, report_scope="flash",
                                     report_type="sales", business_date=date, limit=PAGE)
                snap.reports[f"{no}/{date}"] = parse_report(no, date, data or {})
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                # This terminal's report only: the others (and journal, stock) are still judged.
                snap.unreadable.append(_unreadable("report", path, exc, terminal_no=no, business_date=date))


def _unreadable(part: str, path: str, exc: Exception, **where: Any) -> Unreadable:
    """The failed read as a record: the answer's status and body when there was one."""
    status, body = None, ""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        try:
            body = exc.response.text[:500]
        except (UnicodeDecodeError, httpx.HTTPError):
            body = ""
    return Unreadable(part=part, request=f"GET {path}", error=f"{type(exc).__name__}: {exc}"[:300], status=status,
                      body=body, **where)


# ---------------------------------------------------------------------- business.json


def save_snapshots(path: Path, snapshots: Mapping[str, BusinessSnapshot]) -> None:
    """business.json: {"before": ..., "after": ...} as read, for the report and a re-check."""
    path.write_text(json.dumps({k: asdict(v) for k, v in snapshots.items()}, indent=1, default=str), encoding="utf-8")


def load_snapshots(path: Path) -> dict[str, BusinessSnapshot]:
    with open_stored(path, "rt") as fh:  # gzipped after the drill (drill.compact)
        doc = json.load(fh)
    out = {}
    for name, s in doc.items():
        snap = BusinessSnapshot(taken_wall=float(s.get("taken_wall") or 0.0), errors=dict(s.get("errors") or {}),
                                unsettled=str(s.get("unsettled") or ""),
                                terminal_dates={int(k): str(v) for k, v in (s.get("terminal_dates") or {}).items()},
                                unreadable=[Unreadable(**u) for u in s.get("unreadable") or []])
        if s.get("journal") is not None:
            snap.journal = [JournalEntry(**e) for e in s["journal"]]
        if s.get("stock") is not None:
            snap.stock = {str(k): None if v is None else float(v) for k, v in s["stock"].items()}
        for key, r in (s.get("reports") or {}).items():
            snap.reports[key] = SalesReport(
                terminal_no=int(r["terminal_no"]), business_date=str(r["business_date"]),
                gross=Figure(**r["gross"]), returns=Figure(**r["returns"]), net=Figure(**r["net"]),
                taxes=dict(r.get("taxes") or {}), payments=dict(r.get("payments") or {}),
                cash_in=Figure(**r["cash_in"]), cash_out=Figure(**r["cash_out"]))
        out[name] = snap
    return out
