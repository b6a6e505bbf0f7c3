"""The ground's one duration parser and one atomic-write helper."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from kugeldrill.ground.durations import duration_arg, parse_duration
from kugeldrill.ground.jsonfile import atomic_file, read_json, write_json_atomic


@pytest.mark.parametrize("text,seconds", [
    (90, 90.0), (7.5, 7.5), ("7.5", 7.5), (" 12 ", 12.0), ("500ms", 0.5), ("90s", 90.0), ("1m30s", 90.0),
    ("2h", 7200.0), ("1h15m", 4500.0), ("1h0m0.5s", 3600.5), ("2m", 120.0), ("1.5m", 90.0), ("1s250ms", 1.25),
])
def test_durations_people_write(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "", "1m30", "30s1m", "1s1s", "-5s", "5 s", "1d", "ms", True, None, [1]])
def test_what_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_options() -> None:
    assert duration_arg("1m30s") == 90.0
    with pytest.raises(argparse.ArgumentTypeError, match="positive"):
        duration_arg("0s")
    with pytest.raises(argparse.ArgumentTypeError, match="1m30s"):
        duration_arg("a while")


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    write_json_atomic(path, {"a": 1})
    assert read_json(path) == {"a": 1}
    with pytest.raises(RuntimeError):
        with atomic_file(path) as fh:
            fh.write('{"a": 2')  # half written, then the writer fails
            raise RuntimeError("crash")
    assert read_json(path) == {"a": 1}  # the old file stands
    assert os.listdir(path.parent) == ["state.json"]  # no temporary file left behind
    with atomic_file(path, "wb") as fh:
        fh.write(b'{"a": 3}')
    assert read_json(path) == {"a": 3}
