"""The differential API probe: every call the load makes, and its error cases, sent through
the load's own code to one deployment (the stand-in or the real Kugelpos), recorded as
field paths and types.

The requests are not re-typed here: provisioning runs `locustfiles.provision.provision`,
the sales, cash and open/close steps run the load's `PosApi` (the class Locust users call,
given an httpx session instead of Locust's), and the business reads run the outcome
checker's `read_business`. Every HTTP exchange goes through one recording transport, so
what is compared is exactly what the load and the checkers send and read.

An exchange is keyed `<case>: <METHOD> <app> <path template> -> <status>` (ids, codes and
numbers in the path replaced by `{names}`); its answer is reduced to a *shape*: every field
path (`data.payments[].paymentAmount`) with the JSON types seen there (`null`, `bool`,
`number`, `string`, `list`, `object`). Values (ids, times, amounts) are not compared.
Shapes, their comparison and the differences left on purpose live in tests/apishape.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from apishape import FIXTURES, merge_shapes, shape, types_text
from kugeldrill.checkers.adapters.business import read_business
from kugeldrill.locustfiles.api import PosApi, StepError
from kugeldrill.locustfiles.provision import provision
from kugeldrill.locustfiles.runtime import Terminal

TIMEOUT = httpx.Timeout(30.0, connect=5.0)  # the real services answer in ~2 s on a loaded machine
ATTEMPTS = 3  # sends of one request that got no answer at all (RecordingTransport._send)
SECRET_FIELDS = {"access_token", "accessToken", "apiKey", "api_key"}


# ---------------------------------------------------------------------- recording


@dataclass
class Exchange:
    case: str
    method: str
    app: str
    template: str
    status: int
    body: Any

    @property
    def key(self) -> str:
        return f"{self.case}: {self.method} {self.app} {self.template} -> {self.status}"


@dataclass
class Recording:
    """What one deployment answered, exchange by exchange, in the order sent."""

    exchanges: list[Exchange] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # attempts that got no answer, for the failure message

    def shapes(self) -> dict[str, dict[str, set[str]]]:
        out: dict[str, dict[str, set[str]]] = {}
        for ex in self.exchanges:
            merge_shapes(out.setdefault(ex.key, {}), shape(ex.body))
        return out

    def first(self, key: str) -> Exchange:
        return next(ex for ex in self.exchanges if ex.key == key)


class _Templater:
    """Turns a concrete path into its template: known ids first, then numbers."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def learn(self, value: Any, name: str) -> None:
        if value not in (None, ""):
            self.names.setdefault(str(value), name)

    def __call__(self, path: str) -> str:
        parts = []
        for seg in path.split("/"):
            if seg in self.names:
                parts.append("{" + self.names[seg] + "}")
            elif re.fullmatch(r"\d+", seg):
                parts.append("{n}")
            elif re.fullmatch(r"ITEM\d+", seg):
                parts.append("{item_code}")
            else:
                parts.append(seg)
        return "/".join(parts)


class RecordingTransport(httpx.BaseTransport):
    """An httpx transport that records every answer under the current case."""

    def __init__(self, urls: Mapping[str, str], recording: Recording, templater: _Templater) -> None:
        self.inner = httpx.HTTPTransport()
        self.apps = {urlsplit(url).netloc: app for app, url in urls.items()}
        self.recording = recording
        self.templater = templater
        self.case = "setup"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._send(request)
        content = response.read()
        try:
            body: Any = json.loads(content) if content else None
        except ValueError:
            body = {"<not json>": content[:200].decode("utf-8", "replace")}
        data = body.get("data") if isinstance(body, Mapping) else None
        if isinstance(data, Mapping):  # a new cart's id, to template the cart's paths
            self.templater.learn(data.get("cartId"), "cart_id")
        self.recording.exchanges.append(Exchange(
            self.case, request.method, self.apps.get(request.url.netloc.decode(), request.url.host),
            self.templater(request.url.path), response.status_code, body))
        return response

    def _send(self, request: httpx.Request) -> httpx.Response:
        """The answer to one request; a request that got no answer at all (refused, reset, timed
        out on a loaded machine) is sent again, up to ATTEMPTS times. The probe compares answers'
        shapes, not the services' pace: a call with no answer would otherwise drop an exchange
        from the recording and show as drift. Every attempt without an answer is kept in
        `recording.unanswered`; the last failure is raised as before."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self.inner.handle_request(request)
            except httpx.TransportError as exc:
                self.recording.unanswered.append(
                    f"{self.case}: {request.method} {self.templater(request.url.path)} attempt {attempt}: {exc!r}")
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.inner.close()


class _Resp:
    """What PosApi reads from Locust's FastResponse."""

    def __init__(self, status_code: int, content: bytes, headers: Mapping[str, str], error: Exception | None) -> None:
        self.status_code, self.content, self.headers, self.error = status_code, content, headers, error


class HttpxSession:
    """Locust's FastHttpSession.request(), as PosApi calls it, on an httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, url: str, *, name: str, headers: Mapping[str, str], data: bytes | None) -> _Resp:
        try:
            r = self.client.request(method, url, headers=dict(headers), content=data)
        except httpx.HTTPError as exc:
            return _Resp(0, b"", {}, exc)
        return _Resp(r.status_code, r.content, r.headers, None)


# ---------------------------------------------------------------------- the probe


@dataclass
class Probe:
    """One deployment under the probe: its URLs, provision.json, and the recording."""

    urls: dict[str, str]
    out_dir: Path
    recording: Recording = field(default_factory=Recording)
    templater: _Templater = field(default_factory=_Templater)

    def __post_init__(self) -> None:
        self.transport = RecordingTransport(self.urls, self.recording, self.templater)
        self.client = httpx.Client(timeout=TIMEOUT, transport=self.transport)
        self.provision: dict[str, Any] = {}

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        self.transport.case = name
        try:
            yield
        finally:
            self.transport.case = "setup"

    def api(self, pool: str, auth: str = "api_key", *, api_key: str | None = None) -> PosApi:
        t = self.provision["terminals"][pool][0]
        term = Terminal(pool, t["terminal_id"], int(t["terminal_no"]), api_key or t["api_key"])
        return PosApi(HttpxSession(self.client), self.urls, "", auth, term, self.provision)

    def expect_error(self, step: Callable[[], Any]) -> StepError:
        try:
            step()
        except StepError as err:
            return err
        raise AssertionError("the step succeeded where an error was expected")


def _learn_provision(templater: _Templater, prov: Mapping[str, Any]) -> None:
    templater.learn(prov["tenant_id"], "tenant_id")
    templater.learn(prov["store_code"], "store_code")
    templater.learn(prov.get("staff_id"), "staff_id")
    for terms in prov["terminals"].values():
        for t in terms:
            templater.learn(t["terminal_id"], "terminal_id")


def _sale(api: PosApi, items: list[tuple[str, int]], user: str) -> dict[str, Any]:
    cart_id = api.create_cart(user)
    for code, qty in items:
        api.add_item(cart_id, code, qty)
    sub = api.subtotal(cart_id)
    balance = int(sub["balanceAmount"])
    api.pay(cart_id, "01", (balance // 1000 + 1) * 1000)
    return api.bill(cart_id)


def run_probe(urls: Mapping[str, str], out_dir: Path, *, settle_seconds: float = 90.0) -> Recording:
    """Send every call of the load (and its error cases) to the deployment behind `urls`."""
    probe = Probe(dict(urls), out_dir)
    t = probe.templater
    try:
        tenant = f"T{uuid.uuid4().int % 10000:04d}"
        _learn_provision(t, {"tenant_id": tenant, "store_code": "5678", "staff_id": "staff001", "terminals": {
            "all": [{"terminal_id": f"{tenant}-5678-{n}"} for n in (1, 2, 3)]}})
        for code in ("01", "11", "12"):
            t.learn(code, "payment_code")
        with probe.case("provision"):
            probe.provision = provision(urls, out_dir, tenant_id=tenant, items=3, cart_terminals=1,
                                        cash_terminals=1, openclose_terminals=1,
                                        transport=probe.transport, timeout=30.0)
        _learn_provision(t, probe.provision)
        items = [i["item_code"] for i in probe.provision["items"]]
        cart = probe.api("cart")
        cash = probe.api("cash")
        oc = probe.api("openclose")

        with probe.case("sale"):
            sale = _sale(cart, [(items[0], 2), (items[1], 1)], "probe")
        with probe.case("cancel"):
            cart_id = cart.create_cart("probe")
            t.learn(cart_id, "cart_id")
            cart.add_item(cart_id, items[0], 1)
            cart.cancel(cart_id)
        with probe.case("sale"):
            to_void = _sale(cart, [(items[2], 1)], "probe")
            to_return = _sale(cart, [(items[1], 2)], "probe")
        with probe.case("void"):
            cart.void(int(to_void["transactionNo"]),
                      [{"payment_code": "01", "amount": to_void["totalAmountWithTax"]}])
        with probe.case("return"):
            cart.return_(int(to_return["transactionNo"]),
                         [{"payment_code": "01", "amount": to_return["totalAmountWithTax"]}])
        with probe.case("jwt"):
            jwt = probe.api("cart", "jwt")
            jwt.fetch_token()
            cart_id = jwt.create_cart("probe-jwt")
            t.learn(cart_id, "cart_id")
            jwt.cancel(cart_id)
        with probe.case("cash"):
            cash.cash("cash-in", 1234, "kugeldrill cash-in kd-probe")
            cash.cash("cash-out", 567, "kugeldrill cash-out kd-probe")
        with probe.case("openclose"):
            oc.terminal_info()
            oc.open()
        _errors(probe, items, sale)

        # The business reads, once the events reached report, journal and stock.
        deadline = time.monotonic() + settle_seconds
        with probe.case("business"):
            while True:
                snap = read_business(urls, probe.provision, client=probe.client, timeout=30.0)
                sales, cash_ = (snap.reports.get(f"{n}/{snap.terminal_dates.get(n)}") for n in (1, 2))
                settled = (sales is not None and sales.gross.count >= 2 and sales.returns.count >= 1
                           and cash_ is not None and cash_.cash_in.count >= 1 and cash_.cash_out.count >= 1)
                if settled or time.monotonic() > deadline:
                    break
                probe.recording.exchanges = [ex for ex in probe.recording.exchanges if ex.case != "business"]
                time.sleep(2.0)
        with probe.case("openclose"):
            oc.close()
        with probe.case("error: terminal state"):
            probe.expect_error(lambda: oc.cash("cash-in", 1, "kd"))  # closed
            probe.expect_error(oc.close)  # closed already
    finally:
        probe.close()
    return probe.recording


def _errors(probe: Probe, items: list[str], sale: Mapping[str, Any]) -> None:
    """The error answers the load meets: bad auth, unknown cart/item/transaction, wrong state."""
    cart = probe.api("cart")
    t = probe.templater
    with probe.case("error: bad API key"):
        probe.expect_error(lambda: probe.api("cart", api_key="not-a-key").create_cart("probe"))
        probe.expect_error(lambda: probe.api("cash", api_key="not-a-key").cash("cash-in", 1, "kd"))
        probe.expect_error(lambda: probe.api("cart", "jwt", api_key="not-a-key").fetch_token())
    with probe.case("error: unknown cart"):
        unknown = str(uuid.uuid4())
        t.learn(unknown, "cart_id")
        probe.expect_error(lambda: cart.subtotal(unknown))
    with probe.case("error: unknown item"):
        cart_id = cart.create_cart("probe")
        t.learn(cart_id, "cart_id")
        probe.expect_error(lambda: cart.add_item(cart_id, "NO-SUCH-ITEM", 1))
    with probe.case("error: wrong state"):
        probe.expect_error(lambda: cart.bill(cart_id))  # an empty cart cannot be billed
        cart.add_item(cart_id, items[0], 1)
        cart.subtotal(cart_id)
        probe.expect_error(lambda: cart.bill(cart_id))  # a balance is left
        cart.cancel(cart_id)
        probe.expect_error(lambda: cart.cancel(cart_id))  # already cancelled
    with probe.case("error: unknown transaction"):
        probe.expect_error(lambda: cart.void(999999, [{"payment_code": "01", "amount": 1}]))
    with probe.case("error: wrong amount"):
        probe.expect_error(lambda: cart.void(int(sale["transactionNo"]), [{"payment_code": "01", "amount": 1}]))
    with probe.case("error: terminal state"):
        probe.expect_error(probe.api("openclose").open)  # opened already


# ---------------------------------------------------------------------- fixtures and allowances

_LONG = 240  # example bodies keep long texts (receipts, journals) short; shapes keep their type


def _slug(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:150]


def _example(value: Any) -> Any:
    """A body fit to keep in the repository: secrets redacted, long texts cut (types unchanged)."""
    if isinstance(value, Mapping):
        return {k: ("<redacted>" if k in SECRET_FIELDS and isinstance(v, str) else _example(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_example(v) for v in value[:3]]
    if isinstance(value, str) and len(value) > _LONG:
        return value[:_LONG] + "…"
    return value


def save_fixtures(recording: Recording, folder: Path = FIXTURES) -> list[Path]:
    """One file per exchange key: its shape over every answer (`{path: "type|type"}`), and the
    first answer as an example."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    written = []
    for key, shp in recording.shapes().items():
        ex = recording.first(key)
        doc = {"key": key, "case": ex.case, "method": ex.method, "app": ex.app, "path": ex.template,
               "status": ex.status, "shape": {p: types_text(t) for p, t in sorted(shp.items())}, "example": _example(ex.body)}
        path = folder / f"{_slug(key)}.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


