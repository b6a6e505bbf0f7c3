"""terminal stand-in (docs/kugelpos-facts.md §2, §4): tenants, stores, terminals, the terminal
lifecycle (sign-in/out, open, cash-in/out, close), terminal JWTs and the cash and
open/close log publications with their delivery outbox.

Faithful to Kugelpos: paths, bodies, answers (terminal/schemas.py), status codes,
X-New-Token on sign-in/sign-out/open/close, open counters, close counts, the
initial-amount cash log without `event_type`, the close log carrying the real API key,
publish-after-commit with failures swallowed. The app assembles the publisher (database
with the outbox, Dapr client, republish job), the shared `TerminalService` (context.py)
and one router per resource: tenants and stores (tenants.py), terminals and their token
(terminals.py), the lifecycle (lifecycle.py). Differences: stack/services/README.md.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from kugeldrill.stack.services.common.app import create_service_app
from kugeldrill.stack.services.common.kugel_logging import TERMINAL_SERVICE
from kugeldrill.stack.services.common.publisher import TERMINALLOG, install_publisher
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.terminal import lifecycle, model, tenants, terminals
from kugeldrill.stack.services.terminal.context import TerminalService

log = logging.getLogger(TERMINAL_SERVICE)


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    db, events = install_publisher(app, config, model.SCHEMA, log, TERMINALLOG)
    service = TerminalService(app, db, events, log)
    app.state.terminal = service
    app.state.terminal_lookup = service.info_by_key
    app.include_router(tenants.router)
    app.include_router(terminals.router)
    app.include_router(lifecycle.router)
    return app
