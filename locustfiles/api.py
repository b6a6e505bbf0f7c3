"""Kugelpos requests for the load users, and the outcome rule for each step.

A logical operation (a sale) is several requests; only one of them — the *effecting*
call (bill, cancel, void, return, cash-in/out, open, close) — can make it take effect.
Jepsen's rule, applied per step:

* any failure *before* the effecting call: the operation is abandoned and never took
  effect -> `fail` (a sale whose cart creation timed out is a failed sale);
* the effecting call answered 4xx, or the connection was refused (nothing was sent)
  -> `fail`;
* the effecting call timed out, was reset or closed after sending, or answered 5xx
  -> `info` (unknown: it may have been applied);
* the effecting call answered 2xx -> `ok`.

Both of Kugelpos' auth modes are handled here: `X-API-KEY` plus `terminal_id` (path on
terminal routes, query elsewhere), or a terminal JWT from `/api/v1/auth/token`, replaced
whenever a lifecycle call answers with `X-New-Token`.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from kugeldrill.ground.history import HistoryError
from kugeldrill.locustfiles.runtime import Terminal

TERMINAL_APP = "terminal"
# Kugelpos answers UTF-8 JSON: decoding it ourselves skips json.loads' encoding sniffing.
_DECODE = json.JSONDecoder().decode
_JSON_STR = json.JSONEncoder().encode  # a JSON string literal, escaped (item and payment codes)


class StepError(Exception):
    """A step ended the operation: `outcome` is `fail` or `info`, `error` says why."""

    def __init__(self, outcome: str, error: str, status: int = 0) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.status = status


def _causes(exc: BaseException | None) -> list[BaseException]:
    """The error and what it wraps (`original` of geventhttpclient's RetriesExceeded, causes)."""
    out: list[BaseException] = []
    while exc is not None and exc not in out and len(out) < 8:
        out.append(exc)
        nxt = getattr(exc, "original", None)
        exc = nxt if isinstance(nxt, BaseException) else (exc.__cause__ or exc.__context__)
    return out


def _refused(exc: BaseException | None) -> bool:
    """True when the connection was refused: the request was certainly never sent."""
    return any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED
               for e in _causes(exc))


def _describe(exc: BaseException | None) -> str:
    """Short, stable text: the innermost error's type and message (e.g. 'timeout: timed out')."""
    chain = _causes(exc)
    if not chain:
        return "no response"
    inner = chain[-1]
    text = str(inner)
    return f"{type(inner).__name__}: {text}"[:300] if text else type(inner).__name__


def classify(status: int, error: BaseException | None, *, effecting: bool, step: str,
             message: str = "") -> StepError | None:
    """The StepError a response means for this step, or None if the step succeeded."""
    if 200 <= status < 300:
        return None
    if status == 0:
        what = f"{step}: {_describe(error)}"
        if _refused(error):
            return StepError("fail", f"{step}: connection refused")
        return StepError("info" if effecting else "fail", what)
    what = f"{step}: HTTP {status}" + (f" {message}" if message else "")
    if status >= 500 and effecting:
        return StepError("info", what, status)
    return StepError("fail", what, status)


class PosApi:
    """Requests of one user on one terminal, through the user's FastHttpSession."""

    def __init__(self, client: Any, urls: dict[str, str], fallback_host: str, auth: str, terminal: Terminal,
                 provision: dict[str, Any]) -> None:
        self.client = client
        self.urls = urls
        self.fallback_host = (fallback_host or "").rstrip("/")
        self.auth = auth
        self.term = terminal
        self.tenant_id = str(provision["tenant_id"])
        self.store_code = str(provision["store_code"])
        # Set just before an effecting request is sent: an interruption after it is `info`.
        self.effect_started = False
        # Called just before an effecting request (the operation's write-ahead barrier); when
        # it cannot record the operation, the request is not sent and the operation fails.
        self.before_effect: Callable[[], None] | None = None
        # Per-terminal constants, built once (the load generator's CPU is the drill's budget).
        self._tq = "?" + urlencode({"terminal_id": terminal.terminal_id})
        self._key_headers = {"X-API-KEY": terminal.api_key, "Content-Type": "application/json"}
        self._jwt_headers: dict[str, str] | None = None
        self._jwt_token: str | None = None
        self._create_user = ""
        self._create_body: bytes | None = None  # POST /carts body: the same for every sale of this user
        self._codes: dict[str, str] = {}  # item/payment code -> its JSON literal

    # -- plumbing ----------------------------------------------------------------------
    def _url(self, app: str, path: str, query: dict[str, Any] | None) -> str:
        base = self.urls.get(app) or self.fallback_host
        if self.auth == "api_key" and app != TERMINAL_APP:
            if not query:  # the common case: precomputed `?terminal_id=...`
                return f"{base}{path}{self._tq}"
            query = {**query, "terminal_id": self.term.terminal_id}
        return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"

    def _code(self, code: str) -> str:
        """`code` as a JSON string literal, escaped once per distinct code."""
        lit = self._codes.get(code)
        if lit is None:
            lit = self._codes[code] = _JSON_STR(code)
        return lit

    def _headers(self, app: str) -> dict[str, str]:
        if self.auth == "jwt":
            if not self.term.token:
                self.fetch_token()
            if self._jwt_headers is None or self._jwt_token != self.term.token:
                self._jwt_token = self.term.token
                self._jwt_headers = {"Authorization": f"Bearer {self.term.token}", "Content-Type": "application/json"}
            return self._jwt_headers
        return self._key_headers

    def request(self, method: str, app: str, path: str, *, name: str, body: Any = None,
                query: dict[str, Any] | None = None, effecting: bool = False, headers: dict[str, str] | None = None,
                parse: bool = True, raw: bytes | None = None) -> tuple[Any, Any]:
        """Send one request; return (envelope data, response) or raise StepError.

        `raw` is a body already rendered as JSON bytes (the hot cart steps render theirs from
        a template instead of json.dumps per request); otherwise `body` is JSON-encoded.
        `parse=False` skips decoding a successful answer the caller does not read (the load
        generator's CPU is the drill's budget); error answers are always decoded for the message.
        """
        hdrs = headers if headers is not None else self._headers(app)
        if effecting:
            if self.before_effect is not None:
                try:
                    self.before_effect()
                except (HistoryError, OSError) as exc:
                    raise StepError("fail", f"{name}: not sent: the history could not record the operation "
                                            f"first ({exc})") from None
            self.effect_started = True
        if raw is None and body is not None:
            raw = json.dumps(body, separators=(",", ":")).encode()
        resp = self.client.request(method, self._url(app, path, query), name=name, headers=hdrs, data=raw)
        status = int(resp.status_code or 0)
        if 200 <= status < 300:  # the hot path: no classification, decode only what is read
            data = _envelope_data(resp.content) if parse else None
            if self.auth == "jwt" and resp.headers is not None:
                new = resp.headers.get("X-New-Token")
                if new:
                    self.term.token = new
            return data, resp
        message = ""
        if status:
            parsed = _envelope(resp.content)
            if isinstance(parsed, dict):
                message = str(parsed.get("message") or "")[:200]
        err = classify(status, getattr(resp, "error", None), effecting=effecting, step=name, message=message)
        if err is None:  # cannot happen: classify passes only 2xx
            err = StepError("fail", f"{name}: HTTP {status}", status)
        if status == 401 and self.auth == "jwt":
            self.term.token = None  # expired or stale: fetch a new one next time
        raise err

    def fetch_token(self) -> None:
        """Terminal JWT via POST /api/v1/auth/token (X-API-KEY); failure ends the op as `fail`."""
        data, _ = self.request("POST", TERMINAL_APP, "/api/v1/auth/token", name="POST /api/v1/auth/token",
                               query={"terminal_id": self.term.terminal_id},
                               headers={"X-API-KEY": self.term.api_key, "Content-Type": "application/json"})
        token = (data or {}).get("access_token")  # snake_case in Kugelpos' answer, inside the envelope
        if not token:
            raise StepError("fail", "POST /api/v1/auth/token: answer without access_token")
        self.term.token = str(token)

    # -- cart --------------------------------------------------------------------------
    def create_cart(self, user_id: str) -> str:
        if self._create_body is None or self._create_user != user_id:
            self._create_user = user_id
            self._create_body = json.dumps({"transaction_type": 101, "user_id": user_id, "user_name": user_id},
                                           separators=(",", ":")).encode()
        data, _ = self.request("POST", "cart", "/api/v1/carts", name="POST /api/v1/carts", raw=self._create_body)
        cart_id = (data or {}).get("cartId")
        if not cart_id:
            raise StepError("fail", "POST /api/v1/carts: answer without cartId")
        return str(cart_id)

    def add_item(self, cart_id: str, item_code: str, quantity: int) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", f"/api/v1/carts/{cart_id}/lineItems",
                               name="POST /api/v1/carts/[cart_id]/lineItems",
                               raw=f'[{{"item_code":{self._code(item_code)},"quantity":{int(quantity)}}}]'.encode(),
                               parse=False)
        return data or {}

    def subtotal(self, cart_id: str) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", f"/api/v1/carts/{cart_id}/subtotal",
                               name="POST /api/v1/carts/[cart_id]/subtotal")
        return data or {}

    def pay(self, cart_id: str, payment_code: str, amount: int) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", f"/api/v1/carts/{cart_id}/payments",
                               name="POST /api/v1/carts/[cart_id]/payments",
                               raw=f'[{{"payment_code":{self._code(payment_code)},"amount":{int(amount)}}}]'.encode(),
                               parse=False)
        return data or {}

    def bill(self, cart_id: str) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", f"/api/v1/carts/{cart_id}/bill",
                               name="POST /api/v1/carts/[cart_id]/bill", effecting=True)
        return data or {}

    def cancel(self, cart_id: str) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", f"/api/v1/carts/{cart_id}/cancel",
                               name="POST /api/v1/carts/[cart_id]/cancel", effecting=True)
        return data or {}

    def _tran_path(self, transaction_no: int, action: str) -> str:
        return (f"/api/v1/tenants/{self.tenant_id}/stores/{self.store_code}/terminals/{self.term.terminal_no}"
                f"/transactions/{transaction_no}/{action}")

    def void(self, transaction_no: int, payments: list[dict[str, Any]]) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", self._tran_path(transaction_no, "void"),
                               name="POST /api/v1/tenants/[t]/stores/[s]/terminals/[n]/transactions/[no]/void",
                               body=payments, effecting=True)
        return data or {}

    def return_(self, transaction_no: int, payments: list[dict[str, Any]]) -> dict[str, Any]:
        data, _ = self.request("POST", "cart", self._tran_path(transaction_no, "return"),
                               name="POST /api/v1/tenants/[t]/stores/[s]/terminals/[n]/transactions/[no]/return",
                               body=payments, effecting=True)
        return data or {}

    # -- terminal ----------------------------------------------------------------------
    def terminal_info(self) -> dict[str, Any]:
        data, _ = self.request("GET", TERMINAL_APP, f"/api/v1/terminals/{self.term.terminal_id}",
                               name="GET /api/v1/terminals/[id]")
        return data or {}

    def cash(self, direction: str, amount: int, description: str) -> dict[str, Any]:
        data, _ = self.request("POST", TERMINAL_APP, f"/api/v1/terminals/{self.term.terminal_id}/{direction}",
                               name=f"POST /api/v1/terminals/[id]/{direction}",
                               body={"amount": amount, "description": description}, effecting=True)
        return data or {}

    def open(self, initial_amount: int | None = None) -> dict[str, Any]:
        body = {"initial_amount": initial_amount} if initial_amount is not None else {}
        data, _ = self.request("POST", TERMINAL_APP, f"/api/v1/terminals/{self.term.terminal_id}/open",
                               name="POST /api/v1/terminals/[id]/open", body=body, effecting=True)
        return data or {}

    def close(self) -> dict[str, Any]:
        data, _ = self.request("POST", TERMINAL_APP, f"/api/v1/terminals/{self.term.terminal_id}/close",
                               name="POST /api/v1/terminals/[id]/close", body={}, effecting=True)
        return data or {}


def _envelope(content: bytes | str | None) -> Any:
    """The decoded answer, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return _DECODE(content.decode("utf-8") if isinstance(content, (bytes, bytearray)) else content)
    except (ValueError, TypeError):
        return None


def _envelope_data(content: bytes | str | None) -> Any:
    """Kugelpos' `data` member of a decoded answer (the whole answer if it has none)."""
    parsed = _envelope(content)
    return parsed.get("data", parsed) if isinstance(parsed, dict) else None


def tender_for(balance: int) -> int:
    """Cash handed over: the next multiple of 1000 strictly above the balance (so there is change)."""
    return (balance // 1000 + 1) * 1000

