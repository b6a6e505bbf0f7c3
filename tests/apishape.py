"""Answers as shapes: every field path of a JSON answer with the JSON types seen there, the
differences between two deployments' shapes, the recorded real answers
(tests/fixtures/kugelpos/api/*.json) and the differences left on purpose (the services
README's table). Shared by the differential API tests (integration) and the unit test of
the stand-in's answer schemas; pure, no I/O but reading those files.

A path is dotted, list elements share `[]` (`data.payments[].paymentAmount`); a type is one of
`null`, `bool`, `number` (JSON has one: 1100 and 1100.0 are the same figure), `string`,
`list`, `object`. Values (ids, times, amounts) are not compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "kugelpos" / "api"
README = ROOT / "kugeldrill" / "stack" / "services" / "README.md"



def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"  # JSON has one number type; 1100 and 1100.0 are the same figure
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def shape(body: Any, prefix: str = "") -> dict[str, set[str]]:
    """Every field path of `body` with the types seen there; list elements share `[]`."""
    out: dict[str, set[str]] = {}

    def walk(value: Any, path: str) -> None:
        out.setdefault(path or "$", set()).add(json_type(value))
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for sub in value:
                walk(sub, f"{path}[]")

    walk(body, prefix)
    return out


def merge_shapes(into: dict[str, set[str]], more: Mapping[str, set[str]]) -> None:
    for path, types in more.items():
        into.setdefault(path, set()).update(types)


# ---------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Difference:
    """One way the stand-in's answers differ from the real code's."""

    key: str  # the exchange key (see Exchange.key)
    path: str  # a field path, or "" for a whole exchange seen on one side only
    real: str  # the types the real code answered ("" if it lacks the path or exchange)
    standin: str

    def __str__(self) -> str:
        where = f"{self.key} {self.path}" if self.path else self.key
        return f"{where}: real {self.real or 'absent'}, stand-in {self.standin or 'absent'}"


def types_text(types: set[str] | None) -> str:
    """`number|null` (sorted), '' for none."""
    return "|".join(sorted(types)) if types else ""


def compare(real: Mapping[str, Mapping[str, set[str]]], standin: Mapping[str, Mapping[str, set[str]]]) -> list[Difference]:
    """Every exchange or field path whose presence or types differ."""
    out: list[Difference] = []
    for key in sorted(set(real) | set(standin)):
        if key not in standin or key not in real:
            out.append(Difference(key, "", "answered" if key in real else "", "answered" if key in standin else ""))
            continue
        r, s = real[key], standin[key]
        for path in sorted(set(r) | set(s)):
            if r.get(path) != s.get(path):
                out.append(Difference(key, path, types_text(r.get(path)), types_text(s.get(path))))
    return out


def load_fixture_shapes(folder: Path = FIXTURES) -> dict[str, dict[str, set[str]]]:
    """The recorded real answers' shapes, by exchange key."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[doc["key"]] = {p: set(t.split("|")) for p, t in doc["shape"].items()}
    return out


@dataclass(frozen=True)
class Allowance:
    """A difference left on purpose (the services README's table): key and path are globs."""

    key: str
    path: str
    why: str

    def allows(self, d: Difference) -> bool:
        return fnmatchcase(d.key, self.key) and (fnmatchcase(d.path, self.path) if self.path else d.path == "")


def allowances(readme: Path = README) -> list[Allowance]:
    """The rows between `<!-- api-differences -->` and `<!-- /api-differences -->` in the README:
    `| \\`<key glob>\\` | \\`<path glob>\\` or empty | why |`."""
    text = readme.read_text(encoding="utf-8")
    body = text.split("<!-- api-differences -->", 1)[1].split("<!-- /api-differences -->", 1)[0]
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        rows.append(Allowance(cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return rows


def unexplained(differences: list[Difference], allowed: list[Allowance]) -> tuple[list[Difference], list[Allowance]]:
    """(differences no allowance covers, allowances that cover nothing: stale rows)."""
    left = [d for d in differences if not any(a.allows(d) for a in allowed)]
    stale = [a for a in allowed if not any(a.allows(d) for d in differences)]
    return left, stale
