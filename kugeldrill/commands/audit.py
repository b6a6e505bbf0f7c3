"""`kugeldrill audit DAPR_COMPONENTS_DIR`: what real Dapr will do with the component files.

Reports what real Dapr does with the files: ignored metadata (databaseIndex, streamName),
subscribing apps sharing a consumerID, duration units, no retry/dead-letter under the >=1.17
ack model, unpinned daprd images.

examples:
  kugeldrill audit ../shared/kugelpos-backend/services/dapr/components
  kugeldrill audit ../shared/kugelpos-backend/services/dapr/components --json --dapr-version 1.16

Exit code: 0 nothing found, 1 warnings or errors, 2 the folder cannot be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kugeldrill.audit.run import audit_directory, exit_code, render_json, render_text
from kugeldrill.commands.jsonout import add_json_options, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "audit",
        help="audit a folder of Dapr components (ignored fields, shared consumer groups, units, lost deliveries)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="the components folder (e.g. services/dapr/components)")
    add_json_options(parser, "the findings as JSON")
    parser.add_argument("--dapr-version", default="1.18", help="the daprd version to judge against (default 1.18)")
    parser.add_argument("--compose", type=Path, action="append", default=None,
                        help="compose file(s) to scan for daprd images (default: docker-compose*.yaml beside/above)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    findings = audit_directory(args.folder, dapr_version=args.dapr_version, compose_files=args.compose)
    if not emit_json(args, json.loads(render_json(findings, args.folder))):
        print(render_text(findings, args.folder))
    return exit_code(findings)
