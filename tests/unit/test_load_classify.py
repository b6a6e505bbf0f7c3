"""The per-step outcome rule (Jepsen): fail = definitely not applied, info = unknown."""

from __future__ import annotations

import errno
import socket

import pytest

import subprocess
import sys

from kugeldrill.locustfiles.api import classify, tender_for


def test_outcome_rules_do_not_import_locust() -> None:
    """Locust monkey-patches whatever imports it; the rules must be testable without it."""
    code = "import sys, locustfiles.api, kugeldrill.ground.history, kugeldrill.locustfiles.provision; print('locust' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_success_is_no_error() -> None:
    assert classify(200, None, effecting=True, step="bill") is None
    assert classify(201, None, effecting=False, step="create") is None


@pytest.mark.parametrize("effecting", [True, False])
def test_refused_connection_is_fail_even_on_the_effecting_call(effecting: bool) -> None:
    err = classify(0, ConnectionRefusedError(errno.ECONNREFUSED, "refused"), effecting=effecting, step="bill")
    assert err is not None and err.outcome == "fail" and "refused" in err.error


@pytest.mark.parametrize("exc", [socket.timeout("timed out"), ConnectionResetError(104, "reset"),
                                 ConnectionError("closed")])
def test_unknown_transport_errors_are_info_only_on_the_effecting_call(exc: Exception) -> None:
    assert classify(0, exc, effecting=True, step="bill").outcome == "info"
    assert classify(0, exc, effecting=False, step="create").outcome == "fail"


def test_status_codes() -> None:
    assert classify(400, None, effecting=True, step="bill").outcome == "fail"
    assert classify(406, None, effecting=True, step="bill", message="balance").error == "bill: HTTP 406 balance"
    assert classify(500, None, effecting=True, step="bill").outcome == "info"
    assert classify(503, None, effecting=False, step="subtotal").outcome == "fail"


def test_tender_always_gives_change() -> None:
    assert tender_for(330) == 1000
    assert tender_for(1000) == 2000
    assert tender_for(0) == 1000


def test_wrapped_errors_are_unwrapped() -> None:
    """geventhttpclient wraps a POST's timeout in RetriesExceeded(original=...)."""

    class RetriesExceeded(ConnectionError):
        def __init__(self, url: str, n: int, original: BaseException | None = None) -> None:
            super().__init__(url, n)
            self.original = original

    err = classify(0, RetriesExceeded("u", 0, original=socket.timeout("timed out")), effecting=True, step="bill")
    assert err is not None and err.outcome == "info" and err.error == "bill: TimeoutError: timed out"
    refused = RetriesExceeded("u", 0, original=ConnectionRefusedError(errno.ECONNREFUSED, "x"))
    assert classify(0, refused, effecting=True, step="bill").outcome == "fail"
