"""ground.gcpause: the collector is off inside and back as it was after, error or not."""

from __future__ import annotations

import gc

import pytest

from kugeldrill.ground.gcpause import gc_paused


def test_the_collector_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
