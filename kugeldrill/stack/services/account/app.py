"""account stand-in: `POST /api/v1/accounts/register` and `POST /api/v1/accounts/token`.

As Kugelpos: register always creates a superuser (an `is_superuser` key is ignored), and
when `tenant_id` is omitted or already taken a random id (uppercase letter + 4 digits)
is generated silently; the token endpoint takes a form (`username`, `password`,
`client_id` = tenant id) and answers plain JSON `{access_token, token_type}`, not the
envelope. Passwords are stored as salted PBKDF2 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import string
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.app import create_service_app, on_shutdown
from kugeldrill.stack.services.common.db import Database, is_unique_violation
from kugeldrill.stack.services.common.envelope import AnswerModel, ApiModel, bad_request, ok, unauthorized
from kugeldrill.stack.services.common.tokens import create_user_token
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.common.timeutil import now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (tenant_id TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    tenant_id TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
    is_superuser INTEGER NOT NULL, created_at REAL NOT NULL, UNIQUE (tenant_id, username));
"""
_ITERATIONS = 2000  # cheap on purpose: the stand-in is a load-test target, not a vault


class RegisterIn(ApiModel):
    username: str
    password: str
    tenant_id: str | None = None


class UserAccountInDB(AnswerModel):
    """Kugelpos' answer to a registration (account/app/api/common/schemas.py): the stored
    account, its password masked."""

    username: str
    password: str = "*****"
    tenant_id: str
    hashed_password: str
    is_superuser: bool = True
    is_active: bool = True
    created_at: str
    updated_at: str | None = None
    last_login: str | None = None


def _hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    return f"{salt.hex()}${digest.hex()}"


def _verify(password: str, stored: str) -> bool:
    salt_hex, _, _digest = stored.partition("$")
    return hmac.compare_digest(_hash(password, bytes.fromhex(salt_hex)), stored)


def _random_tenant() -> str:
    return random.choice(string.ascii_uppercase) + "".join(random.choices(string.digits, k=4))


router = APIRouter(prefix="/api/v1/accounts")


@router.post("/register", status_code=201)
async def register(body: RegisterIn, request: Request) -> JSONResponse:
    config, db = request.app.state.config, request.app.state.db
    if not body.username or not body.password:
        raise bad_request("username and password are required", service=config.name)
    now = time.time()
    hashed = _hash(body.password)

    def insert(conn):  # type: ignore[no-untyped-def]
        tenant = body.tenant_id
        exists = tenant and conn.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant,)).fetchone()
        while not tenant or exists:
            tenant = _random_tenant()
            exists = conn.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant,)).fetchone()
        conn.execute("INSERT INTO tenants VALUES (?, ?)", (tenant, now))
        conn.execute("INSERT INTO accounts VALUES (?, ?, ?, 1, ?)", (tenant, body.username, hashed, now))
        return tenant

    try:
        tenant = await db.write(insert)
    except Exception as exc:
        if is_unique_violation(exc):
            raise bad_request(f"user {body.username} already exists", service=config.name) from exc
        raise
    return ok(UserAccountInDB(username=body.username, tenant_id=tenant, hashed_password=hashed, created_at=now_iso()),
              status_code=201, message="User registration successful", operation="register_super_user")


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    config, db = request.app.state.config, request.app.state.db
    form = await _read_form(request)
    username, password, tenant = form.get("username"), form.get("password"), form.get("client_id")
    if not username or not password:
        raise bad_request("form fields username and password are required (application/x-www-form-urlencoded)",
                          service=config.name)
    if tenant:
        row = await db.fetchone("SELECT * FROM accounts WHERE tenant_id = ? AND username = ?", (tenant, username))
    else:
        row = await db.fetchone("SELECT * FROM accounts WHERE username = ? ORDER BY created_at DESC", (username,))
    if row is None or not _verify(password, row["password_hash"]):
        raise unauthorized("Incorrect username or password", service=config.name)
    access = create_user_token(username, row["tenant_id"], config.secret_key, is_superuser=bool(row["is_superuser"]))
    return JSONResponse({"access_token": access, "token_type": "bearer"})


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    app.state.db = db = Database.for_service(config.data_dir, config.name, SCHEMA)
    on_shutdown(app, db.close)
    app.include_router(router)
    return app


async def _read_form(request: Request) -> dict[str, str]:
    """Form fields without python-multipart: urlencoded (Kugelpos' OAuth2 form) or JSON."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise bad_request(f"body is not valid JSON: {exc}") from exc
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise bad_request("form body is not UTF-8") from exc
    return {k: v[0] for k, v in parsed.items()}
