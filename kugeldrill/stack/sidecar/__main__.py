"""`python -m stack.sidecar --app-id cart --dapr-http-port P --app-port Q --resources-path DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.sidecar.runtime import SidecarOptions


def parse_args(argv: list[str] | None = None) -> SidecarOptions:
    parser = argparse.ArgumentParser(prog="python -m stack.sidecar",
                                     description="Dapr-compatible sidecar for the kugeldrill stand-in")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--dapr-http-port", type=int, required=True)
    parser.add_argument("--app-port", type=int, required=True)
    parser.add_argument("--app-host", default="127.0.0.1")
    parser.add_argument("--resources-path", "--components-path", dest="resources_path", type=Path, required=True)
    parser.add_argument("--log-file", type=Path, default=None)
    parser.add_argument("--ack-model", default="1.18", choices=["1.18", "1.16"],
                        help="1.18: failed deliveries are acked (≥1.17); 1.16: they stay pending and are reclaimed")
    parser.add_argument("--block-ms", type=int, default=2000, help="XREADGROUP BLOCK in ms (daprd: forever)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info"])
    ns = parser.parse_args(argv)
    return SidecarOptions(
        app_id=ns.app_id, dapr_http_port=ns.dapr_http_port, app_port=ns.app_port, app_host=ns.app_host,
        resources_path=ns.resources_path, log_file=ns.log_file, ack_model=ns.ack_model, block_ms=ns.block_ms,
        debug=ns.log_level == "debug",
    )


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse_args(argv)
        opts.validate()
        from kugeldrill.stack.sidecar.server import serve

        return serve(opts)
    except DrillError as exc:
        print(f"sidecar: {exc.render()}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
