"""A sidecar whose Dapr HTTP port is taken exits at once with a clear line (exit code 2)."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_taken_port_ends_the_process(tmp_path, redis_server):
    from stack.components import render_components

    components = render_components(tmp_path / "c", redis_host=f"127.0.0.1:{redis_server.port}", app_id="cart")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "stack.sidecar", "--app-id", "cart", "--dapr-http-port", str(port),
             "--app-port", "1", "--resources-path", str(components)],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        holder.close()
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
