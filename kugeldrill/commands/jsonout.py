"""One convention for JSON output across commands (pytest's and Locust's habit):
`--json` prints JSON to stdout instead of the text, `--json-file PATH` writes it to a file
(and the text still goes to the terminal). No sub-command of its own (no `register`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.jsonfile import write_json_atomic


def add_json_options(parser: argparse.ArgumentParser, what: str, *, file: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} to stdout instead of text")
    if file:
        parser.add_argument("--json-file", type=Path, metavar="PATH", help=f"also write {what} to PATH")


def emit_json(args: argparse.Namespace, data: Any) -> bool:
    """Write `--json-file`, print `--json`; True when stdout got the JSON (print no text then)."""
    path = getattr(args, "json_file", None)
    if path is not None:
        try:
            write_json_atomic(Path(path), data)
        except OSError as exc:
            raise ConfigError(f"--json-file {path}: cannot write: {exc.strerror or exc}") from None
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
        return True
    return False
