"""Kugelpos' plain-text log format, so log-based adapters work on the stand-in too.

Kugelpos (services/*/app/logging.conf) logs `%(asctime)s [%(levelname)s] %(name)s: %(message)s`
with module-path logger names; the checkers' adapters for a real deployment parse exactly
these lines (e.g. `Circuit breaker OPEN after 3 failures`). The stand-in writes the same
lines, under the same logger names, to `ServiceConfig.log_file`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

KUGEL_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"

# Kugelpos logger names (module paths in the real code).
DAPR_HELPER = "kugel_common.utils.dapr_client_helper"
HTTP_HELPER = "kugel_common.utils.http_client_helper"
STATE_STORE_MANAGER = "app.utils.state_store_manager"
TRAN_API = "app.api.v1.tran"  # report/journal pub/sub handlers
STOCK_API = "app.api.v1.stock"  # stock pub/sub handler
STOCK_SERVICE = "app.services.stock_service"
LOG_SERVICE = "app.services.log_service"
TRAN_SERVICE = "app.services.tran_service"
TERMINAL_SERVICE = "app.services.terminal_service"

_HANDLER_ATTR = "_kugeldrill_handler"


class _UtcFormatter(logging.Formatter):
    """Kugelpos' containers run in UTC; asctime stays `YYYY-MM-DD HH:MM:SS,mmm`."""

    converter = time.gmtime


def setup_kugel_logging(log_file: str | Path | None, *, level: int = logging.INFO) -> logging.Handler:
    """Send every logger to `log_file` (stderr if None) in Kugelpos' format.

    Idempotent: a second call replaces the handler installed by the first, so tests that
    build several apps in one process do not write each line several times.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_ATTR, False):
            root.removeHandler(handler)
            handler.close()
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter(KUGEL_FORMAT))
    setattr(handler, _HANDLER_ATTR, True)
    root.addHandler(handler)
    root.setLevel(level)
    # As in Kugelpos' logging.conf: transport libraries only at WARNING.
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def kugel_logger(name: str) -> logging.Logger:
    """A logger under a Kugelpos module name (use the constants above)."""
    return logging.getLogger(name)
