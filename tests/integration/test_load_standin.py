"""The load layer end to end: real Locust (subprocess) against the embedded stand-in.

* a 20 s headless run: every ok sale/cancel/void/return has its transaction in the
  cart's transactions API, every failed sale left no completed cart, and every
  transaction of the terminals is claimed by an ok op or covered by an info op;
* a blackhole (Toxiproxy timeout toxic, timeout 0) in front of cart's HTTP port: timed
  out effecting calls are `info` — and some of them did take effect, which is why `fail`
  would have been wrong — while time-outs before the effecting call are `fail`;
* `--processes 2` (terminal JWT auth): two shards on disjoint terminals whose merge loses and
  doubles nothing, written by the master from the workers' history streams.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kugeldrill.chaos.toxiproxy import ToxiproxyClient
from kugeldrill.ground.history import merge_shards
from kugeldrill.ground.history_read import load_ops, shard_paths
from kugeldrill.locustfiles.provision import provision
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.locustfiles.collector import read_ledger
from kugeldrill.locustfiles.command import locust_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from stackutil import running_stack  # noqa: E402

EFFECTING = ("sale", "cancel", "void", "return")
NON_EFFECTING_STEPS = ("POST /api/v1/carts:", "/lineItems", "/subtotal", "/payments", "/auth/token")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(tmp_path_factory.mktemp("load-stack")) as s:
        yield s


_TENANTS = iter(range(7101, 7199))


@pytest.fixture
def prov(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A fresh tenant per test, so each test's transactions are its own."""
    out = tmp_path_factory.mktemp("load-provision")
    data = provision(stack.service_urls(), out, tenant_id=f"T{next(_TENANTS)}", cart_terminals=6,
                     cash_terminals=2, openclose_terminals=2, items=10)
    return out / "provision.json", data


def run_locust(prov_file: Path, workdir: Path, *, seconds: int, users: int, extra: list[str] | None = None,
               env: dict[str, str] | None = None, background: bool = False) -> Any:
    """Locust exactly as the drill runner starts it (locustfiles.command); CompletedProcess or Popen."""
    cmd = locust_command(workdir, users=users, run_time=f"{seconds}s", stop_timeout=10, html=False,
                         provision_file=prov_file, extra_args=extra or [], extra_env=env)
    kw = dict(cwd=workdir, env=cmd.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if background:
        return subprocess.Popen(cmd.argv, start_new_session=True, **kw)
    # Popen + communicate with a deadline; on expiry kill the whole process group (the forked
    # workers of --processes hold the pipes open and would outlive a killed master).
    proc = subprocess.Popen(cmd.argv, start_new_session=True, **kw)
    try:
        out, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"locust did not finish in time:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(cmd.argv, proc.returncode, out, err)


class CartApi:
    """Reads the cart's ground truth with a cart terminal's API key."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.url = data["urls"]["cart"]
        self.terms = {t["terminal_no"]: t for pool in data["terminals"].values() for t in pool}
        self.http = httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))

    def _auth(self, terminal_no: int) -> dict[str, Any]:
        t = self.terms[terminal_no]
        return {"headers": {"X-API-KEY": t["api_key"]}, "params": {"terminal_id": t["terminal_id"]}}

    def _base(self, terminal_no: int) -> str:
        return (f"{self.url}/api/v1/tenants/{self.data['tenant_id']}/stores/{self.data['store_code']}"
                f"/terminals/{terminal_no}/transactions")

    def transaction(self, terminal_no: int, transaction_no: int) -> dict[str, Any] | None:
        resp = self.http.get(f"{self._base(terminal_no)}/{transaction_no}", **self._auth(terminal_no))
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def all_transactions(self, terminal_no: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        auth = self._auth(terminal_no)
        for page in range(1, 100):
            params = {**auth["params"], "include_cancelled": "true", "limit": 1000, "page": page}
            resp = self.http.get(self._base(terminal_no), headers=auth["headers"], params=params)
            assert resp.status_code == 200, resp.text
            rows = resp.json()["data"]
            out.extend(rows)
            if len(rows) < 1000:
                return out
        raise AssertionError("too many transactions")

    def cart_status(self, terminal_no: int, cart_id: str) -> str | None:
        auth = self._auth(terminal_no)
        resp = self.http.get(f"{self.url}/api/v1/carts/{cart_id}", **auth)
        return resp.json()["data"].get("cartStatus") if resp.status_code == 200 else None


def _check_against_cart(ops: list[Any], api: CartApi) -> Counter:
    """Every ok effecting op is in the transactions API; failed sales completed no cart;
    every transaction is claimed by an ok op, or (at most as many) by info ops."""
    seen: Counter = Counter()
    claimed: dict[int, set[int]] = defaultdict(set)
    info_per_terminal: Counter = Counter()
    for op in ops:
        seen[(op.f, op.outcome)] += 1
        if op.f not in EFFECTING:
            continue
        term = op.value["terminal_no"]
        if op.outcome == "ok":
            no = op.value.get("transaction_no")
            assert isinstance(no, int), f"ok {op.f} without transaction_no: {op}"
            assert no not in claimed[term], f"transaction {term}/{no} claimed twice"
            claimed[term].add(no)
            tran = api.transaction(term, no)
            assert tran is not None, f"ok {op.f} {term}/{no} missing from the transactions API"
            if op.f == "sale":
                assert tran["transactionType"] == 101
                assert float(tran["totalAmountWithTax"]) == float(op.value["amount"])
                assert sorted((li["itemCode"], li["quantity"]) for li in tran["lineItems"]) == sorted(
                    (i["item_code"], i["quantity"]) for i in op.value["items"])
        elif op.outcome == "fail" and op.f in ("sale", "cancel") and op.value.get("cart_id"):
            assert api.cart_status(term, op.value["cart_id"]) not in ("Completed", "Cancelled"), op
        elif op.outcome in ("info", None):
            info_per_terminal[term] += 1
    for term in {t["terminal_no"] for t in api.data["terminals"]["cart"]}:
        numbers = {t["transactionNo"] for t in api.all_transactions(term)}
        assert claimed[term] <= numbers
        unclaimed = numbers - claimed[term]
        assert len(unclaimed) <= info_per_terminal[term], (
            f"terminal {term}: transactions {sorted(unclaimed)} belong to no ok op and exceed the "
            f"{info_per_terminal[term]} info op(s): a fail was applied")
    return seen


def test_provision_cli_against_the_stack_is_idempotent(stack: Any, tmp_path: Path) -> None:
    state_file = Path(stack.state["state_dir"]) / "stack.json"
    cmd = [sys.executable, "-m", "kugeldrill", "provision", "--state-dir", str(state_file), "--out", str(tmp_path),
           "--tenant", "T7200", "--items", "3", "--cart-terminals", "2", "--cash-terminals", "1",
           "--openclose-terminals", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["terminals"] == {"cart": 2, "cash": 1, "openclose": 1}
    before = json.loads((tmp_path / "provision.json").read_text())
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert json.loads((tmp_path / "provision.json").read_text()) == before
    # The cart terminals are usable at once: opened, with a staff signed in.
    term = before["terminals"]["cart"][0]
    info = httpx.get(f"{before['urls']['terminal']}/api/v1/terminals/{term['terminal_id']}",
                     headers={"X-API-KEY": term["api_key"]}, timeout=10.0).json()["data"]
    assert info["status"] == "Opened" and info["staff"]["staffId"] == "staff001"
    oc = before["terminals"]["openclose"][0]
    info = httpx.get(f"{before['urls']['terminal']}/api/v1/terminals/{oc['terminal_id']}",
                     headers={"X-API-KEY": oc["api_key"]}, timeout=10.0).json()["data"]
    assert info["status"] != "Opened"


def test_headless_run_history_matches_cart(prov: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    prov_file, data = prov
    run_locust(prov_file, tmp_path, seconds=20, users=8)
    assert [p.name for p in shard_paths(tmp_path / "history")] == ["w0.jsonl"]
    ops = load_ops(merge_shards(tmp_path / "history"))
    seen = _check_against_cart(ops, CartApi(data))
    assert seen[("sale", "ok")] >= 20, seen
    assert seen[("cash_in", "ok")] + seen[("cash_out", "ok")] >= 1, seen
    assert seen[("open", "ok")] + seen[("close", "ok")] >= 1, seen
    # Cash tokens are unique (they identify the movement downstream).
    tokens = [o.value["cash_token"] for o in ops if o.f in ("cash_in", "cash_out")]
    assert len(tokens) == len(set(tokens))


def test_blackhole_on_cart_link_records_timeouts_as_info(stack: Any, prov: tuple[Path, dict[str, Any]],
                                                         tmp_path: Path) -> None:
    _, data = prov
    tox = ToxiproxyClient(stack.state["toxiproxy"]["api"], timeout=5.0)
    name = "kugeldrill.loadtest-http@cart"
    upstream = data["urls"]["cart"].split("://", 1)[1]
    proxy = tox.create_proxy(name, upstream=upstream, listen="127.0.0.1:0")
    try:
        faulty = {**data, "urls": {**data["urls"], "cart": f"http://127.0.0.1:{proxy.port}"},
                  "terminals": {"cart": data["terminals"]["cart"]}}
        prov_file = tmp_path / "provision.json"
        prov_file.write_text(json.dumps(faulty))
        env = {"KUGELDRILL_NETWORK_TIMEOUT": "2", "KUGELDRILL_TERMINAL_WEIGHT": "0",
               "KUGELDRILL_OPENCLOSE_WEIGHT": "0", "KUGELDRILL_VARIANTS": '{"sale": 2, "void": 1, "return": 1}',
               "KUGELDRILL_CART_WAIT": "0.05,0.2"}
        proc = run_locust(prov_file, tmp_path, seconds=20, users=6, env=env, background=True)
        time.sleep(7.0)  # sales complete first, so void/return have something to act on
        # Requests still reach cart (upstream open); answers never come back.
        t_on = time.monotonic()
        tox.add_toxic(name, type="timeout", stream="downstream", attributes={"timeout": 0}, name="blackhole")
        time.sleep(6.0)
        tox.remove_toxic(name, "blackhole")
        t_off = time.monotonic()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
    finally:
        tox.delete_proxy(name)
        tox.close()
    ops = load_ops(merge_shards(tmp_path / "history"))
    timed_out = [o for o in ops if o.error and ("timeout" in o.error.lower() or "timed out" in o.error)]
    assert timed_out, f"no request timed out under the blackhole: {[(o.f, o.outcome, o.error) for o in ops if o.error]}"
    for op in timed_out:
        if op.outcome == "fail":
            assert any(s in op.error for s in NON_EFFECTING_STEPS), f"effecting timeout recorded as fail: {op}"
        else:
            assert op.outcome == "info", op
        assert t_on - 1 <= op.complete_mono <= t_off + 10, op
    infos = [o for o in timed_out if o.outcome == "info"]
    assert infos, "no effecting call was in flight under the blackhole"
    # At least one info op did take effect (its request reached cart): `fail` would have lied.
    api = CartApi(data)
    applied = 0
    for op in infos:
        if op.f in ("void", "return"):
            tran = api.transaction(op.value["terminal_no"], int(op.value["original_transaction_no"]))
            status = (tran or {}).get("status") or {}  # Kugelpos' BaseTran: status {isVoided, isRefunded}
            applied += bool(status.get("isVoided") or status.get("isRefunded"))
        elif op.f == "sale" and op.value.get("cart_id"):
            applied += api.cart_status(op.value["terminal_no"], op.value["cart_id"]) == "Completed"
    assert applied >= 1, [(o.f, o.error) for o in infos]
    _check_against_cart(ops, api)


def test_two_processes_two_disjoint_shards_merge_without_loss(prov: tuple[Path, dict[str, Any]],
                                                              tmp_path: Path) -> None:
    prov_file, data = prov
    # Terminal-JWT auth here (the other tests use X-API-KEY), so both modes run end to end.
    run_locust(prov_file, tmp_path, seconds=20, users=8, extra=["--processes", "2"], env={"KUGELDRILL_AUTH": "jwt"})
    shards = shard_paths(tmp_path / "history")
    assert [p.name for p in shards] == ["w0.jsonl", "w1.jsonl"]
    per_shard = {p.stem: load_ops(p) for p in shards}
    lines = sum(1 for p in shards for _ in p.open())
    merged = merge_shards(tmp_path / "history")
    assert sum(1 for _ in merged.open()) == lines
    ops = load_ops(merged)
    ids = [o.op_id for o in ops]
    assert len(ids) == len(set(ids)) == sum(len(v) for v in per_shard.values())
    assert sorted(ids) == sorted(o.op_id for v in per_shard.values() for o in v)
    for worker, wops in per_shard.items():
        assert wops and all(o.worker == worker for o in wops)
    terminals = {w: {o.value["terminal_id"] for o in wops} for w, wops in per_shard.items()}
    assert not terminals["w0"] & terminals["w1"], terminals
    # The forked workers sent their history to the master, which wrote the shards and a ledger.
    ledger = read_ledger(RunFolder(tmp_path).load_workers_json)
    assert sorted((r.worker, r.state) for r in ledger) == [("w0", "ended"), ("w1", "ended")]
    assert {r.worker: r.operations for r in ledger} == {w: len(v) for w, v in per_shard.items()}
    seen = _check_against_cart(ops, CartApi(data))
    assert seen[("sale", "ok")] >= 10, seen
    assert seen[("open", "ok")] + seen[("close", "ok")] >= 2, seen
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert "POST /api/v1/auth/token" in stats  # the users really used terminal JWTs


def test_sigterm_to_a_processes_run_loses_no_worker(prov: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """A drill stops Locust with SIGTERM to its process group: every worker still sends the
    rest of its history and its end before it tells the master it quits (not taken for lost)."""
    prov_file, _ = prov
    proc = run_locust(prov_file, tmp_path, seconds=60, users=6, extra=["--processes", "2"], background=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(
                p.stat().st_size > 2000 for p in (tmp_path / "history").glob("w*.jsonl")):
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    ledger = read_ledger(RunFolder(tmp_path).load_workers_json)
    assert sorted((r.worker, r.state) for r in ledger) == [("w0", "ended"), ("w1", "ended")], ledger
    ops = load_ops(tmp_path / "history")
    assert {o.worker for o in ops} == {"w0", "w1"} and all(o.outcome is not None for o in ops)
    assert sum(r.operations for r in ledger) == len(ops)
