"""Dapr's error bodies (dapr.md §1.1): `{"errorCode", "message"}` and the rich form with
`details` (ErrorInfo, ResourceInfo). Checkers key on status + errorCode, so these must match.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


def legacy(status: int, code: str, message: str) -> Response:
    """`messages.APIError`: errorCode + message only."""
    return _json(status, {"errorCode": code, "message": message})


def rich(
    status: int,
    code: str,
    message: str,
    *,
    reason: str,
    metadata: dict[str, str] | None = None,
    resource: tuple[str, str] | None = None,
    violations: list[dict[str, str]] | None = None,
) -> Response:
    """`kit/errors.Error`: details in builder order (ResourceInfo, then ErrorInfo)."""
    details: list[dict[str, Any]] = []
    if resource is not None:
        details.append({"@type": _RESOURCE_INFO, "resource_type": resource[0], "resource_name": resource[1],
                        "owner": "", "description": ""})
    details.append({"@type": _ERROR_INFO, "reason": reason, "domain": "dapr.io", "metadata": metadata or {}})
    if violations:
        details.append({"@type": _BAD_REQUEST, "field_violations": violations})
    return _json(status, {"errorCode": code, "message": message, "details": details})
