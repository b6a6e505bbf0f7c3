"""`python -m stack.services --config FILE.json`: run one stand-in service.

The launcher writes a ServiceConfig JSON per service and starts this module; the service
package is `stack.services.<name with '-' replaced by '_'>` and must offer
`app.create_app(config) -> FastAPI`. uvicorn serves it on `config.host:config.port` and
handles SIGTERM/SIGINT by finishing in-flight requests, stopping background jobs, and
exiting 0. Bad configuration ends with a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

def _fail(message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    print(f"kugeldrill.stack.services: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_config(path: str) -> Any:
    """Read and validate the ServiceConfig file; every problem becomes a clear message."""
    from kugeldrill.stack.services.common.settings import ServiceConfig

    file = Path(path)
    if not file.is_file():
        _fail(f"config file {path} does not exist")
    try:
        return ServiceConfig.load(file)
    except json.JSONDecodeError as exc:
        _fail(f"config file {path} is not valid JSON: {exc}")
    except (TypeError, ValueError) as exc:
        _fail(f"config file {path} is not a valid ServiceConfig: {exc}")


def setup_logging(config: Any) -> None:
    """Kugelpos' plain-text log format, to `config.log_file` (or stderr)."""
    from kugeldrill.stack.services.common.kugel_logging import setup_kugel_logging

    setup_kugel_logging(config.log_file)


def build_app(config: Any) -> Any:
    """Import `stack.services.<pkg>.app` and call its `create_app(config)`."""
    package = config.name.replace("-", "_")
    module_name = f"kugeldrill.stack.services.{package}.app"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            _fail(f"no stand-in service named {config.name!r} (module {module_name} not found)")
        raise
    factory = getattr(module, "create_app", None)
    if factory is None:
        _fail(f"{module_name} has no create_app(config)")
    return factory(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.services", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="ServiceConfig JSON written by the launcher")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    from kugeldrill.ground.errors import DrillError
    from kugeldrill.ground.netguard import require_loopback

    try:
        require_loopback(config.host, what="service listen host")
    except DrillError as exc:
        _fail(exc.render())
    setup_logging(config)
    app = build_app(config)

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn handles SIGTERM/SIGINT (graceful stop, lifespan shutdown), then restores the
    # previous handlers and re-raises the signal; these handlers turn that into exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    server.run()
    return 0 if server.started else 1


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
