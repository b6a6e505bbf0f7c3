"""The launcher's own behaviour, with the services and daprd replaced by a tiny HTTP server.

Real redis-server and toxiproxy-server; the sidecars and services are a 20-line `python -c`
server that takes their arguments and answers the health probes, so start order, state file,
failure naming/cleanup, pid checks and the crash supervisor are tested without the rest of
the stack.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from kugeldrill.ground.errors import ConfigError, DrillError
from kugeldrill.stack.launch.plan import SIDECAR_APPS, link_names
from kugeldrill.stack.launch.procs import pid_running, port_listening
from kugeldrill.stack.launch.process import wait_for
from kugeldrill.stack.embedded import Stack, StackOptions, StackStartError

FAKE = r"""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
args = sys.argv[1:]
if "--dapr-http-port" in args:  # in daprd's place
    port, name = int(args[args.index("--dapr-http-port") + 1]), "sidecar-" + args[args.index("--app-id") + 1]
else:  # in a service's place
    cfg = json.load(open(args[args.index("--config") + 1]))
    port, name = cfg["port"], cfg["name"]
print("fake", name, "starting on", port, flush=True)
if os.environ.get("FAKE_FAIL") == name:
    print("fake", name, "cannot open its database", flush=True)
    sys.exit(3)
if os.environ.get("FAKE_HANG") == name:
    time.sleep(3600)
if os.environ.get("FAKE_BIND_FAIL") == name:
    print("ERROR:    [Errno 98] error while attempting to bind on address: address already in use", flush=True)
    time.sleep(3600)  # like a server whose listener died but whose process did not
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/v1.0/healthz":
            self.send_response(204); self.end_headers(); return
        if self.path == "/health":
            body = json.dumps({"status": "healthy"}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def fake_render(dest: Path, *, redis_host: str, app_id: str, ack_model: str, defects: list[str]) -> None:
    (dest / "pubsub.yaml").write_text(f"redisHost: {redis_host}\napp: {app_id}\nack: {ack_model}\ndefects: {defects}\n")


def options(tmp_path: Path, **kw: object) -> StackOptions:
    cmd = [sys.executable, "-c", FAKE]
    return StackOptions(state_dir=tmp_path / "st", sidecar_cmd=cmd, service_cmd=cmd,
                        render_components=fake_render, health_timeout=60.0, **kw)  # busy shared CI


def test_bad_options_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown defect"):
        Stack.up(options(tmp_path, defects=["no_such_defect"]))
    with pytest.raises(ConfigError, match="ack model"):
        Stack.up(options(tmp_path, ack_model="1.99"))
    with pytest.raises(ConfigError, match="breaker threshold"):
        Stack.up(options(tmp_path, breaker_threshold=0))
    assert not (tmp_path / "st" / "stack.json").exists()


def test_up_status_down_leaves_nothing(tmp_path: Path) -> None:
    stack = Stack.up(options(tmp_path, defects=["shared_consumer_id", "stock_no_idempotency"],
                             breaker_reset_seconds=3.0))
    try:
        state = json.loads((tmp_path / "st" / "stack.json").read_text())
        assert state["status"] == "running"
        assert set(state["services"]) == {"account", "terminal", "master-data", "cart", "report", "journal", "stock"}
        assert set(state["sidecars"]) == set(SIDECAR_APPS)
        assert set(state["links"]) == set(link_names())
        # Each link proxies to the right place.
        assert state["links"]["redis@cart"]["upstream"] == f"127.0.0.1:{state['redis']['port']}"
        assert state["links"]["sidecar@cart"]["upstream"] == f"127.0.0.1:{state['sidecars']['cart']['port']}"
        assert state["links"]["app@stock"]["upstream"] == f"127.0.0.1:{state['services']['stock']['port']}"
        # The service reaches its sidecar through the proxy; the sidecar reaches the app through app@.
        cart_cfg = json.loads(Path(state["services"]["cart"]["config"]).read_text())
        assert cart_cfg["dapr_url"] == f"http://{state['links']['sidecar@cart']['listen']}/v1.0"
        assert cart_cfg["breaker"] == {"threshold": 3, "reset_seconds": 3.0, "half_open_max_calls": 1}
        assert cart_cfg["service_urls"]["stock"] == state["services"]["stock"]["url"]
        assert json.loads(Path(state["services"]["account"]["config"]).read_text())["dapr_url"] is None
        side = state["sidecars"]["journal"]["cmd"]
        assert side[side.index("--app-port") + 1] == state["links"]["app@journal"]["listen"].rsplit(":", 1)[1]
        rendered = (Path(state["sidecars"]["cart"]["resources"]) / "pubsub.yaml").read_text()
        assert state["links"]["redis@cart"]["listen"] in rendered
        assert "['shared_consumer_id']" in rendered  # only component defects go to the renderer
        # Traffic through a link reaches its upstream.
        resp = httpx.get(f"http://{state['links']['sidecar@cart']['listen']}/v1.0/healthz", timeout=5.0)
        assert resp.status_code == 204

        attached = Stack.from_state_file(tmp_path / "st")
        status = attached.status()
        assert status["redis_url"] == state["redis"]["url"]
        assert all(s["running"] and s["healthy"] for s in status["services"].values())
        assert all(s["running"] and s["healthy"] for s in status["sidecars"].values())
        assert status["redis"]["healthy"] and status["toxiproxy"]["healthy"]
        with pytest.raises(DrillError, match="already running"):
            Stack.up(options(tmp_path))
    finally:
        ports = stack.ports()
        pids = [e["pid"] for _, e in stack.parts()]
        result = stack.down()
    assert result["ports_left"] == [] and result["problems"] == {}
    assert stack.down() is result  # idempotent
    assert not any(pid_running(p) for p in pids)
    assert not any(port_listening("127.0.0.1", p) for p in ports)
    assert not (tmp_path / "st" / "stack.json").exists()


def test_failed_part_is_named_with_its_log_and_the_rest_is_stopped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "sidecar-journal")
    with pytest.raises(StackStartError) as info:
        Stack.up(options(tmp_path))
    message = str(info.value)
    assert "sidecar journal" in message and "code 3" in message
    assert "fake sidecar-journal cannot open its database" in message
    # Everything already started is gone, and so is the state file.
    logs = tmp_path / "st" / "logs"
    assert (logs / "cart.log").exists()
    assert not (tmp_path / "st" / "stack.json").exists()
    for line in (tmp_path / "st" / "logs").glob("*.log"):
        assert line.stat().st_size >= 0
    assert not _our_children_alive(tmp_path)


def test_unhealthy_part_times_out_with_its_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HANG", "report")
    opts = options(tmp_path)
    opts.health_timeout = 3.0
    with pytest.raises(StackStartError, match=r"service report: not healthy within 3s"):
        Stack.up(opts)
    assert not _our_children_alive(tmp_path)


def test_down_from_state_file_skips_a_pid_that_is_not_ours(tmp_path: Path) -> None:
    stack = Stack.up(options(tmp_path))
    path = stack.state_path
    state = json.loads(path.read_text())
    victim = state["services"]["account"]["pid"]
    # Pretend the recorded pid now belongs to another program: the test process itself.
    state["services"]["account"]["pid"] = os.getpid()
    path.write_text(json.dumps(state))
    result = Stack.from_state_file(path).down(wait_ports=False)
    assert result["stopped"]["service account"] == "not ours"
    assert result["problems"] == {"service account": "not ours"}
    assert result["stopped"]["service cart"] == "stopped"
    assert os.getpid() and pid_running(os.getpid())
    # Clean the real one up ourselves.
    os.kill(victim, signal.SIGTERM)
    stack.launcher.running.handles["services:account"].wait(10)
    path.unlink(missing_ok=True)


def test_supervisor_restarts_a_crashed_subscriber(tmp_path: Path) -> None:
    stack = Stack.up(options(tmp_path, crash_before_effect_every=2, ack_model="1.16", republish_interval_seconds=7.0))
    try:
        # Options reach every process: ack model to the daprd line and renderer, knobs to subscribers only.
        assert stack.state["sidecar"]["ack_model"] == "1.16" and stack.state["sidecar"]["version"] == "1.16.0"
        assert "ack: 1.16" in (Path(stack.state["sidecars"]["stock"]["resources"]) / "pubsub.yaml").read_text()
        cfg = {a: json.loads(Path(e["config"]).read_text()) for a, e in stack.state["services"].items()}
        assert cfg["journal"]["crash_before_effect_every"] == 2 and cfg["cart"]["crash_before_effect_every"] == 0
        assert cfg["cart"]["republish_interval_seconds"] == 7.0 and cfg["cart"]["republish_min_age_seconds"] == 7.0
        old = stack.state["services"]["journal"]["pid"]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stack.restarts("journal"):
            time.sleep(0.1)
        restarts = stack.restarts("journal")
        assert len(restarts) == 1 and restarts[0]["old_pid"] == old
        assert restarts[0]["exit_code"] == -signal.SIGKILL
        new = stack.state["services"]["journal"]["pid"]
        assert new != old and pid_running(new)
        # The supervisor records the restart in memory first, then rewrites stack.json.
        assert wait_for(lambda: json.loads(stack.state_path.read_text())["services"]["journal"]["pid"] == new,
                        10), "stack.json never got the restarted pid"
        # Publishers are not supervised.
        assert stack.state["supervisor"]["apps"] == ["report", "journal", "stock"]
    finally:
        result = stack.down()
    assert result["ports_left"] == []
    assert not pid_running(new)


def _our_children_alive(tmp_path: Path) -> bool:
    """Any process whose command line mentions this test's state dir."""
    marker = str(tmp_path / "st")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and pid_running(int(entry.name)):
                return True
    return False


def test_a_port_taken_between_choice_and_bind_is_retried_on_new_ports(tmp_path: Path, monkeypatch) -> None:
    import socket

    from kugeldrill.stack.launch import plan as plan_mod

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = plan_mod.PortPlan.allocate
    calls: list[int] = []

    def allocate(host: str = "127.0.0.1") -> plan_mod.PortPlan:
        plan = real(host)
        calls.append(1)
        if len(calls) == 1:
            plan.services["cart"] = taken  # someone else got there first
        return plan

    monkeypatch.setattr(plan_mod.PortPlan, "allocate", staticmethod(allocate))
    try:
        stack = Stack.up(options(tmp_path))
        try:
            assert len(calls) == 2
            assert stack.state["services"]["cart"]["port"] != taken
        finally:
            stack.down()
    finally:
        squatter.close()


def test_a_port_conflict_twice_is_reported(tmp_path: Path, monkeypatch) -> None:
    import socket

    from kugeldrill.stack.launch import plan as plan_mod

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = plan_mod.PortPlan.allocate

    def allocate(host: str = "127.0.0.1") -> plan_mod.PortPlan:
        plan = real(host)
        plan.services["stock"] = taken
        return plan

    monkeypatch.setattr(plan_mod.PortPlan, "allocate", staticmethod(allocate))
    try:
        with pytest.raises(StackStartError, match=r"(?s)service stock.*Address already in use"):
            Stack.up(options(tmp_path))
    finally:
        squatter.close()


def test_launcher_killed_mid_start_leaves_a_state_file_that_down_cleans_up(tmp_path: Path) -> None:
    """SIGKILL the launching process while it waits for health; `down` from the file stops all."""
    script = tmp_path / "launch.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from test_launcher_lifecycle import options\n"
        "from kugeldrill.stack.embedded import Stack\n"
        "from pathlib import Path\n"
        f"opts = options(Path({str(tmp_path)!r}))\n"
        "opts.health_timeout = 600\n"
        "Stack.up(opts)\n"
    )
    env = dict(os.environ, FAKE_HANG="stock")  # stock never becomes healthy: the launcher keeps waiting
    launcher = __import__("subprocess").Popen([sys.executable, str(script)], env=env)
    path = tmp_path / "st" / "stack.json"
    try:
        deadline = time.monotonic() + 60
        state: dict = {}
        while time.monotonic() < deadline:
            if path.exists():
                try:
                    state = json.loads(path.read_text())
                except ValueError:
                    state = {}
                if len(state.get("sidecars", {})) == len(SIDECAR_APPS) and all(
                        e.get("pid") for e in state["sidecars"].values()):
                    break
            time.sleep(0.1)
        assert state.get("status") == "starting"
        launcher.kill()
        launcher.wait(timeout=10)
        pids = [e["pid"] for g in ("services", "sidecars") for e in state[g].values()]
        pids += [state["redis"]["pid"], state["toxiproxy"]["pid"]]
        assert all(pid_running(p) for p in pids)  # orphans now
        result = Stack.from_state_file(path).down(wait_ports=False)
        assert set(result["stopped"].values()) == {"stopped"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_running(p) for p in pids):
            time.sleep(0.1)
        assert not any(pid_running(p) for p in pids)
        assert not path.exists()
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_a_part_that_lost_its_port_but_keeps_running_fails_fast(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_BIND_FAIL", "sidecar-cart")
    started = time.monotonic()
    opts = options(tmp_path)
    opts.health_timeout = 120.0
    with pytest.raises(StackStartError, match=r"sidecar cart: a port it was given was taken"):
        Stack.up(opts)  # two attempts, each ended by the log line, not by the 120 s timeout
    assert time.monotonic() - started < 60
    assert not _our_children_alive(tmp_path)


def test_logs_and_events_go_where_the_options_say_and_data_is_dropped_after_down(tmp_path: Path) -> None:
    logs, events = tmp_path / "run" / "logs", tmp_path / "run" / "events"
    events.mkdir(parents=True)
    (events / "cart.jsonl").write_text('{"kind": "publish", "event_id": "stale"}\n')  # a previous stack's
    (events / "notes.txt").write_text("someone else's")
    stack = Stack.up(options(tmp_path, logs_into=logs, events_into=events))
    try:
        state = stack.state
        for app, entry in state["services"].items():
            assert Path(entry["log"]) == logs.resolve() / f"{app}.log"
            assert Path(entry["events"]) == events.resolve() / f"{app}.jsonl"
            assert Path(entry["data_dir"]).is_dir()
        for app, entry in state["sidecars"].items():
            assert Path(entry["log"]) == logs.resolve() / f"sidecar-{app}.log"
        assert "fake cart starting" in (logs / "cart.log").read_text()
        assert not (events / "cart.jsonl").exists()  # the stale record is gone: it would be judged
        assert (events / "notes.txt").exists()  # other files are left alone
        assert not (tmp_path / "st" / "logs").exists() and not (tmp_path / "st" / "events").exists()
        with pytest.raises(DrillError, match="clean 'down'"):
            stack.drop_data()  # the services may still be writing
    finally:
        result = stack.down()
    assert result["problems"] == {}
    data_dirs = [Path(e["data_dir"]) for e in stack.state["services"].values()]
    assert sorted(stack.drop_data()) == sorted(data_dirs)
    assert not any(d.exists() for d in data_dirs)
    assert not (tmp_path / "st" / "data").exists()  # nor their empty parent
    assert (logs / "cart.log").exists()  # logs stay
