"""Each run-folder file has exactly one parser (kugeldrill/ground/runfolder.py's LAYOUT).

The code base is scanned (AST): a module that takes a run-folder path (a RunFolder accessor)
must be that file's writer, its one reader, or a declared passer that only hands the path on;
and the files' names are spelled nowhere else, so no module can build the path around
the layout. A second parser of timeline.json, say, fails this test.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from pathlib import Path

from kugeldrill.ground.runfolder import LAYOUT, RunFolder

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kugeldrill"
ACCESSORS = {entry.accessor: entry for entry in LAYOUT}
# File names (folders such as "logs" or "events" are ordinary words; their accessor rule holds them).
NAMES = {name: entry for entry in LAYOUT if "." in (name := getattr(RunFolder("."), entry.accessor).name)}


def _modules() -> dict[str, ast.Module]:
    """Every module of the installed namespace, symlinked rooms (chaos, reports, locustfiles) included."""
    out: dict[str, ast.Module] = {}
    paths = [Path(d, f) for d, _, files in os.walk(PACKAGE, followlinks=True) for f in files if f.endswith(".py")]
    for path in paths:
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = ["kugeldrill", *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_the_scan_sees_the_symlinked_rooms() -> None:
    modules = _modules()
    assert {"kugeldrill.chaos.timeline", "kugeldrill.reports.html", "kugeldrill.locustfiles.provision",
            "kugeldrill.drill.run", "kugeldrill.checkers.adapters.timeline"} <= set(modules)


def test_every_layout_entry_has_an_accessor() -> None:
    folder = RunFolder("/r")
    for entry in LAYOUT:
        assert isinstance(getattr(folder, entry.accessor), Path), entry.accessor
    assert len(ACCESSORS) == len(LAYOUT)


def test_only_writers_readers_and_passers_touch_a_run_file() -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for module, tree in _modules().items():
        if module == "kugeldrill.ground.runfolder":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ACCESSORS:
                users[node.attr].add(module)
    problems = []
    for accessor, modules in users.items():
        entry = ACCESSORS[accessor]
        allowed = set(entry.writers) | set(entry.passers) | ({entry.reader} if entry.reader else set())
        for module in sorted(modules - allowed):
            problems.append(f"{module} touches {accessor} but is not its writer, reader or a declared passer")
    assert not problems, "\n".join(problems)


def test_run_file_names_are_spelled_only_in_the_layout() -> None:
    problems = []
    for module, tree in _modules().items():
        if module == "kugeldrill.ground.runfolder":
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                entry = NAMES.get(node.value)
                if entry is not None and module not in entry.writers:
                    problems.append(f"{module} spells {node.value!r} (use RunFolder.{entry.accessor})")
    assert not problems, "\n".join(problems)


def test_each_file_has_one_reader_and_the_reader_exists() -> None:
    modules = _modules()
    for entry in LAYOUT:
        if entry.reader is not None:
            assert entry.reader in modules, f"{entry.accessor}: reader {entry.reader} is not a module"
        for writer in entry.writers:
            assert writer in modules, f"{entry.accessor}: writer {writer} is not a module"
