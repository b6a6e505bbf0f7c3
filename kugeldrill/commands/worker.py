"""`kugeldrill worker --master HOST:PORT [--processes N]`: a Locust worker for a drill's master.

Run it on any machine with kugeldrill installed, after (or before: it keeps trying for a
while) `kugeldrill run SCENARIO --master --expect-workers N` started the drill. The worker
needs no file of the run: the master sends it the provision data (tenant, terminals and
their API keys) and the load settings, leases it terminals, and receives its history, so
that the drill judges every operation wherever it ran. Traffic goes to the master and to
the service URLs the master's target allows. The channel is Locust's own (unencrypted
TCP): keep the master's port on a network you trust.

The command becomes the Locust worker process (exec), so signals reach Locust directly:
Ctrl-C or SIGTERM stop its users and it still sends the rest of its history. When the
drill ends the worker prints how many operations it ran and whether the master
acknowledged all of its history, and exits with Locust's exit code.

examples:
  kugeldrill worker --master 10.0.0.5:5557
  kugeldrill worker --master 10.0.0.5 --processes 4  # four worker processes on this host
"""

from __future__ import annotations

import argparse
import os
import sys

from kugeldrill.ground.errors import ConfigError, DrillError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("worker", help="run a Locust worker for a drill started with 'kugeldrill run --master'",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--master", required=True, metavar="HOST:PORT", help="the drill's Locust master (port 5557 if omitted)")
    p.add_argument("--processes", type=int, default=0, metavar="N",
                   help="Locust worker processes to fork on this machine (default: one)")
    p.add_argument("--loglevel", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="Locust's log level")
    p.set_defaults(func=worker_command)


def parse_master(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or HOST (Locust's port 5557)."""
    host, port = text.strip(), "5557"
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ConfigError(f"--master {text!r}: an IPv6 address needs its closing ']'")
        host, rest = host[1:end], host[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"--master {text!r}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host:
        raise ConfigError(f"--master {text!r}: no host", hint="e.g. --master 10.0.0.5:5557")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--master {text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def worker_command(args: argparse.Namespace) -> int:
    from kugeldrill.locustfiles.command import worker_command as locust_worker

    host, port = parse_master(args.master)
    if not 0 <= args.processes <= 64:
        raise ConfigError(f"--processes must be between 0 and 64, got {args.processes}")
    cmd = locust_worker(host, port, processes=args.processes, extra_args=["--loglevel", args.loglevel])
    print(f"kugeldrill worker: joining the Locust master at {host}:{port}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    try:
        os.execve(cmd.argv[0], cmd.argv, cmd.env)
    except OSError as exc:
        raise DrillError(f"cannot start the Locust worker ({cmd.argv[0]} -m locust): {exc}") from None
    return 2  # not reached: execve replaced this process
