"""kugeldrill compare: regressions beyond the threshold fail, noise below the floor does not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from kugeldrill.cli import main
from kugeldrill.compare import breaker_open_seconds, compare_summaries
from kugeldrill.reports import write_all
from kugeldrill.reports.sample import synthetic_summary


def test_breaker_open_seconds_from_transitions() -> None:
    # synthetic: OPEN 11–16, HALF_OPEN 16–16.1, OPEN 16.1–21.2, HALF_OPEN 21.2–21.3 => 10.3 s not closed
    assert abs(breaker_open_seconds(synthetic_summary()) - 10.3) < 1e-6


def test_identical_runs_have_no_regression() -> None:
    s = synthetic_summary()
    assert not any(d.regression for d in compare_summaries(s, copy.deepcopy(s)))


def test_regressions_detected_per_metric() -> None:
    base = synthetic_summary()
    run = copy.deepcopy(base)
    run.totals.rps = base.totals.rps * 0.5
    run.totals.p95 = base.totals.p95 * 2
    run.totals.p50 = base.totals.p50 + 3  # +25 % but under the 5 ms floor: noise
    run.convergence_seconds = 12.0
    deltas = {d.metric: d for d in compare_summaries(base, run, 0.2)}
    assert deltas["rps"].regression and deltas["p95"].regression and deltas["convergence_seconds"].regression
    assert not deltas["p50"].regression and not deltas["error_rate"].regression


def test_improvement_is_not_a_regression() -> None:
    base = synthetic_summary()
    run = copy.deepcopy(base)
    run.totals.rps *= 2
    run.totals.p99 /= 2
    assert not any(d.regression for d in compare_summaries(base, run))


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:
    base, run = tmp_path / "a", tmp_path / "b"
    s = synthetic_summary()
    write_all(base, s)
    write_all(run, s)
    assert main(["compare", str(base), str(run)]) == 0
    worse = copy.deepcopy(s)
    worse.totals.error_rate = 0.2
    write_all(run, worse)
    assert main(["compare", str(base), str(run), "--json-file", str(tmp_path / "c.json")]) == 1
    assert "REGRESSION" in capsys.readouterr().out and (tmp_path / "c.json").exists()
    assert main(["compare", str(base), str(run), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)  # stdout holds the JSON alone
    assert printed == json.loads((tmp_path / "c.json").read_text()) and printed["regressions"]
    assert main(["compare", str(base), str(tmp_path / "nope")]) == 2
