"""Benchmark of the embedded stack: sales per second with full fan-out, and fan-out latency.

Starts a stack, provisions one tenant with a terminal per worker through the public APIs,
then drives complete sales (create cart → line items → subtotal → cash payment → bill)
with asyncio+httpx workers at rising concurrency. Every tranlog must reach report,
journal and stock; the latency is from sending the bill to the third subscriber's
application (the `ts` of the subscribers' applied records). Writes
bench/results/stack.json. Runs in about a minute on a 2-core machine.

    .venv/bin/python bench/stack.py [--levels 4,8,16] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ["PATH"] = f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

import httpx  # noqa: E402

from kugeldrill.stack.embedded import Stack, StackOptions  # noqa: E402
from stackutil import PosClient, Terminal, applied  # noqa: E402

RESULT = ROOT / "bench" / "results" / "stack.json"
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


async def one_sale(client: httpx.AsyncClient, cart_url: str, t: Terminal, n: int) -> dict[str, Any]:
    """A complete cash sale; returns bill send time and the transaction number."""
    kw = {"headers": {"X-API-KEY": t.api_key}, "params": {"terminal_id": t.terminal_id}}

    async def post(path: str, body: Any = None) -> dict[str, Any]:
        resp = await client.post(cart_url + path, json=body, **kw)
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} -> {resp.status_code}: {resp.text[:200]}")
        return resp.json()["data"]

    cart = await post("/api/v1/carts", {"transaction_type": 101, "user_id": "bench", "user_name": "Bench"})
    cid = cart["cartId"]
    await post(f"/api/v1/carts/{cid}/lineItems", [{"item_code": f"ITEM{(n + i) % 10:03d}", "quantity": 1} for i in range(3)])
    sub = await post(f"/api/v1/carts/{cid}/subtotal")
    await post(f"/api/v1/carts/{cid}/payments", [{"payment_code": "01", "amount": sub["totalAmountWithTax"] + 100}])
    sent = time.time()
    bill = await post(f"/api/v1/carts/{cid}/bill")
    return {"terminal_no": t.terminal_no, "transaction_no": bill["transactionNo"], "bill_sent": sent,
            "bill_done": time.time()}


async def run_level(cart_url: str, terminals: list[Terminal], workers: int, seconds: float) -> dict[str, Any]:
    """`workers` concurrent POS loops for `seconds`; each worker uses its own terminal."""
    sales: list[dict[str, Any]] = []
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
        async def worker(w: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                try:
                    sales.append(await one_sale(client, cart_url, terminals[w], n))
                except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                n += 1

        t0, start_wall = time.monotonic(), time.time()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        elapsed = time.monotonic() - t0
    return {"_start_wall": start_wall, "_end_wall": time.time(), "workers": workers, "seconds": round(elapsed, 2), "sales": len(sales), "errors": len(errors),
            "error_samples": errors[:3], "billed_per_second": round(len(sales) / elapsed, 2), "_sales": sales}


def fanout(stack: Stack, sales: list[dict[str, Any]], wait: float) -> dict[str, Any]:
    """Wait for all three subscribers, then join applied records to the bills."""
    want = {(s["terminal_no"], s["transaction_no"]): s for s in sales}
    deadline = time.monotonic() + wait
    third: dict[tuple[int, int], float] = {}
    while True:
        per_key: dict[tuple[int, int], dict[str, float]] = {}
        for sub in ("report", "journal", "stock"):
            for row in applied(stack.service_url(sub)):
                if row["topic"] != "topic-tranlog":
                    continue
                pk = row["payload_keys"]
                key = (int(pk.get("terminal_no")), int(pk.get("transaction_no")))
                if key in want:
                    per_key.setdefault(key, {}).setdefault(sub, row["ts"])
        third = {k: max(v.values()) for k, v in per_key.items() if len(v) == 3}
        if len(third) == len(want) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    lat = sorted((third[k] - want[k]["bill_sent"]) * 1000 for k in third)
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
    return {"sales": len(want), "fully_applied": len(third), "missing": len(want) - len(third),
            "last_application_wall": max(third.values()) if third else None,
            "bill_to_third_application_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": round(lat[-1], 1) if lat else None,
                                             "mean": round(statistics.fmean(lat), 1) if lat else None}}


def cli_cycle() -> dict[str, Any]:
    """Time `kugeldrill stack up` and `down` as a user runs them (separate processes)."""
    import subprocess

    state_dir = Path(tempfile.mkdtemp(prefix="kd-bench-cli-"))
    cmd = [sys.executable, "-m", "kugeldrill", "stack"]
    t0 = time.monotonic()
    up = subprocess.run([*cmd, "up", "--state-dir", str(state_dir), "--timeout", "120"],
                        capture_output=True, text=True, timeout=180, cwd=ROOT)
    up_s = time.monotonic() - t0
    state = json.loads((state_dir / "stack.json").read_text()) if (state_dir / "stack.json").exists() else {}
    t0 = time.monotonic()
    down = subprocess.run([*cmd, "down", "--state-dir", str(state_dir)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    down_s = time.monotonic() - t0
    from kugeldrill.stack.launch.procs import pid_running, port_listening

    pids = [e["pid"] for g in ("services", "sidecars") for e in state.get(g, {}).values()]
    pids += [state[k]["pid"] for k in ("redis", "toxiproxy") if state.get(k)]
    ports = [e["port"] for g in ("services", "sidecars") for e in state.get(g, {}).values()]
    ports += [int(link["listen"].rsplit(":", 1)[1]) for link in state.get("links", {}).values()]
    return {"up_exit": up.returncode, "up_seconds": round(up_s, 2), "healthy_after_seconds": state.get("startup_seconds"),
            "down_exit": down.returncode, "down_seconds": round(down_s, 2),
            "processes_left": sum(1 for p in pids if pid_running(p)),
            "ports_left": sum(1 for p in ports if port_listening("127.0.0.1", p)),
            "up_error": up.stderr[-500:] if up.returncode else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="4,8,16", help="comma list of worker counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per level")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    cli = cli_cycle()
    print(f"CLI: stack up {cli['up_seconds']}s (healthy after {cli['healthy_after_seconds']}s), "
          f"down {cli['down_seconds']}s, left {cli['processes_left']} processes / {cli['ports_left']} ports", flush=True)
    state_dir = Path(tempfile.mkdtemp(prefix="kd-bench-stack-"))
    t0 = time.monotonic()
    stack = Stack.up(StackOptions(state_dir=state_dir, health_timeout=120.0))
    startup = time.monotonic() - t0
    try:
        with PosClient(stack.service_urls()) as pos:
            prov = pos.provision(terminals=max(levels), items=10)
        results = []
        for workers in levels:
            level = asyncio.run(run_level(stack.service_url("cart"), prov.terminals, workers, args.seconds))
            sales = level.pop("_sales")
            start_wall, end_wall = level.pop("_start_wall"), level.pop("_end_wall")
            fo = fanout(stack, sales, wait=30.0)
            span = max(fo["last_application_wall"] or end_wall, end_wall) - start_wall
            level["fanout"] = fo
            # Sales whose tranlog reached all three subscribers, per second from the level's start
            # until the later of its end and the last third application.
            level["completed_sales_per_second"] = round(fo["fully_applied"] / span, 2) if sales else 0.0
            results.append(level)
            print(f"{workers:3d} workers: {level['billed_per_second']:7.2f} billed/s, "
                  f"{level['completed_sales_per_second']:7.2f} fully fanned-out/s, "
                  f"p50 {fo['bill_to_third_application_ms']['p50']} ms, p99 {fo['bill_to_third_application_ms']['p99']} ms, "
                  f"errors {level['errors']}", flush=True)
        best = max(results, key=lambda r: r["completed_sales_per_second"])
        out = {
            "benchmark": "stack",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg_at_start": load_at_start,
                        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
            "startup_seconds": round(startup, 2),
            "cli": cli,
            "saturation": {
                "workers": best["workers"],
                "completed_sales_per_second": best["completed_sales_per_second"],
                "bill_to_third_application_ms": best["fanout"]["bill_to_third_application_ms"],
            },
            "levels": results,
            "notes": "sale = create cart, 3 line items (1 request), subtotal, cash payment with change, bill; "
                     "completed = tranlog applied by report, journal and stock; latency from sending the bill "
                     "to the latest of the three applied-record timestamps. The machine is shared (see loadavg): "
                     "rates vary by 2x between runs.",
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out} (startup {startup:.1f}s)")
        return 0
    finally:
        stack.down()


if __name__ == "__main__":
    sys.exit(main())
