"""Benchmark: what the operation history costs the load generator.

Runs Locust four ways (one process each, headless) against the same trivial HTTP
endpoint — a canned Kugelpos-shaped JSON answer served by a tiny asyncio server:

* `bare`: a plain FastHttpUser POSTing that endpoint with no think time;
* `bare_shaped`: a plain FastHttpUser sending CartUser's exact requests (URLs, headers,
  bodies, stats names) and nothing else, so the gap to bare splits into request shape
  and CartUser's own code;
* `cart_nohistory`: CartUser doing full sales (create, items, subtotal, pay, bill), no history;
* `cart_history`: the same with the history on (write-ahead: each sale's invoke written
  before its bill, completions in batches; kugeldrill.ground.history).

Each Locust process measures its own CPU over a window of its own, so results are
requests per CPU-second ("per core"). The history's cost is measured so that it holds on
a noisy machine: in each run, half of the CartUsers record the history and half do not,
at the same time in one process, and every greenlet switch charges the thread CPU time
since the previous one to the user that ran (gevent's hub, shared by both halves, is
shared out by requests). Both halves meet the same machine at every instant — other
tenants, a VM's stolen time — so their ratio keeps only what the history costs. Each
round is two such runs, the recording half once the first of the two user classes and once
the second (the classes' order alone moved A/A rounds by up to 1 %, either way), and gives
one pairwise ratio, the geometric mean of its two; the result is the median of at least 7
rounds with its spread, next to A/A control rounds (neither half records) made the same
way. (Separate runs, even side by side or switching the history every 0.5 s, swung by
0.6-1.3 on the shared 2-core machine: far more than the 3 % goal.) The accounting itself
(a settrace call per switch, ~3 per request) adds the same CPU to every request of both
halves, which dilutes the history's share a little: its cost is timed in each run and the
ratios are also given without it (`without_accounting`, the stricter). The goal (`goal`,
with `met`): median pairwise ratio >= 0.97 (the history costs at most 3 %) over >= 7
rounds, judged on the stricter of the two medians.

It also times the history writer alone per operation and converts that to an expected
ratio (`isolated`), which does not swing with the machine's load at all. `bare` and
`bare_shaped` runs split the rest of CartUser's cost (`cart_vs_bare`).

Usage: python bench/load.py [--seconds 12] [--users 10] [--rounds 9] [--history-only] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "load.json"
WARMUP_SECONDS = 1.5  # after the test starts: users spawned, first connections made
GOAL_RATIO = 0.97  # the history may cost CartUser at most 3 % of its requests per CPU-second
MIN_ROUNDS = 7
ARRANGEMENTS = ("", "1")  # BENCH_SWAP of a round's two runs: the recording half's class first, then second
BODY = json.dumps({"success": True, "code": 200, "message": "", "userError": None, "metadata": None,
                   "operation": "", "data": {"cartId": "c1", "cartStatus": "Paying", "balanceAmount": 330,
                                             "totalAmountWithTax": 330, "changeAmount": 670,
                                             "transactionNo": 1, "receiptNo": 111112}}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

# Measures the Locust process itself; shared by both locustfiles below.
# Measures the Locust process itself over a window of its own, shared by every locustfile below:
# BENCH_WARMUP seconds after the test starts (imports done, users spawned), for BENCH_SECONDS by
# the monotonic clock, then it ends the run. (Locust's -t counts from gevent's cached loop time,
# which a slow import on a busy machine leaves seconds behind: its windows came out 0.4-4 s long.)
MEASURE = '''
import json, os, resource, time
import gevent
from locust import events
def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime
def _window(environment):
    gevent.sleep(float(os.environ["BENCH_WARMUP"]))
    total = environment.stats.total
    n0, f0, (u0, s0), t0 = total.num_requests, total.num_failures, _cpu(), time.monotonic()
    end = t0 + float(os.environ["BENCH_SECONDS"])
    while time.monotonic() < end:
        gevent.sleep(min(0.2, end - time.monotonic()))
    u, s = _cpu()
    with open(os.environ["BENCH_OUT"], "w") as fh:
        json.dump({"requests": total.num_requests - n0, "failures": total.num_failures - f0,
                   "cpu_seconds": (u - u0) + (s - s0), "user_cpu_seconds": u - u0, "sys_cpu_seconds": s - s0,
                   "wall_seconds": time.monotonic() - t0}, fh)
    environment.runner.quit()
@events.test_start.add_listener
def _start(environment, **kw):
    gevent.spawn(_window, environment)
'''
BARE = '''
from locust import FastHttpUser, task, constant
class Bare(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 3.0
    network_timeout = 10.0
    @task
    def hit(self):
        self.client.post("/api/v1/carts", data="{}", headers={"Content-Type": "application/json"})
''' + MEASURE
# A FastHttpUser sending exactly CartUser's requests of a 2-item sale (URLs with ?terminal_id=,
# X-API-KEY, the same bodies and stats names) and nothing else: separates the cost of the
# request shape from the cost of CartUser's own code.
SHAPED = '''
from locust import FastHttpUser, task, constant
H = {"X-API-KEY": "k", "Content-Type": "application/json"}
Q = "?terminal_id=T0-1-1"
class Shaped(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 3.0
    network_timeout = 10.0
    max_retries = 0
    @task
    def sale(self):
        s, u = self.client, self.host
        s.request("POST", u + "/api/v1/carts" + Q, name="POST /api/v1/carts", headers=H,
                  data=b'{"transaction_type":101,"user_id":"w0.u1","user_name":"w0.u1"}')
        for q in (1, 2):
            s.request("POST", u + "/api/v1/carts/c1/lineItems" + Q, name="POST /api/v1/carts/[cart_id]/lineItems",
                      headers=H, data=b'[{"item_code":"ITEM000","quantity":%d}]' % q)
        s.request("POST", u + "/api/v1/carts/c1/subtotal" + Q, name="POST /api/v1/carts/[cart_id]/subtotal", headers=H)
        s.request("POST", u + "/api/v1/carts/c1/payments" + Q, name="POST /api/v1/carts/[cart_id]/payments",
                  headers=H, data=b'[{"payment_code":"01","amount":1000}]')
        s.request("POST", u + "/api/v1/carts/c1/bill" + Q, name="POST /api/v1/carts/[cart_id]/bill", headers=H)
''' + MEASURE
# CartUser with and without the history at the same time, in one process: half the users
# record ("on"), half do not ("off"). Both halves share the process, its core and
# whatever the machine does at each instant (other tenants, a VM's stolen time), so their
# ratio keeps only what the history costs. Each greenlet switch charges the thread CPU time
# since the previous switch to the greenlet that ran (greenlet.settrace); what ran outside
# the users (gevent's hub: polling, timers) is shared out in proportion to requests.
PAIRED = '''
import json, os, time
import gevent, greenlet
from locust import events
from kugeldrill.locustfiles.pos import CartUser
from kugeldrill.locustfiles.runtime import get_runtime
class _Runtime:
    """The process's runtime seen through one more attribute lookup, for both halves alike
    (so that the only difference left between them is `history()`)."""
    def __init__(self, runtime, record):
        self._rt, self._record = runtime, record
    def history(self):
        return self._rt.history() if self._record else None
    def __getattr__(self, name):
        return getattr(self._rt, name)
OWNER = {}
# Which of the two classes is the recording half ("on"): Locust spawns and schedules its user
# classes in order, and that order alone moved A/A rounds by ~1 %, so every round runs twice,
# once each way (BENCH_SWAP), and the two ratios' geometric mean cancels it.
_SWAP = bool(os.environ.get("BENCH_SWAP"))
_LABELS = ("off", "on") if _SWAP else ("on", "off")
def _user_class(name, label):
    class Half(CartUser):
        weight = 1
        def __init__(self, environment):
            super().__init__(environment)
            # control: neither half records, the same measurement otherwise
            self.rt = _Runtime(self.rt, record=label == "on" and not os.environ.get("BENCH_CONTROL"))
        def on_start(self):
            OWNER[gevent.getcurrent()] = label
            super().on_start()
    Half.__name__ = Half.__qualname__ = name
    return Half
HalfA = _user_class("HalfA", _LABELS[0])
HalfB = _user_class("HalfB", _LABELS[1])
del CartUser, _user_class
ACC = {"on": [0, 0, 0], "off": [0, 0, 0], "hub": [0, 0, 0]}  # [cpu ns, requests, switches away]
_last = [0]
def _trace(event, args):
    if event in ("switch", "throw"):
        now = time.thread_time_ns()
        row = ACC[OWNER.get(args[0], "hub")]
        row[0] += now - _last[0]
        row[2] += 1
        _last[0] = now
def _trace_ns():
    """CPU ns of one call of the accounting itself (warm: a lower bound of its cost in the run)."""
    global ACC
    keep, ACC = ACC, {"hub": [0, 0, 0]}
    args = (object(), object())
    best = None
    for _ in range(5):
        t0 = time.thread_time_ns()
        for _ in range(20000):
            _trace("switch", args)
        ns = (time.thread_time_ns() - t0) / 20000
        best = ns if best is None else min(best, ns)
    ACC = keep
    return best
@events.request.add_listener
def _count(**kw):
    ACC[OWNER.get(gevent.getcurrent(), "hub")][1] += 1
def _window(environment):
    gevent.sleep(float(os.environ["BENCH_WARMUP"]))
    for row in ACC.values():
        row[0] = row[1] = 0
    sink = get_runtime().sink
    ops0 = sink.operations if sink is not None else 0
    _last[0] = time.thread_time_ns()
    t0 = time.monotonic()
    greenlet.settrace(_trace)
    gevent.sleep(float(os.environ["BENCH_SECONDS"]))
    greenlet.settrace(None)
    ACC["hub"][0] += time.thread_time_ns() - _last[0]
    out = {k: {"cpu_seconds": v[0] / 1e9, "requests": v[1], "switches": v[2]} for k, v in ACC.items()}
    out["accounting_ns_per_switch"] = _trace_ns()
    out["on"]["operations"] = (sink.operations if sink is not None else 0) - ops0
    out["wall_seconds"] = time.monotonic() - t0
    with open(os.environ["BENCH_OUT"], "w") as fh:
        json.dump(out, fh)
    environment.runner.quit()
@events.test_start.add_listener
def _start(environment, **kw):
    gevent.spawn(_window, environment)
'''


class _Canned(asyncio.Protocol):
    """Answers every HTTP/1.1 request on the connection with the canned response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def serve(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Canned, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _run_locust(name: str, locustfile: str, url: str, users: int, seconds: float, work: Path,
                env_extra: dict[str, str]) -> dict[str, Any]:
    """One Locust process; its locustfile measures itself and ends the run (BENCH_OUT)."""
    lf = work / f"{name}.py"
    lf.write_text(locustfile)
    out = work / f"{name}.json"
    env = {**os.environ, "BENCH_OUT": str(out), "BENCH_WARMUP": str(WARMUP_SECONDS), "BENCH_SECONDS": str(seconds),
           "PYTHONPATH": str(ROOT), **env_extra}
    cmd = [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{int(seconds + WARMUP_SECONDS) + 60}s", "--host", url, "--only-summary", "--loglevel", "WARNING",
           "--exit-code-on-error", "0"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=seconds + 180)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"bench/load.py: locust run {name!r} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def _round_ratios(runs: list[dict[str, Any]], ratio: Any) -> list[float]:
    """One ratio per round: the geometric mean of its runs' ratios (one per class order)."""
    by_round: dict[int, list[float]] = {}
    for r in runs:
        by_round.setdefault(r["round"], []).append(ratio(r))
    return [statistics.geometric_mean(v) for _, v in sorted(by_round.items())]


def share_out(run: dict[str, Any]) -> None:
    """Give each half of a paired run its share of the hub's CPU (polling, timers: by requests)
    and of what the switch accounting itself cost (its own switches', and its share of the hub's)."""
    hub, total = run["hub"]["cpu_seconds"], run["on"]["requests"] + run["off"]["requests"]
    per_switch = run["accounting_ns_per_switch"] / 1e9
    for k in ("on", "off"):
        share = run[k]["requests"] / total
        run[k]["cpu_seconds_with_hub"] = run[k]["cpu_seconds"] + hub * share
        run[k]["accounting_cpu_seconds"] = (run[k]["switches"] + run["hub"]["switches"] * share) * per_switch


def us_per_request(half: dict[str, Any]) -> float:
    return half["cpu_seconds_with_hub"] / half["requests"] * 1e6


def run_ratio(run: dict[str, Any]) -> float:
    """Requests per CPU-second of the recording half / of the other (1.0: the history is free)."""
    return us_per_request(run["off"]) / us_per_request(run["on"])


def us_without_accounting(half: dict[str, Any]) -> float:
    return (half["cpu_seconds_with_hub"] - half["accounting_cpu_seconds"]) / half["requests"] * 1e6


def run_ratio_without_accounting(run: dict[str, Any]) -> float:
    """`run_ratio` with the switch accounting's own CPU taken out of both halves."""
    return us_without_accounting(run["off"]) / us_without_accounting(run["on"])


def per_cpu_second(m: dict[str, Any]) -> float:
    return m["requests"] / m["cpu_seconds"] if m["cpu_seconds"] > 0 else 0.0


def history_us_per_op(n: int = 20000) -> float:
    """CPU microseconds one sale's history costs (invoke made durable before the bill, then ok), alone."""
    import resource

    from kugeldrill.ground.history import HistoryWriter

    with tempfile.TemporaryDirectory(prefix="kd-bench-hist-") as tmp:
        writer = HistoryWriter(tmp, "w0")
        value = {"tenant_id": "T0", "store_code": "1", "terminal_no": 3, "terminal_id": "T0-1-3",
                 "items": [{"item_code": "ITEM000", "quantity": 2}, {"item_code": "ITEM001", "quantity": 1}]}
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(n):
            op = writer.invoke("sale", "w0.u1", **value)
            op.durable()
            op.ok(cart_id="743e78b5-ac90-484d-972b-d967be2c2697", transaction_no=1, receipt_no=111112, amount=330,
                  deposit=1000, change=670, business_date="20261130", open_counter=1)
        after = resource.getrusage(resource.RUSAGE_SELF)
        writer.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / n * 1e6


def _min_us(fn: Any, n: int, repeat: int = 5) -> float:
    """Best-of-`repeat` CPU microseconds per call of `fn` (CPU time: the shared machine's load drops out)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def cart_work_us(n: int = 20000) -> dict[str, float]:
    """CPU per request of what CartUser does that a bare FastHttpUser does not, in isolation.

    `api_us_per_request`: PosApi's own path (URL, headers, body, outcome rule, decoding the
    answers it reads) over one 6-request sale against a client that answers instantly;
    `envelope_decode_us`: decoding one Kugelpos answer (create, subtotal and bill are read:
    cart id, balance to tender, transaction/receipt numbers and amounts for the history).
    """
    from kugeldrill.locustfiles.api import PosApi, _envelope_data
    from kugeldrill.locustfiles.runtime import Terminal

    class _Resp:
        status_code = 200
        content = BODY
        headers: dict[str, str] = {}
        error = None

    class _Client:
        def request(self, *_a: Any, **_k: Any) -> _Resp:
            return _Resp()

    api = PosApi(_Client(), {"cart": "http://127.0.0.1:1"}, "", "api_key", Terminal("cart", "T0-1-1", 1, "k"),
                 {"tenant_id": "T0", "store_code": "1"})

    def sale() -> None:
        cart = api.create_cart("w0.u1")
        api.add_item(cart, "ITEM000", 1)
        api.add_item(cart, "ITEM000", 2)
        api.subtotal(cart)
        api.pay(cart, "01", 1000)
        api.bill(cart)

    return {"api_us_per_request": _min_us(sale, n // 6) / 6,
            "envelope_decode_us": _min_us(lambda: _envelope_data(BODY), n),
            "iteration_us_per_request": _cart_iteration_us(_Client(), n // 6)}


def _cart_iteration_us(client: Any, n: int) -> float:
    """CPU per request of a whole CartUser iteration (sale loop + PosApi, no history), 2 items per sale."""
    from locust.env import Environment

    from kugeldrill.locustfiles.loadconfig import load_config
    from kugeldrill.locustfiles.cart import CartUser
    from kugeldrill.locustfiles.runtime import Runtime, Settings, set_runtime

    cfg = load_config(environ={"KUGELDRILL_CART_WAIT": "0,0", "KUGELDRILL_VARIANTS": '{"sale": 1}',
                               "KUGELDRILL_ITEMS_MIN": "2", "KUGELDRILL_ITEMS_MAX": "2"})
    prov = {"tenant_id": "T0", "store_code": "1", "items": [{"item_code": "ITEM000", "unit_price": 100}],
            "terminals": {"cart": [{"terminal_id": "T0-1-1", "terminal_no": 1, "api_key": "k"}]}}
    with tempfile.TemporaryDirectory(prefix="kd-bench-lease-") as leases:
        rt = Runtime(Settings(prov, cfg, {"cart": "http://127.0.0.1:1"}, None, (), Path(leases)))
        set_runtime(rt)
        try:
            user_class = type("BenchCartUser", (CartUser,), {"host": "http://127.0.0.1:1"})
            user = user_class(Environment(user_classes=[user_class]))
            user.client = client
            user.on_start()
            user.term.sales = _Forgetful()  # an ever-growing list would measure memory, not code
            per_sale = _min_us(user.iteration, n)
            user.on_stop()
        finally:
            rt.close()
            set_runtime(None)
    return per_sale / 6


class _Forgetful(list):  # type: ignore[type-arg]
    """A sales list that keeps nothing (the bench runs sales only, never void/return)."""

    def append(self, _item: Any) -> None:
        pass


def _quantiles(values: list[float]) -> dict[str, float]:
    """Median, quartiles, extremes and the median absolute deviation of `values`."""
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else (values[0],) * 3
    med = statistics.median(values)
    return {"median": round(med, 4), "q1": round(q1, 4), "q3": round(q3, 4), "iqr": round(q3 - q1, 4),
            "min": round(min(values), 4), "max": round(max(values), 4),
            "mad": round(statistics.median(abs(v - med) for v in values), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per run (default 12)")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=9, help=f"rounds (the goal needs >= {MIN_ROUNDS})")
    parser.add_argument("--control-rounds", type=int, default=3,
                        help="A/A rounds where neither half records: the method's own bias and noise (default 3)")
    parser.add_argument("--history-only", action="store_true",
                        help="only the history's cost (no bare FastHttpUser runs for the breakdown)")
    parser.add_argument("--out", type=Path, default=RESULT, help="result file (default bench/results/load.json)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.rounds < 1 or args.seconds <= 0 or args.users < 2:
        parser.error("--rounds and --seconds must be positive, --users at least 2 (half record, half do not)")
    sys.path.insert(0, str(ROOT))
    from kugeldrill.ground.ports import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()[0]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    rounds: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    bare: dict[str, list[dict[str, Any]]] = {"bare": [], "bare_shaped": []}
    try:
        _wait_for_port(port, server)
        with tempfile.TemporaryDirectory(prefix="kd-bench-load-", dir=os.environ.get("BENCH_TMP")) as tmp:
            work = Path(tmp)
            terminals = [{"terminal_id": f"T0-1-{i}", "terminal_no": i, "api_key": "k"} for i in range(1, args.users + 1)]
            prov = {"tenant_id": "T0", "store_code": "1", "urls": {a: url for a in ("account", "terminal", "master-data",
                                                                                    "cart")},
                    "items": [{"item_code": "ITEM000", "unit_price": 100}], "payments": ["01"],
                    "terminals": {"cart": terminals}}
            cart_env = {"KUGELDRILL_PROVISION_JSON": json.dumps(prov), "KUGELDRILL_CART_WAIT": "0,0",
                        "KUGELDRILL_VARIANTS": '{"sale": 1}', "KUGELDRILL_ITEMS_MIN": "1", "KUGELDRILL_ITEMS_MAX": "3",
                        "KUGELDRILL_LEASE_DIR": str(work / "leases")}
            lines = 0
            for rnd in range(args.rounds):
                for swap in ARRANGEMENTS:
                    hist = work / f"history-{rnd}-{swap}"
                    env = {**cart_env, "KUGELDRILL_HISTORY_DIR": str(hist), "BENCH_SWAP": swap}
                    run = _run_locust(f"paired_{rnd}_{swap or 0}", PAIRED, url, args.users, args.seconds, work, env)
                    rounds.append({**run, "round": rnd, "swap": bool(swap)})
                    lines += sum(1 for p in hist.glob("*.jsonl") for _ in p.open())
                    if rnd < args.control_rounds:
                        run = _run_locust(f"control_{rnd}_{swap or 0}", PAIRED, url, args.users, args.seconds, work,
                                          {**cart_env, "BENCH_CONTROL": "1", "BENCH_SWAP": swap})
                        controls.append({**run, "round": rnd, "swap": bool(swap)})
                if not args.history_only:
                    for name in (["bare", "bare_shaped"] if rnd % 2 == 0 else ["bare_shaped", "bare"]):
                        bare[name].append(_run_locust(f"{name}_{rnd}", BARE if name == "bare" else SHAPED, url,
                                                      args.users, args.seconds, work, {}))
    finally:
        server.terminate()
        server.wait(timeout=10)
    if any(r[k]["requests"] == 0 for r in rounds + controls for k in ("on", "off")):
        raise SystemExit(f"bench/load.py: a half of the users sent no request: {json.dumps(rounds)[:2000]}")
    for r in rounds + controls:
        share_out(r)

    pairs = _round_ratios(rounds, run_ratio)
    ratio = _quantiles(pairs)
    pairs_bare = _round_ratios(rounds, run_ratio_without_accounting)
    ratio_bare = _quantiles(pairs_bare)
    judged = min(ratio["median"], ratio_bare["median"])
    met = bool(judged >= GOAL_RATIO and len(pairs) >= MIN_ROUNDS)
    control = _round_ratios(controls, run_ratio)
    users_only = _quantiles(_round_ratios(rounds, lambda r: (r["off"]["cpu_seconds"] / r["off"]["requests"])
                                          / (r["on"]["cpu_seconds"] / r["on"]["requests"])))
    def by_order(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"recording_first": _quantiles([run_ratio(r) for r in runs if not r["swap"]]),
                "recording_second": _quantiles([run_ratio(r) for r in runs if r["swap"]])} if runs else {}
    us_on = statistics.median(us_per_request(r["on"]) for r in rounds)
    us_off = statistics.median(us_per_request(r["off"]) for r in rounds)
    ops_per_request = sum(r["on"]["operations"] for r in rounds) / sum(r["on"]["requests"] for r in rounds)
    per_op_us = history_us_per_op()
    history_us_per_request = per_op_us * ops_per_request
    result: dict[str, Any] = {
        "benchmark": "load",
        "what": "requests per CPU-second of Locust against a canned Kugelpos answer; the history's cost from "
                "CartUsers with and without it running side by side in each run",
        "users": args.users, "seconds_per_run": args.seconds, "cpu_count": os.cpu_count(), "rounds": args.rounds,
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "history_cost": {
            "pairwise_ratios": [round(r, 4) for r in pairs],
            "median_ratio": ratio["median"], "spread": ratio,
            "cost": round(1 - ratio["median"], 4),
            "means": "per round (one Locust process, half its users recording the history, half not, at the same "
                     "time): requests per CPU-second of the recording half / of the other; 1.0 = free. CPU is "
                     "charged per greenlet switch, the hub's shared out by requests. A round is two such runs, the "
                     "recording half once the first user class and once the second (the geometric mean of the two "
                     "cancels the classes' order). The median over rounds and its spread (quartiles, extremes, "
                     "median absolute deviation)",
            "by_class_order": by_order(rounds),
            "users_only_ratio": users_only,
            "control": {"pairwise_ratios": [round(r, 4) for r in control], **(_quantiles(control) if control else {}),
                        "by_class_order": by_order(controls),
                        "means": "A/A rounds: the same measurement with neither half recording; its distance from "
                                 "1.0 is the method's own bias, its spread the method's noise"},
            "without_accounting": {
                "pairwise_ratios": [round(r, 4) for r in pairs_bare], **ratio_bare,
                "accounting_us_per_request_median": round(statistics.median(
                    (r[k]["accounting_cpu_seconds"] / r[k]["requests"]) * 1e6 for r in rounds for k in ("on", "off")), 2),
                "switches_per_request_median": round(statistics.median(
                    (r["on"]["switches"] + r["off"]["switches"] + r["hub"]["switches"])
                    / (r["on"]["requests"] + r["off"]["requests"]) for r in rounds), 2),
                "means": "the same ratios with the switch accounting's own CPU (greenlet.settrace, one call per "
                         "switch, timed warm in the run's process: a lower bound) taken out of both halves: the "
                         "accounting adds the same CPU to each request of both halves, which dilutes the "
                         "history's share, so these ratios are the stricter ones"},
            "cpu_us_per_request_median": {"history_off": round(us_off, 1), "history_on": round(us_on, 1)},
            "requests_per_run_median": statistics.median(r["on"]["requests"] + r["off"]["requests"] for r in rounds),
            "isolated": {"history_cpu_us_per_op": round(per_op_us, 2), "ops_per_request": round(ops_per_request, 4),
                         "history_cpu_us_per_request": round(history_us_per_request, 2),
                         "estimated_ratio": round(1 / (1 + history_us_per_request / us_off), 4),
                         "means": "the history writer timed alone (one sale: invoke, the durable write before "
                                  "the bill, ok) per request, against CartUser's median CPU per request without it"},
        },
        "goal": {"what": f"median pairwise ratio >= {GOAL_RATIO} (the history costs CartUser <= 3 % of its requests "
                         f"per CPU-second) over >= {MIN_ROUNDS} interleaved rounds; judged on the stricter of the "
                         "measured ratio and the ratio without the switch accounting's own cost",
                 "median_ratio": judged, "rounds": len(pairs), "met": met},
        "rounds_detail": rounds, "control_detail": controls,
        "history_lines_written": lines,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.history_only:
        result["cart_vs_bare"] = breakdown(bare, us_on, us_off, history_us_per_request, ops_per_request)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"goal": result["goal"], "history_cost": {k: result["history_cost"][k] for k in (
        "pairwise_ratios", "median_ratio", "spread", "without_accounting", "control", "cpu_us_per_request_median",
        "isolated")},
        **({"cart_vs_bare": result["cart_vs_bare"]["per_request_cpu_us_median"]} if "cart_vs_bare" in result else {})},
        indent=1))
    return 0


def _wait_for_port(port: int, server: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("bench/load.py: the canned HTTP server did not start")
            time.sleep(0.1)


def breakdown(bare: dict[str, list[dict[str, Any]]], us_on: float, us_off: float, history_us_per_request: float,
              ops_per_request: float) -> dict[str, Any]:
    """Where CartUser's CPU per request goes beyond a bare FastHttpUser's (medians over rounds)."""
    work_us = cart_work_us()
    us = {name: statistics.median(1e6 / per_cpu_second(m) for m in runs) for name, runs in bare.items()}
    sale_us = max(work_us["iteration_us_per_request"] - work_us["api_us_per_request"], 0.0)
    return {
        "ratio_cart_history_vs_bare": round(us["bare"] / us_on, 4),
        "means": "bare FastHttpUser's CPU per request / CartUser's with the history: everything CartUser does "
                 "beyond sending one request",
        "per_request_cpu_us_median": {"bare": round(us["bare"], 1), "bare_shaped": round(us["bare_shaped"], 1),
                                      "cart_history_off": round(us_off, 1), "cart_history_on": round(us_on, 1)},
        "of_which_us": {"request_shape": round(us["bare_shaped"] - us["bare"], 1),
                        "cart_code": round(us_off - us["bare_shaped"], 1), "history": round(us_on - us_off, 1)},
        "isolated_us": {"posapi_path": round(work_us["api_us_per_request"], 1),
                        "cart_iteration": round(work_us["iteration_us_per_request"], 1),
                        "sale_loop": round(sale_us, 1),
                        "envelope_decode": round(work_us["envelope_decode_us"] * 3 * ops_per_request, 1),
                        "history": round(history_us_per_request, 1)},
        "how": "request_shape = bare_shaped - bare, cart_code = CartUser (history off) - bare_shaped, history = "
               "on - off (medians of separate runs, except history, whose halves share each run); isolated_us "
               "are the same pieces timed alone in this process",
    }


if __name__ == "__main__":
    sys.exit(main())
