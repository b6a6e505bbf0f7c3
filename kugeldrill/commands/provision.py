"""`kugeldrill provision`: create tenant, store, terminals, staff, items and payments.

The services are named by `--urls` (app=url pairs, or a base URL implying Kugelpos' ports)
or by the embedded stand-in's `--state-dir` (as given to `kugeldrill stack up`, or its
stack.json); the result is `<out>/provision.json`, where a drill's run folder keeps it.
A drill provisions by itself; this command is for load you run with Locust by hand.

examples:
  kugeldrill provision --state-dir .kugeldrill --out runs/mine
  kugeldrill provision --urls http://127.0.0.1 --out runs/mine
"""

from __future__ import annotations

import argparse
from pathlib import Path
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="create what a sale needs (tenant, store, terminals, staff, items, payments) and write provision.json",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--urls", help="app=url pairs (account=http://127.0.0.1:8000,terminal=...) or a base URL "
                       "such as http://127.0.0.1 (Kugelpos ports 8000-8006)")
    where.add_argument("--state-dir", type=Path, metavar="DIR",
                       help="the embedded stand-in's state dir (as given to 'kugeldrill stack up'), or its stack.json")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="the run folder provision.json is written to (re-used on re-runs)")
    parser.add_argument("--tenant", dest="tenant_id", help="tenant id (default: the earlier provision.json's, "
                        "else a random T####)")
    parser.add_argument("--store", dest="store_code", default="5678")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--cart-terminals", type=int, default=8)
    parser.add_argument("--cash-terminals", type=int, default=2)
    parser.add_argument("--openclose-terminals", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP call")
    parser.add_argument("--allow-host", action="append", default=[], help="non-loopback host allowed as target")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kugeldrill.locustfiles.provision import ProvisionError, ProvisionOptions, parse_urls, provision
    from kugeldrill.stack.embedded import Stack

    for name in ("items", "cart_terminals", "cash_terminals", "openclose_terminals"):
        if getattr(args, name) < 0:
            raise ProvisionError(f"--{name.replace('_', '-')} must be >= 0")
    if args.items < 1 or args.cart_terminals < 1:
        raise ProvisionError("a sale needs --items >= 1 and --cart-terminals >= 1")
    urls = parse_urls(args.urls) if args.urls else Stack.from_state_file(args.state_dir).service_urls()
    opts = ProvisionOptions(
        tenant_id=args.tenant_id, store_code=args.store_code, username=args.username, password=args.password,
        items=args.items, cart_terminals=args.cart_terminals, cash_terminals=args.cash_terminals,
        openclose_terminals=args.openclose_terminals, timeout=args.timeout, allow_hosts=tuple(args.allow_host),
    )
    result = provision(urls, args.out, opts)
    counts = {pool: len(terms) for pool, terms in result["terminals"].items()}
    print(json.dumps({"provision": f"{args.out}/provision.json", "tenant_id": result["tenant_id"],
                      "store_code": result["store_code"], "terminals": counts, "items": len(result["items"])}))
    return 0
