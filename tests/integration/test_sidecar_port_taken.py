"""A sidecar whose Dapr HTTP port is taken exits at once with a clear line, on both sidecars
(the launcher retries a start on new ports when a part's log says "address already in use");
the exit code and the bind helper are the stand-in's internals."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_taken_port_ends_either_sidecar_with_the_line_the_launcher_retries_on(tmp_path, redis_server, sidecar_kind):
    from kugeldrill.ground.ports import free_ports
    from kugeldrill.stack.components import render_components
    from kugeldrill.stack.launch.failures import log_says_port_taken
    from kugeldrill.stack.launch.plan import SidecarPorts
    from kugeldrill.stack.launch.sidecars import SidecarSpec, StandinSidecar, find_daprd
    from kugeldrill.stack.launch.single import start_sidecar_process

    components = render_components(tmp_path / "c", redis_host=f"127.0.0.1:{redis_server.port}", app_id="cart")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    kind = find_daprd("1.18") if sidecar_kind == "daprd" else StandinSidecar()
    spec = SidecarSpec(app_id="cart", ports=SidecarPorts(port, *free_ports(3)), app_address="127.0.0.1", app_port=1,
                       resources_dir=components, log_file=tmp_path / "sidecar.log", config_dir=tmp_path / "config")
    sc = start_sidecar_process(kind, spec)
    try:
        assert sc.managed.proc.wait(timeout=60) != 0
    finally:
        sc.kill()
        holder.close()
    assert log_says_port_taken(spec.log_file), spec.log_file.read_text()[-2000:]


def test_taken_port_ends_the_standin_with_exit_code_2(tmp_path, redis_server):
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
