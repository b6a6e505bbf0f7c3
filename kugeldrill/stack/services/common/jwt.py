"""HS256 JSON Web Tokens with the standard library, and Kugelpos' three token kinds.

Kugelpos signs user, terminal and service tokens with one shared SECRET_KEY (HS256).
A client written for Kugelpos only needs the tokens to round-trip and carry Kugelpos'
claims, so a dependency-free implementation (hmac + base64) is enough and keeps the
stand-in's install small.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

USER_TOKEN_MINUTES = 30
TERMINAL_TOKEN_HOURS = 24
SERVICE_TOKEN_MINUTES = 5
TERMINAL_ISSUER = "terminal-service"


class JwtError(Exception):
    """The token is malformed, badly signed, of the wrong algorithm, or expired."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JwtError(f"token segment is not base64url: {exc}") from exc


def encode(claims: dict[str, Any], secret: str) -> str:
    """Sign `claims` as a compact HS256 JWT."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), default=str).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def decode(token: str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """Verify signature and `exp`; return the claims or raise JwtError saying why."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("token must have three dot-separated segments")
    header_b64, payload_b64, sig_b64 = parts
    try:
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(payload_b64))
    except json.JSONDecodeError as exc:
        raise JwtError(f"token segment is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise JwtError("only HS256 tokens are accepted")
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(sig_b64)):
        raise JwtError("signature verification failed")
    if not isinstance(claims, dict):
        raise JwtError("token claims must be a JSON object")
    exp = claims.get("exp")
    if exp is not None:
        if not isinstance(exp, (int, float)):
            raise JwtError("exp claim must be a number")
        if (now if now is not None else time.time()) >= exp:
            raise JwtError("token has expired")
    return claims


def create_user_token(username: str, tenant_id: str, secret: str, *, is_superuser: bool = True,
                      minutes: float = USER_TOKEN_MINUTES) -> str:
    """Account service token: `sub`, `tenant_id`, `is_superuser`, `exp` (30 min)."""
    return encode(
        {"sub": username, "tenant_id": tenant_id, "is_superuser": is_superuser, "exp": int(time.time() + minutes * 60)},
        secret,
    )


def create_terminal_token(terminal: dict[str, Any], secret: str, *, hours: float = TERMINAL_TOKEN_HOURS) -> str:
    """Terminal token (kugelpos.md §2.1): a snapshot of the terminal's state at issue time."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": f"terminal:{terminal['terminal_id']}",
        "tenant_id": terminal["tenant_id"],
        "store_code": terminal["store_code"],
        "terminal_no": terminal["terminal_no"],
        "terminal_id": terminal["terminal_id"],
        "status": terminal.get("status"),
        "token_type": "terminal",
        "iss": TERMINAL_ISSUER,
        "iat": now,
        "exp": now + int(hours * 3600),
    }
    for key in ("business_date", "open_counter", "business_counter", "staff_id", "staff_name"):
        if terminal.get(key) is not None:
            claims[key] = terminal[key]
    return encode(claims, secret)


def create_service_token(service: str, tenant_id: str, secret: str, *, minutes: float = SERVICE_TOKEN_MINUTES) -> str:
    """Service-to-service token used on delivery-status callbacks."""
    return encode(
        {
            "sub": f"service:{service}",
            "tenant_id": tenant_id,
            "service": service,
            "is_service_account": True,
            "is_superuser": False,
            "exp": int(time.time() + minutes * 60),
        },
        secret,
    )
