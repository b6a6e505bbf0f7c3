"""Bench: what the Dapr sidecar and the Toxiproxy links add to each Dapr call of a drill.

Why: every publish and state call of a stand-in service goes app → `sidecar@<app>` proxy →
daprd → `redis@<app>` proxy → Redis. A drill's latency figures include that plumbing, so a
reader needs its size: how much daprd adds over talking to Redis directly (redis-py), and how
much the two Toxiproxy links add on top (with no toxic). Writes bench/results/sidecar.json.

Three series per operation (publish, state GET), alternating on one paced schedule so they see
the same machine load: `direct` (redis-py: XADD of the same envelope bytes; HGETALL of the
same key), `daprd` (a daprd whose redisHost is Redis itself, called directly) and `links` (a
second daprd whose redisHost is a Toxiproxy proxy, called through another proxy, as the
embedded stack wires it). The client is a keep-alive `http.client` connection per sidecar, so
the numbers are the sidecar's, not an HTTP client library's. Reported: p50/p99 per series, the
added p50/p99 of daprd and of the links, and each daprd's CPU per operation (which, unlike
latency, barely depends on how busy the rest of the machine is). There is no pass/fail goal:
the figures are what a drill's latency is read against.

Usage: .venv/bin/python bench/sidecar.py [--ops 1000] [--rate 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

import httpx  # noqa: E402
import redis  # noqa: E402

from kugeldrill.ground.ports import free_port, free_ports  # noqa: E402
from kugeldrill.stack.components import render_components  # noqa: E402
from kugeldrill.stack.launch.daprd import Daprd, SidecarHandle, SidecarSpec, find_daprd, start_sidecar  # noqa: E402
from kugeldrill.stack.launch.plan import SidecarPorts  # noqa: E402
from kugeldrill.stack.launch.servers import RedisServer, ToxiproxyServer  # noqa: E402

PAYLOAD = json.dumps({
    "tenant_id": "T1234", "store_code": "5678", "terminal_no": 1, "transaction_no": 42,
    "transaction_type": 101, "business_date": "20260329", "amount": 1234.5,
    "line_items": [{"item_code": f"ITEM{i:03d}", "quantity": 1, "unit_price": 100} for i in range(5)],
}).encode()
HEADERS = {"Content-Type": "application/json"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 0.50), 4), "p99_ms": round(pct(values, 0.99), 4),
            "mean_ms": round(statistics.fmean(values), 4), "n": len(values)}


def process_cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (Linux /proc), to report a sidecar's own cost per op."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class SidecarClient:
    """publish / state GET over one keep-alive connection to `host:port` (a daprd or a proxy in front of one)."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: bytes | None, expect: int) -> None:
        self.conn.request(method, path, body=body, headers=HEADERS if body is not None else {})
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != expect:
            raise RuntimeError(f"{self.name} {method} {path} answered {resp.status}")

    def publish(self) -> None:
        self.call("POST", "/v1.0/publish/pubsub-tranlog-report/topic-bench", PAYLOAD, 204)

    def state_get(self) -> None:
        self.call("GET", "/v1.0/state/statestore/bench", None, 200)


def proxy(api: str, name: str, upstream: str) -> int:
    """A Toxiproxy proxy to `upstream` on a port Toxiproxy picks; its port."""
    resp = httpx.post(f"{api}/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream,
                                              "enabled": True}, timeout=5.0)
    resp.raise_for_status()
    return int(resp.json()["listen"].rsplit(":", 1)[1])


def start(daprd: Daprd, work: Path, name: str, redis_host: str) -> SidecarHandle:
    comp = render_components(work / f"components-{name}", redis_host=redis_host, app_id="cart", resiliency=False)
    spec = SidecarSpec(app_id="cart", ports=SidecarPorts(*free_ports(4)), app_address="127.0.0.1",
                       app_port=free_port(), resources_dir=comp, log_file=work / f"sidecar-{name}.log",
                       config_dir=work / "config")
    handle = start_sidecar(daprd, spec)
    try:
        return handle.wait_outbound(60)  # no app behind it: the outbound API is what is measured
    except BaseException:
        handle.stop()
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations per series")
    parser.add_argument("--rate", type=float, default=200.0, help="operations per second (all series)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sidecar.json")
    args = parser.parse_args()

    daprd = find_daprd("1.18")  # missing: an error naming `make setup`
    work = Path(tempfile.mkdtemp(prefix="kd-bench-sidecar-"))
    server = RedisServer(workdir=work / "redis").start()
    toxi = ToxiproxyServer(workdir=work / "toxiproxy").start()
    handles: dict[str, SidecarHandle] = {}
    try:
        redis_link = proxy(toxi.api, "kugeldrill.redis@cart", f"127.0.0.1:{server.port}")
        handles["daprd"] = start(daprd, work, "daprd", f"127.0.0.1:{server.port}")
        handles["links"] = start(daprd, work, "links", f"127.0.0.1:{redis_link}")
        sidecar_link = proxy(toxi.api, "kugeldrill.sidecar@cart", f"127.0.0.1:{handles['links'].process.ports.http}")
        clients = {"daprd": SidecarClient("daprd", handles["daprd"].process.ports.http),
                   "links": SidecarClient("daprd behind its links", sidecar_link)}
        direct0 = redis.Redis(port=server.port, db=0, socket_timeout=10)
        direct1 = redis.Redis(port=server.port, db=1, socket_timeout=10)
        clients["daprd"].call("POST", "/v1.0/state/statestore",
                              json.dumps([{"key": "bench", "value": json.loads(PAYLOAD)}]).encode(), 204)
        clients["daprd"].publish()
        stored = direct0.xrange("topic-bench")[-1][1][b"data"]  # the same envelope bytes

        series: dict[str, Callable[[], None]] = {
            "publish_direct": lambda: direct0.xadd("topic-bench-direct", {"data": stored, "metadata": "{}"}),
            "state_get_direct": lambda: direct1.hgetall("cart||bench"),
        }
        for name, client in clients.items():
            series[f"publish_{name}"] = client.publish
            series[f"state_get_{name}"] = client.state_get
        for fn in series.values():  # warm-up
            for _ in range(50):
                fn()
        results: dict[str, list[float]] = {name: [] for name in series}
        order = list(series.items())
        interval = 1.0 / args.rate
        load_before = os.getloadavg()[0]
        cpu_before = {name: process_cpu_seconds(h.pid) for name, h in handles.items()}
        next_at = time.perf_counter()
        for i in range(args.ops * len(order)):
            name, fn = order[i % len(order)]
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            started = time.perf_counter()
            fn()
            results[name].append((time.perf_counter() - started) * 1000)
            next_at += interval
        load_after = os.getloadavg()[0]
        cpu_ms = {name: round((process_cpu_seconds(h.pid) - cpu_before[name]) * 1000 / (2 * args.ops), 4)
                  for name, h in handles.items()}

        report: dict = {
            "rate_ops_per_s": args.rate, "ops_per_series": args.ops, "payload_bytes": len(PAYLOAD),
            "daprd": {"version": daprd.version, "binary": str(daprd.binary)},
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "loadavg_1m_before": load_before, "loadavg_1m_after": load_after},
            "daprd_cpu_ms_per_op": cpu_ms,
            "what": "direct = redis-py to Redis; daprd = through daprd; links = through daprd behind the "
                    "sidecar@ and redis@ Toxiproxy proxies (no toxic), as the embedded stack wires it",
        }
        for op in ("publish", "state_get"):
            direct, side, linked = (summary(results[f"{op}_{name}"]) for name in ("direct", "daprd", "links"))
            report[op] = {
                "direct": direct, "daprd": side, "links": linked,
                "daprd_added_p50_ms": round(side["p50_ms"] - direct["p50_ms"], 4),
                "daprd_added_p99_ms": round(side["p99_ms"] - direct["p99_ms"], 4),
                "links_added_p50_ms": round(linked["p50_ms"] - side["p50_ms"], 4),
                "links_added_p99_ms": round(linked["p99_ms"] - side["p99_ms"], 4),
            }
        cpus = os.cpu_count() or 1
        if max(load_before, load_after) > cpus:
            report["note"] = (f"machine overloaded (1-min load {max(load_before, load_after):.1f} on {cpus} CPUs): "
                              "each call through a sidecar needs extra process wake-ups, so absolute latency here is "
                              "dominated by scheduling; daprd_cpu_ms_per_op is the comparable number")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        return 0
    finally:
        for handle in handles.values():
            handle.stop()
        toxi.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
