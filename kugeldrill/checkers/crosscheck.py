"""Black-box cross-checks through the public APIs: what a client can see must match the history.

Independent of any white-box record, after quiescence:
* stock: per item, current quantity = initial − sold + returned + voided sales
  (− voided returns); `info` operations widen the band by what they would have moved;
* journal: one entry per transaction (sale, cancel, void, return) of the history; an `ok`
  one missing or any one present twice fails; `info` ones may be present or absent;
* report: the flash sales report's gross count = ok sales − ok voids, within the band
  the `info` sales and voids allow.

`expected_*` functions are pure (tested on their own); `check_public_apis` fetches with
httpx (timeout on every call, loopback only unless allowed) and compares.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from kugeldrill.checkers.examples import Examples
from kugeldrill.checkers.model import CheckResult, Op
from kugeldrill.ground.netguard import require_loopback

TRAN_FS = ("sale", "cancel", "void", "return")


def _qty(items: Iterable[Mapping[str, Any]] | None) -> Counter[str]:
    c: Counter[str] = Counter()
    for it in items or ():
        c[str(it.get("item_code"))] += int(it.get("quantity", 0) or 0)
    return c


def expected_stock(ops: Sequence[Op], initial: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """item -> (low, high) expected current quantity; ok moves shift both, info moves one side."""
    by_txn: dict[tuple[Any, Any], Op] = {}
    for op in ops:
        if op.f == "sale" and op.value.get("transaction_no") is not None:
            by_txn[(op.value.get("terminal_no"), op.value.get("transaction_no"))] = op
    lo: Counter[str] = Counter({k: int(v) for k, v in initial.items()})
    hi: Counter[str] = Counter(lo)
    for op in ops:
        if op.outcome == "fail" or op.f not in ("sale", "void", "return"):
            continue
        items = op.value.get("items")
        sign = -1 if op.f == "sale" else 1
        if op.f in ("void", "return") and not items:
            orig = by_txn.get((op.value.get("terminal_no"), op.value.get("original_transaction_no")))
            items = orig.value.get("items") if orig else None
        for code, q in _qty(items).items():
            delta = sign * q
            if op.outcome == "ok":
                lo[code] += delta
                hi[code] += delta
            elif delta < 0:  # info: may or may not have moved stock
                lo[code] += delta
                hi[code] += 0  # keep the key
            else:
                hi[code] += delta
                lo[code] += 0
    return {k: (lo[k], hi[k]) for k in set(lo) | set(hi)}


def expected_journal(ops: Sequence[Op]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(must appear once, may appear at most once) as (terminal_no, transaction_no) pairs."""
    must: set[tuple[str, str]] = set()
    may: set[tuple[str, str]] = set()
    for op in ops:
        if op.f not in TRAN_FS or op.value.get("transaction_no") is None:
            continue
        key = (str(op.value.get("terminal_no")), str(op.value["transaction_no"]))
        if op.outcome == "ok":
            must.add(key)
        elif op.outcome != "fail":
            may.add(key)
    return must, may - must


def expected_sales_count(ops: Sequence[Op]) -> tuple[int, int]:
    """(low, high) of the report's gross sales count (#sales − #voids, cancels excluded)."""
    c = Counter((op.f, op.outcome or "info") for op in ops if op.f in ("sale", "void"))
    lo = c[("sale", "ok")] - c[("void", "ok")] - c[("void", "info")]
    hi = c[("sale", "ok")] + c[("sale", "info")] - c[("void", "ok")]
    return lo, hi


def _data(body: Any) -> Any:
    return body.get("data", body) if isinstance(body, Mapping) else body


def _pick(d: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


class _Api:
    """Tiny client: X-API-KEY + terminal_id auth, timeouts, loopback guard."""

    def __init__(self, api_key: str, terminal_id: str, timeout: float, client: httpx.Client | None,
                 allow_hosts: Iterable[str]) -> None:
        self.headers = {"X-API-KEY": api_key} if api_key else {}
        self.terminal_id = terminal_id
        self.timeout = timeout
        self.allow = tuple(allow_hosts)
        self.client = client or httpx.Client(timeout=timeout)
        self.own = client is None

    def get(self, url: str, **params: Any) -> Any:
        require_loopback(url, allow_hosts=self.allow, what="service URL")
        if self.terminal_id:
            params.setdefault("terminal_id", self.terminal_id)
        resp = self.client.get(url, params=params, headers=self.headers, timeout=self.timeout)
        resp.raise_for_status()
        return _data(resp.json())

    def close(self) -> None:
        if self.own:
            self.client.close()


def check_public_apis(urls: Mapping[str, str], provision: Mapping[str, Any], ops: Sequence[Op], *,
                      initial_stock: Mapping[str, int] | None = None, timeout: float = 10.0,
                      client: httpx.Client | None = None, allow_hosts: Iterable[str] = (),
                      max_examples: int = 10) -> CheckResult:
    """Compare stock, journal and report APIs with the history (see the module docstring)."""
    ex = Examples(max_examples)
    unknown: list[str] = []
    counts: dict[str, Any] = {}
    tenant, store = provision.get("tenant_id"), provision.get("store_code")
    terms = (provision.get("terminals") or {}).get("cart") or []
    auth = terms[0] if terms else {}
    api = _Api(str(auth.get("api_key", "")), str(auth.get("terminal_id", "")), timeout, client, allow_hosts)
    initial = dict(initial_stock) if initial_stock is not None else {
        str(i["item_code"]): int(i.get("initial_stock", 0) or 0) for i in provision.get("items") or []}
    tran_ops = [op for op in ops if op.f in TRAN_FS]
    if not tran_ops:
        api.close()
        return CheckResult("crosscheck", None, "unknown: no transactions in the history", counts={},
                           details={"unknown": ["no transactions in the history"]})
    try:
        # Stock.
        if urls.get("stock"):
            band = expected_stock(tran_ops, initial)
            mism = 0
            for code, (lo, hi) in sorted(band.items()):
                try:
                    d = api.get(f"{urls['stock'].rstrip('/')}/api/v1/tenants/{tenant}/stores/{store}/stock/{code}")
                except httpx.HTTPError as exc:
                    unknown.append(f"stock of {code}: {exc}")
                    continue
                cur = _pick(d or {}, "currentQuantity", "current_quantity")
                if cur is None or not lo <= int(cur) <= hi:
                    mism += 1
                    ex.add("stock_mismatch", {"item_code": code, "actual": cur, "expected_low": lo, "expected_high": hi})
            counts["stock"] = {"items": len(band), "mismatches": mism}
        else:
            unknown.append("no stock URL")
        # Journal.
        if urls.get("journal"):
            must, may = expected_journal(tran_ops)
            seen: Counter[tuple[str, str]] = Counter()
            terminals = sorted({k[0] for k in must | may})
            page, fetched = 1, 0
            while terminals:
                d = api.get(f"{urls['journal'].rstrip('/')}/api/v1/tenants/{tenant}/stores/{store}/journals",
                            terminals=terminals, limit=100, page=page)
                rows = d if isinstance(d, list) else (_pick(d or {}, "data", "items") or [])
                for e in rows:
                    tno = _pick(e, "transactionNo", "transaction_no")
                    if tno is None:
                        continue
                    seen[(str(_pick(e, "terminalNo", "terminal_no")), str(tno))] += 1
                fetched += len(rows)
                if len(rows) < 100:
                    break
                page += 1
            for k in sorted(must):
                if seen[k] == 0:
                    ex.add("journal_missing", {"terminal_no": k[0], "transaction_no": k[1]})
            for k, n in sorted(seen.items()):
                if n > 1:
                    ex.add("journal_duplicate", {"terminal_no": k[0], "transaction_no": k[1], "entries": n})
            counts["journal"] = {"expected": len(must), "maybe": len(may), "entries": fetched,
                                 "missing": ex.counts.get("journal_missing", 0),
                                 "duplicated": ex.counts.get("journal_duplicate", 0)}
        else:
            unknown.append("no journal URL")
        # Report.
        if urls.get("report"):
            lo, hi = expected_sales_count(tran_ops)
            dates = sorted({str(op.value["business_date"]) for op in tran_ops if op.value.get("business_date")})
            actual = 0
            for date in dates:
                d = api.get(f"{urls['report'].rstrip('/')}/api/v1/tenants/{tenant}/stores/{store}/reports",
                            report_scope="flash", report_type="sales", business_date=date)
                gross = _pick(d or {}, "salesGross", "sales_gross") or {}
                actual += int(_pick(gross, "count") or 0)
            if not dates:
                unknown.append("no business date in the history: report not checked")
            elif not lo <= actual <= hi:
                ex.add("report_mismatch", {"sales_count": actual, "expected_low": lo, "expected_high": hi,
                                           "business_dates": dates})
            counts["report"] = {"sales_count": actual, "expected_low": lo, "expected_high": hi}
        else:
            unknown.append("no report URL")
    except httpx.HTTPError as exc:
        unknown.append(f"public API unreachable: {exc}")
    finally:
        api.close()
    counts["violations"] = dict(ex.counts)
    if ex:
        valid, summary = False, "public APIs disagree with the history: " + ", ".join(
            f"{k} {v}" for k, v in sorted(ex.counts.items()))
    elif unknown:
        valid, summary = None, "unknown: " + unknown[0]
    else:
        valid, summary = True, "stock, journal and report agree with the history"
    return CheckResult("crosscheck", valid, summary, counts=counts, examples=ex.items, details={"unknown": unknown})


def group_ops_by_terminal(ops: Sequence[Op]) -> dict[str, list[Op]]:
    """Helper for reports: transaction ops per terminal."""
    out: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f in TRAN_FS:
            out[str(op.value.get("terminal_no"))].append(op)
    return dict(out)


#: History operation -> Kugelpos stock update_type (stock_service.process_transaction_async).
_UPDATE_TYPE = {"sale": "SALE", "void": "VOID", "return": "RETURN"}


def expected_stock_rows(ops: Sequence[Op]) -> tuple[Counter, Counter]:
    """(must, may) counts of stock history rows per (reference_id, item_code, update_type).

    Kugelpos writes one `stock_updates` row per non-cancelled line with quantity > 0, with
    reference_id = str(transaction_no) -- no terminal number, so transactions of different
    terminals with the same number share a reference (counted together here too)."""
    by_txn = {(op.value.get("terminal_no"), op.value.get("transaction_no")): op for op in ops if op.f == "sale"}
    must: Counter = Counter()
    may: Counter = Counter()
    for op in ops:
        utype = _UPDATE_TYPE.get(op.f)
        if utype is None or op.outcome == "fail" or op.value.get("transaction_no") is None:
            continue
        items = op.value.get("items")
        if op.f != "sale" and not items:
            orig = by_txn.get((op.value.get("terminal_no"), op.value.get("original_transaction_no")))
            items = orig.value.get("items") if orig else None
        for it in items or ():
            if int(it.get("quantity", 0) or 0) <= 0:
                continue
            key = (str(op.value["transaction_no"]), str(it.get("item_code")), utype)
            (must if op.outcome == "ok" else may)[key] += 1
    return must, may


def check_stock_history(rows: Sequence[Mapping[str, Any]] | None, ops: Sequence[Op], *, reason: str = "",
                        max_examples: int = 10) -> CheckResult:
    """Stock movements applied more often than the history allows are duplicates (stock has no
    business-key dedup in Kugelpos, Surprise 2/5); fewer than the ok operations need are missing.
    Unknown without the rows (pymongo absent, MongoDB unreachable) or without transactions."""
    if rows is None:
        return CheckResult("stock_history", None, f"unknown: {reason or 'no stock history'}",
                           details={"unknown": [reason or "no stock history"]})
    must, may = expected_stock_rows(ops)
    if not must and not may:
        return CheckResult("stock_history", None, "unknown: no stock-moving transactions in the history",
                           details={"unknown": ["no stock-moving transactions in the history"]})
    seen: Counter = Counter((str(r.get("reference_id")), str(r.get("item_code")), str(r.get("update_type")))
                            for r in rows)
    ex = Examples(max_examples)
    for key in sorted(set(must) | set(may) | set(seen)):
        lo, hi, n = must[key], must[key] + may[key], seen[key]
        if n > hi:
            ex.add("duplicated_movement", {"reference_id": key[0], "item_code": key[1], "update_type": key[2],
                                           "rows": n, "expected_max": hi})
        elif n < lo:
            ex.add("missing_movement", {"reference_id": key[0], "item_code": key[1], "update_type": key[2],
                                        "rows": n, "expected_min": lo})
    counts = {"rows": len(rows), "expected_min": sum(must.values()), "expected_max": sum(must.values()) + sum(may.values()),
              "violations": dict(ex.counts)}
    if ex:
        return CheckResult("stock_history", False, "stock history disagrees with the history: " + ", ".join(
            f"{k} {v}" for k, v in sorted(ex.counts.items())), counts=counts, examples=ex.items)
    return CheckResult("stock_history", True, f"{len(rows)} stock movements match the history", counts=counts)
