"""Explore + shrink end to end on the stand-in: a planted breaker defect is found by a seeded
explore and shrunk to a small drill that fails the same way (bench/explore_check.py's breaker
case; the duplicate and fan-out cases and the healthy run are `make explore-check`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import explore_check  # noqa: E402


def test_explore_finds_the_per_request_breaker_and_shrink_halves_it(tmp_path: Path) -> None:
    case = next(c for c in explore_check.CASES if c.id == "breaker")
    result = explore_check.run_case(case, budget=180.0, shrink_budget=150.0, out=tmp_path)
    assert result.error == ""
    assert result.found, f"explore found nothing in {result.drills_run} drill(s)"
    assert result.failure[0] == "breaker", result.failure
    assert result.checks == {k: True for k in result.checks}, (result.checks, result.original, result.minimal)
    assert len(result.minimal["faults"]) <= 2
    assert result.minimal["load_seconds"] <= result.original["load_seconds"] / 2
    assert Path(result.minimal["scenario"]).is_file()
