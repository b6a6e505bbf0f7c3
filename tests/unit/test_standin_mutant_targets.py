"""Every mutant the mutation suite plants in the stand-in's services finds its text exactly
once (bench/mutants.py applies `old` → `new` by text): a refactor of the services that moves
or rewrites a mutated line must move the mutant with it, or the suite silently loses it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mutants() -> list:
    spec = importlib.util.spec_from_file_location("bench_mutants", ROOT / "bench" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_mutants", module)
    spec.loader.exec_module(module)
    return [m for m in module.MUTANTS if m.file.startswith("kugeldrill/stack/services/")]


@pytest.mark.parametrize("mutant", _mutants(), ids=lambda m: m.id)
def test_the_mutated_text_is_found_exactly_once(mutant) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / mutant.file).read_text(encoding="utf-8")
    assert text.count(mutant.old) == 1, f"{mutant.id}: {mutant.old!r} found {text.count(mutant.old)} times in {mutant.file}"
