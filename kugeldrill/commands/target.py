"""`kugeldrill target check|from-stack|compose-overlay`: target files for real deployments.

`check FILE` first checks the file completely (schema, loopback rule, process command
placeholders: every problem with its file:line), then asks every endpoint, link and
observation source whether it answers. `from-stack` writes a target file for a running
embedded stand-in; `compose-overlay` generates the Compose overlay that puts Toxiproxy on
every link of Kugelpos' own stack (deploy/compose/README.md).

examples:
  kugeldrill target check targets/kugelpos-compose.yaml
  kugeldrill target from-stack --state-dir .kugeldrill --target-file runs/standin-target.yaml
  kugeldrill target compose-overlay --components ../shared/kugelpos-backend/services/dapr/components --overlay-dir runs/overlay

Exit code (check): 0 ready, 1 the file has problems, 2 something it names does not answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kugeldrill.deploy.compose_overlay import build_overlay
from kugeldrill.deploy.from_stack import target_from_stack
from kugeldrill.deploy.target_check import all_fatal_ok, check_target, render
from kugeldrill.stack.launch.state import read_state
from kugeldrill.target import check_target_file, dump_target
from kugeldrill.yamlfile import errors_of


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("target", help="target files for real deployments: check, derive, overlay",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tsub = parser.add_subparsers(dest="target_command", metavar="ACTION", required=True)

    check = tsub.add_parser("check", help="check a target file (every problem with file:line), then verify every "
                                          "endpoint, link and observation source it names")
    check.add_argument("file", type=Path)
    check.add_argument("--timeout", type=float, default=5.0, help="seconds per probe (default 5)")
    check.set_defaults(func=_check)

    derive = tsub.add_parser("from-stack", help="write a target file for a running embedded stand-in")
    derive.add_argument("--state-dir", type=Path, default=Path(".kugeldrill"), metavar="DIR",
                        help="the stand-in's state dir (as given to 'kugeldrill stack up'), or its stack.json")
    derive.add_argument("--target-file", type=Path, default=None, metavar="PATH",
                        help="the target file to write (default: stdout)")
    derive.set_defaults(func=_from_stack)

    overlay = tsub.add_parser("compose-overlay", help="generate the Compose overlay inserting Toxiproxy into Kugelpos")
    overlay.add_argument("--components", type=Path, required=True,
                         help="Kugelpos' services/dapr/components folder")
    overlay.add_argument("--overlay-dir", type=Path, default=None, metavar="DIR",
                         help="where to write the overlay (default: the services/ folder two levels above --components)")
    overlay.add_argument("--daprd-image", default=None, help="also pin the sidecars' image, e.g. daprio/daprd:1.18.3")
    overlay.set_defaults(func=_overlay)


def _check(args: argparse.Namespace) -> int:
    target, problems = check_target_file(args.file)
    for problem in problems:
        print(problem.render())
    if target is None or errors_of(problems):
        count = len(errors_of(problems))
        print(f"target file {args.file}: INVALID ({count} problem{'s' if count != 1 else ''}); nothing was probed")
        return 1
    items = check_target(target, timeout=args.timeout)
    print(render(items))
    ok = all_fatal_ok(items)
    print(f"target {target.name}: {'ready' if ok else 'NOT ready (see MISSING lines)'}")
    return 0 if ok else 2


def _from_stack(args: argparse.Namespace) -> int:
    text = dump_target(target_from_stack(read_state(args.state_dir)))
    if args.target_file:
        args.target_file.write_text(text)
        print(f"wrote {args.target_file}")
    else:
        print(text, end="")
    return 0


def _overlay(args: argparse.Namespace) -> int:
    out = args.overlay_dir or args.components.resolve().parent.parent
    written = build_overlay(args.components, daprd_image=args.daprd_image).write(out)
    for path in written:
        print(f"wrote {path}")
    return 0
