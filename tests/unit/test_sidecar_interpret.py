"""The §2.4 response table, row by row, as a pure function."""

from __future__ import annotations

import pytest

from kugeldrill.stack.sidecar.delivery import Verdict, interpret

S, R, D, N = Verdict.SUCCESS, Verdict.RETRY, Verdict.DROP, Verdict.NOT_FOUND


@pytest.mark.parametrize(
    "status,body,verdict",
    [
        (200, b"", S),
        (204, b"", S),
        (200, b"not json", S),
        (200, b'[{"status":"RETRY"},500]', S),  # kugelpos' tuple bug: a JSON array is SUCCESS
        (200, b'{"status":5}', S),
        (200, b'{"status":"SUCCESS"}', S),
        (200, b'{"status":""}', S),
        (200, b'{"other":1}', S),
        (200, b"null", S),
        (200, b'{"status":"RETRY"}', R),
        (200, b'{"Status":"RETRY"}', R),  # field name matches case-insensitively
        (200, b'{"status":"success"}', R),  # value match is case-sensitive → unknown → retry
        (201, b'{"status":"DROP"}', D),
        (404, b'{"status":"SUCCESS"}', N),
        (400, b"", R),
        (500, b'{"status":"SUCCESS"}', R),
        (302, b"", R),
    ],
)
def test_response_table(status: int, body: bytes, verdict: Verdict):
    assert interpret(status, body).verdict is verdict
