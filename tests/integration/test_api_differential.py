"""The stand-in against the real Kugelpos code, answer for answer (issue: field names), and a
sales-and-cash drill on the real code that compares every business figure.

One native deployment for the module (`kugeldrill kugelpos up`, as test_native_kugelpos.py),
one stand-in. The probe (apiprobe.py) sends every call the load makes, and its error cases,
through the load's own code to both; their answers' field paths and types must agree except
for the differences the services README lists (and every listed one must still occur). The
recorded real answers (tests/fixtures/kugelpos/api/*.json, which test_api_shapes.py checks the
stand-in against in every `make test`) must still describe the real code; with
KUGELDRILL_RECORD_API_FIXTURES=1 this test records them again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiprobe import Recording, run_probe, save_fixtures
from apishape import FIXTURES, allowances, compare, load_fixture_shapes, unexplained
from stackutil import run_cli, running_stack

ROOT = Path(__file__).resolve().parents[2]
KUGELPOS = Path(os.environ.get("KUGELPOS_SRC") or ROOT.parent / "shared" / "kugelpos-backend")
SALES_AND_CASH = ROOT / "tests" / "fixtures" / "kugelpos" / "sales-and-cash.yaml"
# alone: the real services answer in seconds on a busy machine (make test runs these last, alone).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.alone,
              pytest.mark.skipif(not (KUGELPOS / "services").is_dir(), reason=f"no Kugelpos checkout at {KUGELPOS}")]


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("native") / "kugelpos"
    up = run_cli("kugelpos", "up", "--src", str(KUGELPOS), "--state-dir", str(state_dir), "--timeout", "240",
                     timeout=1500)
    try:
        assert up.returncode == 0, up.stdout[-6000:]
        yield json.loads((state_dir / "kugelpos.json").read_text())
    finally:
        if (state_dir / "kugelpos.json").exists():
            run_cli("kugelpos", "down", "--state-dir", str(state_dir), timeout=120)


@pytest.fixture(scope="module")
def real(native: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Recording:
    urls = {app: svc["url"] for app, svc in native["services"].items()}
    return run_probe(urls, tmp_path_factory.mktemp("probe-real"))


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    with running_stack(tmp_path_factory.mktemp("stack") / "st") as stack:
        return run_probe(stack.service_urls(), tmp_path_factory.mktemp("probe-standin"))


def test_the_standin_answers_every_call_like_the_real_code(real: Recording, standin: Recording) -> None:
    left, stale = unexplained(compare(real.shapes(), standin.shapes()), allowances())
    assert not left, "stand-in answers differ from the real code's:\n" + "\n".join(map(str, left))
    assert not stale, "listed differences that no longer occur:\n" + "\n".join(map(str, stale))


def test_the_recorded_real_answers_still_hold(real: Recording) -> None:
    if os.environ.get("KUGELDRILL_RECORD_API_FIXTURES") == "1":
        save_fixtures(real)
    drift = compare(load_fixture_shapes(FIXTURES), real.shapes())
    assert not drift, ("the real code answers differently from tests/fixtures/kugelpos/api (record them again with "
                       "KUGELDRILL_RECORD_API_FIXTURES=1):\n" + "\n".join(map(str, drift))
                       + "".join(f"\n  (no answer: {u})" for u in real.unanswered))


def test_a_sales_and_cash_drill_passes_on_the_real_code(native: dict[str, Any], tmp_path: Path) -> None:
    """Cart and cash users, no open/close, no faults: every report, journal and stock figure
    the load moved is compared, none unknown, and the drill passes."""
    run_dir = tmp_path / "sales-and-cash"
    proc = run_cli("run", str(SALES_AND_CASH), "--target", native["target"], "--out", str(run_dir), "--plain",
                       timeout=900)
    verdict = json.loads((run_dir / "verdict.json").read_text())
    checks = {c["checker"]: c for c in verdict["checks"]}
    outcomes = checks["outcomes"]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {name: c["valid"] for name, c in checks.items()} == {
        "breaker": True, "duplicates": True, "fanout": True, "outcomes": True}, proc.stdout[-3000:]
    for part in ("report", "journal", "stock"):
        assert outcomes["counts"][part]["figures"] > 0 and outcomes["counts"][part]["unknown"] == 0, outcomes["counts"]
    ops = outcomes["counts"]["operations"]
    assert ops.get("sale:ok", 0) > 0 and ops.get("cash_in:ok", 0) + ops.get("cash_out:ok", 0) > 0, ops
