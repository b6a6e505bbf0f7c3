"""Kugelpos' three HS256 token kinds (user, terminal, service), signed and checked with PyJWT.

Kugelpos signs every token with one shared SECRET_KEY (HS256, python-jose there); the stand-in
only needs the tokens to round-trip and carry Kugelpos' claims. PyJWT does the signing and the
checks (signature, algorithm, expiry); JwtError says in one line why a token was refused.
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt

USER_TOKEN_MINUTES = 30
TERMINAL_TOKEN_HOURS = 24
SERVICE_TOKEN_MINUTES = 5
TERMINAL_ISSUER = "terminal-service"
ALGORITHM = "HS256"


class JwtError(Exception):
    """The token is malformed, badly signed, of the wrong algorithm, or expired."""


def encode(claims: dict[str, Any], secret: str) -> str:
    """Sign `claims` as a compact HS256 JWT."""
    return pyjwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(token: str, secret: str) -> dict[str, Any]:
    """Verify signature, algorithm and `exp`; return the claims or raise JwtError saying why."""
    try:
        return pyjwt.decode(token, secret, algorithms=[ALGORITHM], options={"verify_aud": False, "verify_iat": False})
    except pyjwt.ExpiredSignatureError:
        raise JwtError("token has expired") from None
    except pyjwt.InvalidSignatureError:
        raise JwtError("signature verification failed") from None
    except pyjwt.InvalidAlgorithmError:
        raise JwtError(f"only {ALGORITHM} tokens are accepted") from None
    except pyjwt.InvalidTokenError as exc:
        raise JwtError(f"malformed token: {exc}") from None


def create_user_token(username: str, tenant_id: str, secret: str, *, is_superuser: bool = True,
                      minutes: float = USER_TOKEN_MINUTES) -> str:
    """Account service token: `sub`, `tenant_id`, `is_superuser`, `exp` (30 min)."""
    return encode(
        {"sub": username, "tenant_id": tenant_id, "is_superuser": is_superuser, "exp": int(time.time() + minutes * 60)},
        secret,
    )


def create_terminal_token(terminal: dict[str, Any], secret: str, *, hours: float = TERMINAL_TOKEN_HOURS) -> str:
    """Terminal token (docs/kugelpos-facts.md §2.1): a snapshot of the terminal's state at issue time."""
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
