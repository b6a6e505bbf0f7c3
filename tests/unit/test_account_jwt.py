"""HS256 tokens (PyJWT): round trip, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
import time

import pytest

from kugeldrill.stack.services.common import tokens as jwt

SECRET = "s3cret"


def test_round_trip_and_user_claims() -> None:
    claims = jwt.decode(jwt.create_user_token("admin", "T1", SECRET), SECRET)
    assert claims["sub"] == "admin" and claims["tenant_id"] == "T1" and claims["is_superuser"] is True
    assert claims["exp"] > time.time() + 29 * 60


def test_terminal_token_carries_kugelpos_claims() -> None:
    doc = {"terminal_id": "T1-5678-1", "tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "status": "Opened",
           "business_date": "20260101", "open_counter": 2, "business_counter": 3, "staff_id": "s1", "staff_name": "S"}
    claims = jwt.decode(jwt.create_terminal_token(doc, SECRET), SECRET)
    assert claims["sub"] == "terminal:T1-5678-1" and claims["token_type"] == "terminal"
    assert claims["iss"] == "terminal-service" and claims["open_counter"] == 2 and claims["staff_id"] == "s1"


def test_service_token() -> None:
    claims = jwt.decode(jwt.create_service_token("report", "T1", SECRET), SECRET)
    assert claims["is_service_account"] is True and claims["sub"] == "service:report"


@pytest.mark.parametrize("mutate, reason", [
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
    (lambda t: "a.b", "malformed"),
    (lambda t: t.replace(t.split(".")[0], base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")), "HS256"),
])
def test_refuses_tampered_tokens(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    token = jwt.create_user_token("admin", "T1", SECRET)
    with pytest.raises(jwt.JwtError, match=reason):
        jwt.decode(mutate(token), SECRET)


def test_refuses_wrong_secret_and_expired() -> None:
    with pytest.raises(jwt.JwtError, match="signature"):
        jwt.decode(jwt.create_user_token("a", "T1", SECRET), "other")
    expired = jwt.encode({"sub": "a", "exp": time.time() - 1}, SECRET)
    with pytest.raises(jwt.JwtError, match="expired"):
        jwt.decode(expired, SECRET)


def test_refuses_non_object_claims() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256"}).encode()).decode().rstrip("=")
    body = base64.urlsafe_b64encode(b"[1]").decode().rstrip("=")
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(jwt.JwtError, match="object"):
        jwt.decode(f"{header}.{body}.{sig.decode().rstrip('=')}", SECRET)
