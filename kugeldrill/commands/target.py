"""`kugeldrill target check|from-stack|compose-overlay`: real deployments."""

from __future__ import annotations

import argparse
from pathlib import Path

from kugeldrill.deploy.compose_overlay import build_overlay
from kugeldrill.deploy.from_stack import target_from_stack
from kugeldrill.deploy.target_check import all_fatal_ok, check_target, render
from kugeldrill.stack.launch.state import read_state
from kugeldrill.target import dump_target, load_target


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("target", help="target files for real deployments: check, derive, overlay")
    tsub = parser.add_subparsers(dest="target_command", metavar="ACTION", required=True)

    check = tsub.add_parser("check", help="verify every endpoint, link and observation source of a target file")
    check.add_argument("file", type=Path)
    check.add_argument("--timeout", type=float, default=5.0, help="seconds per probe (default 5)")
    check.set_defaults(func=_check)

    derive = tsub.add_parser("from-stack", help="write a target file for a running embedded stand-in")
    derive.add_argument("--state-dir", type=Path, default=Path(".kugeldrill"), metavar="DIR",
                        help="the stand-in's state dir (as given to 'kugeldrill stack up'), or its stack.json")
    derive.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    derive.set_defaults(func=_from_stack)

    overlay = tsub.add_parser("compose-overlay", help="generate the Compose overlay inserting Toxiproxy into Kugelpos")
    overlay.add_argument("--components", type=Path, required=True,
                         help="Kugelpos' services/dapr/components folder")
    overlay.add_argument("--out", type=Path, default=None,
                         help="where to write (default: the services/ folder two levels above --components)")
    overlay.add_argument("--daprd-image", default=None, help="also pin the sidecars' image, e.g. daprio/daprd:1.18.3")
    overlay.set_defaults(func=_overlay)


def _check(args: argparse.Namespace) -> int:
    target = load_target(args.file)
    items = check_target(target, timeout=args.timeout)
    print(render(items))
    ok = all_fatal_ok(items)
    print(f"target {target.name}: {'ready' if ok else 'NOT ready (see MISSING lines)'}")
    return 0 if ok else 2


def _from_stack(args: argparse.Namespace) -> int:
    text = dump_target(target_from_stack(read_state(args.state_dir)))
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def _overlay(args: argparse.Namespace) -> int:
    out = args.out or args.components.resolve().parent.parent
    written = build_overlay(args.components, daprd_image=args.daprd_image).write(out)
    for path in written:
        print(f"wrote {path}")
    return 0
