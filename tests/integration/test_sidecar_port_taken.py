"""A sidecar whose Dapr HTTP port is taken exits at once with a clear line (exit code 2)."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_taken_port_ends_the_process(tmp_path, redis_server):
    from kugeldrill.stack.components import render_components

    components = render_components(tmp_path / "c", redis_host=f"127.0.0.1:{redis_server.port}", app_id="cart")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "cart", "--dapr-http-port", str(port),
             "--app-port", "1", "--resources-path", str(components)],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        holder.close()
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_bound_port_is_taken_at_once() -> None:
    """The sidecar's socket listens as soon as it is bound: a second bind of that port (a
    sidecar of another stack starting at the same time) fails instead of sharing it."""
    from kugeldrill.stack.sidecar.server import _bind

    first = _bind("127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        second = socket.socket()
        second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            try:
                second.bind(("127.0.0.1", port))
            except OSError:
                return  # taken, as it must be
            raise AssertionError(f"port {port} could be bound twice")
        finally:
            second.close()
    finally:
        first.close()
