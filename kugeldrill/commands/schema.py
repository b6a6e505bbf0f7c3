"""`kugeldrill schema scenario|target`: the JSON Schema of scenario or target files, on stdout.

Generated from the models `kugeldrill validate` checks with, so an editor that reads it
(VS Code's YAML extension, JetBrains IDEs, any yaml-language-server client) completes
field names and flags mistakes while you type. Save it and point the editor at it, e.g. a
first line `# yaml-language-server: $schema=.kugeldrill/scenario.schema.json` in each file;
docs/scenarios.md shows the editor settings.

examples:
  kugeldrill schema scenario > .kugeldrill/scenario.schema.json
  kugeldrill schema target > .kugeldrill/target.schema.json
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("schema", help="print the JSON Schema of scenario or target files (for editors)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("scenario", "target"), help="which file's schema")
    p.set_defaults(func=schema_command)


def schema_command(args: argparse.Namespace) -> int:
    from kugeldrill.schema import json_schema

    print(json.dumps(json_schema(args.kind), indent=2))
    return 0
