"""Kugelpos' response envelope, field-name convention and error shapes.

A client written for Kugelpos reads `data.cartId`, `success`, `code` and `message` from
every answer, and sends snake_case or lowerCamelCase as it likes. Every stand-in route
therefore uses `ApiModel` for its bodies (accepts both spellings, answers in
lowerCamelCase) and returns through `ok()` / raises `ApiError`, so the envelope is
produced in one place, in Kugelpos' two spellings (kugel_common's ApiResponse):

* a success is serialised by alias: `{success, code, message, userError: null, data,
  metadata, operation}`;
* an error is `model_dump()`-ed by Kugelpos' exception handlers, so its keys are
  snake_case: `{success: false, code, message, user_error: {code, message}, data,
  metadata: null, operation}` where `operation` names the handler that answered and
  `data` is null (an application error) or the exception's text (an HTTP, validation or
  unexpected error, e.g. `"401: Invalid API key"`).
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Two-digit service prefixes of the stand-in's user error codes (`userError.code`).
# Kugelpos composes six-digit codes as <service><kind><detail>; only the report's
# 412101 (terminal not closed) is cited in docs/kugelpos-facts.md §5.7, so the other numbers are ours.
SERVICE_PREFIX = {
    "account": "10",
    "terminal": "20",
    "master-data": "30",
    "cart": "40",
    "report": "41",
    "journal": "42",
    "stock": "43",
}

# Kind digits, per HTTP status the stand-in answers with.
_KIND = {400: "01", 401: "02", 403: "03", 404: "04", 406: "06", 409: "09", 422: "22", 500: "99", 503: "98"}


class ApiModel(BaseModel):
    """Body model: accepts snake_case or lowerCamelCase, dumps lowerCamelCase (by alias)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class AnswerModel(BaseModel):
    """An answer document as Kugelpos declares it: its fields exactly, dumped by alias
    (lowerCamelCase). Built from the service's own documents by a transformer, so an
    answer never carries a field the real one lacks."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def camelize(value: Any) -> Any:
    """Recursively rename snake_case dict keys to lowerCamelCase (for plain-dict answers)."""
    if isinstance(value, dict):
        return {to_camel(k) if isinstance(k, str) else k: camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


#: Kugelpos' exception handlers (kugel_common/exceptions/exception_handlers.py), by what they catch.
APP_ERROR = "app_exception_handler"  # an AppException: data null
HTTP_ERROR = "http_exception_handler"  # an HTTPException (auth): data "<status>: <detail>"
VALIDATION_ERROR = "validation_error_handler"  # a request that does not validate: data = the error text
UNEXPECTED_ERROR = "exception_handler"  # anything else: data = the error text


def envelope(
    data: Any = None,
    *,
    code: int = 200,
    message: str = "",
    metadata: dict[str, Any] | None = None,
    operation: str | None = "",
) -> dict[str, Any]:
    """A success answer's document (Kugelpos' ApiResponse dumped by alias)."""
    if isinstance(data, BaseModel):
        data = data.model_dump(by_alias=True, mode="json")
    return {
        "success": True,
        "code": code,
        "message": message,
        "userError": None,
        "data": jsonable_encoder(data),
        "metadata": jsonable_encoder(metadata),
        "operation": operation,
    }


def error_envelope(code: int, message: str, user_code: str, *, handler: str = APP_ERROR,
                   data: str | None = None) -> dict[str, Any]:
    """An error answer's document (Kugelpos' ApiResponse `model_dump()`-ed: snake_case keys)."""
    return {
        "success": False,
        "code": code,
        "message": message,
        "user_error": {"code": user_code, "message": message},
        "data": data,
        "metadata": None,
        "operation": handler,
    }


def ok(
    data: Any = None,
    *,
    status_code: int = 200,
    message: str = "",
    metadata: dict[str, Any] | None = None,
    operation: str | None = "",
    headers: dict[str, str] | None = None,
    camel: bool = True,
) -> JSONResponse:
    """A success answer. Plain dicts are camelised unless `camel=False` (Kugelpos' snake_case
    exceptions: delivery-status answers and the terminal token)."""
    if camel and not isinstance(data, BaseModel):
        data = camelize(data)
    body = envelope(data, code=status_code, message=message, metadata=metadata, operation=operation)
    return JSONResponse(body, status_code=status_code, headers=headers)


class ApiError(Exception):
    """A failure answered with the error envelope and a specific message.

    `handler` says which of Kugelpos' exception handlers would have answered it: an
    application error (the default) or an HTTP error (authentication, `unauthorized()`)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        service: str = "",
        detail_code: str = "01",
        user_code: str | None = None,
        handler: str = APP_ERROR,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.service = service
        self.detail_code = detail_code
        self.explicit_code = user_code
        self.user_code = user_code or error_code(service, status_code, detail_code)
        self.handler = handler
        self.headers = headers

    def response(self, *, service: str = "") -> JSONResponse:
        """Render as Kugelpos renders its exceptions (HTTP status == `code`)."""
        if self.explicit_code or self.service or not service:
            code = self.user_code
        else:  # raised without a service name: the app that answers supplies the prefix
            code = error_code(service, self.status_code, self.detail_code)
        data = f"{self.status_code}: {self.message}" if self.handler != APP_ERROR else None
        body = error_envelope(self.status_code, self.message, code, handler=self.handler, data=data)
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


def error_code(service: str, status_code: int, detail: str = "01") -> str:
    """Six-digit user error code: service prefix + kind of failure + detail."""
    return f"{SERVICE_PREFIX.get(service, '90')}{_KIND.get(status_code, '00')}{detail}"


def bad_request(message: str, **kw: Any) -> ApiError:
    return ApiError(400, message, **kw)


def unauthorized(message: str, **kw: Any) -> ApiError:
    """401, raised as Kugelpos' auth dependencies do: an HTTPException."""
    kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
    kw.setdefault("handler", HTTP_ERROR)
    return ApiError(401, message, **kw)


def forbidden(message: str, **kw: Any) -> ApiError:
    return ApiError(403, message, **kw)


def not_found(message: str, **kw: Any) -> ApiError:
    return ApiError(404, message, **kw)


def conflict(message: str, **kw: Any) -> ApiError:
    return ApiError(409, message, **kw)


def internal(message: str, **kw: Any) -> ApiError:
    return ApiError(500, message, **kw)


def snakeize(value: Any) -> Any:
    """Recursively rename lowerCamelCase dict keys to snake_case (reading peers' answers)."""
    from pydantic.alias_generators import to_snake

    if isinstance(value, dict):
        return {to_snake(k) if isinstance(k, str) else k: snakeize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snakeize(v) for v in value]
    return value
