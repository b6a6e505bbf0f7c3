"""bench/load.py's arithmetic: a round's two class orders cancel a bias of the order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_round_is_the_geometric_mean_of_its_two_class_orders() -> None:
    bench = _bench()
    # The history costs 3 %; running first favours a half by 1 %, whichever half it is.
    runs = [{"round": 0, "swap": False, "r": 0.97 * 1.01}, {"round": 0, "swap": True, "r": 0.97 / 1.01},
            {"round": 1, "swap": True, "r": 0.95 / 1.01}, {"round": 1, "swap": False, "r": 0.95 * 1.01}]
    assert bench._round_ratios(runs, lambda r: r["r"]) == [pytest.approx(0.97), pytest.approx(0.95)]
    assert bench.ARRANGEMENTS == ("", "1")  # each round: the recording half first, then second
