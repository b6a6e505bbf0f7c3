"""The stand-in answers every call the load makes like the real Kugelpos code: same field
paths, same JSON types, nothing the real answer lacks — checked against the real answers
recorded in tests/fixtures/kugelpos/api/*.json (by test_api_differential.py), without the
real code. Differences left on purpose are listed in kugeldrill/stack/services/README.md.
"""

from __future__ import annotations

import pytest

from apiprobe import run_probe
from apishape import FIXTURES, allowances, compare, load_fixture_shapes, unexplained
from stackutil import running_stack

pytestmark = pytest.mark.integration


def test_the_standin_answers_like_the_recorded_real_code(tmp_path_factory: pytest.TempPathFactory) -> None:
    real = load_fixture_shapes(FIXTURES)
    assert len(real) > 40, f"only {len(real)} recorded exchanges in {FIXTURES}"
    with running_stack(tmp_path_factory.mktemp("stack") / "st") as stack:
        standin = run_probe(stack.service_urls(), tmp_path_factory.mktemp("probe"))
    left, stale = unexplained(compare(real, standin.shapes()), allowances())
    assert not left, "stand-in answers differ from the real code's:\n" + "\n".join(map(str, left))
    assert not stale, "listed differences that no longer occur:\n" + "\n".join(map(str, stale))
