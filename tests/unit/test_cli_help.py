"""Every example a `--help` shows runs: it parses, the files and library scenarios it names
exist and validate, and the examples of commands that start nothing are run for real.

Also: one meaning per option name across commands (`--out` is a run folder, `--json`
prints, `--json-file` writes, `--processes` is Locust's), and the exit-code table.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from kugeldrill.cli import EXIT_CODES, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
# Commands whose examples start nothing and write nothing outside stdout: run for real.
RUN_FOR_REAL = {"list", "validate", "schema"}
# Paths an example writes to (outputs), not inputs that must exist.
OUTPUT_OPTIONS = {"--out", "--runs-dir", "--json-file", "--target-file", "--overlay-dir", "--state-dir"}


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _parsers(sub, path + (name,))
    return out


def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for path, parser in _parsers(build_parser()):
        text = f"{parser.description or ''}\n{parser.epilog or ''}"
        for line in text.splitlines():
            line = line.split("  #")[0].split(" > ")[0].strip()  # comments and shell redirections
            if line.startswith("kugeldrill "):
                argv = shlex.split(line)[1:]
                found.append((" ".join(("kugeldrill", *path)) + f": {line}", argv))
    return found


EXAMPLES = _examples()


def test_every_command_shows_examples() -> None:
    commands = {argv[0] for _, argv in EXAMPLES}
    top = {path[0] for path, _ in _parsers(build_parser()) if len(path) == 1}
    # heal and kugelpos are documented in their own modules' text (chaos/README, native README)
    assert top - commands <= {"heal", "kugelpos"}, sorted(top - commands)


@pytest.mark.parametrize("where,argv", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_help_example_runs(where: str, argv: list[str], monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    args = build_parser().parse_args(argv)  # SystemExit (a usage error) fails the test
    command = argv[0]
    if command in RUN_FOR_REAL:
        assert main(argv) == 0, capsys.readouterr()
        return
    if command == "setup":
        return  # it may build for minutes; tests/integration/test_installed_wheel.py covers finding the tools
    # Inputs it names exist: scenario names resolve and validate, files are there.
    from kugeldrill.scenario import load_scenario

    for name in getattr(args, "scenarios", None) or []:
        load_scenario(name, target=getattr(args, "target", None))
    for i, word in enumerate(argv[1:], start=1):
        if argv[i - 1] in OUTPUT_OPTIONS or word.startswith("-") or "/" not in word:
            continue
        if "://" in word or word.startswith(("runs/", ".kugeldrill", "baseline/")):
            continue  # a URL, or a run folder an earlier drill (or the CI job) made
        if word.startswith("../shared/") and not (ROOT.parent / "shared").is_dir():
            pytest.skip(f"no ../shared beside the checkout for {word}")
        assert Path(word).exists(), f"{where}: {word} does not exist"


def test_exit_codes_are_one_table() -> None:
    codes = [line.split()[0] for line in EXIT_CODES.splitlines()[1:] if line[:5].strip().isdigit()]
    assert codes == ["0", "1", "2", "130"]
    docs = (ROOT / "docs" / "cli.md").read_text()
    for code in codes:
        assert f"| {code} |" in docs


def test_one_meaning_per_option_name() -> None:
    """--out is always a run folder, --json always a flag printing JSON, --json-file a path."""
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            where = " ".join(("kugeldrill", *path))
            if "--json" in action.option_strings:
                assert action.nargs == 0, f"{where}: --json prints to stdout; a file is --json-file PATH"
            if "--json-file" in action.option_strings:
                assert action.metavar == "PATH" and "write" in (action.help or ""), where
            if "--out" in action.option_strings:
                assert "run folder" in (action.help or ""), f"{where}: --out must be a run folder"
            if "--processes" in action.option_strings:
                assert "Locust" in (action.help or ""), f"{where}: --processes is Locust's worker processes"
