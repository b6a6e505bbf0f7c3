"""`kugeldrill audit DAPR_COMPONENTS_DIR`: what real Dapr will do with the component files."""

from __future__ import annotations

import argparse
from pathlib import Path

from kugeldrill.audit.run import audit_directory, exit_code, render_json, render_text


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "audit",
        help="audit a folder of Dapr components (ignored fields, shared consumer groups, units, lost deliveries)",
        description="Reports what real Dapr does with the files: ignored metadata (databaseIndex, streamName), "
        "subscribing apps sharing a consumerID, duration units, no retry/dead-letter under the >=1.17 ack "
        "model, unpinned daprd images. Exit 1 on warnings or errors.",
    )
    parser.add_argument("folder", type=Path, help="the components folder (e.g. services/dapr/components)")
    parser.add_argument("--json", action="store_true", help="print JSON (for CI)")
    parser.add_argument("--dapr-version", default="1.18", help="the daprd version to judge against (default 1.18)")
    parser.add_argument("--compose", type=Path, action="append", default=None,
                        help="compose file(s) to scan for daprd images (default: docker-compose*.yaml beside/above)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    findings = audit_directory(args.folder, dapr_version=args.dapr_version, compose_files=args.compose)
    print(render_json(findings, args.folder) if args.json else render_text(findings, args.folder))
    return exit_code(findings)
