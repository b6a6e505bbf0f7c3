"""The repository's docs are self-contained: a reader of a clone can follow every citation.

What the project needs to know about the real Kugelpos, Dapr and the tools we measure
against is written into its own docs (docs/kugelpos-facts.md, docs/dapr-contract.md); the
notes it was first gathered in live outside the repository and must not be cited. So, over
every tracked text file:

* no citation of the outside notes (their file names, or the folder they live in);
* every Markdown link either is an http(s) URL or resolves to a file or folder inside the
  repository;
* every `kugelpos-facts.md §X` / `Surprise N` citation names a section that exists.

ALLOWED lists files that may still break a rule, with the reason; an entry that no longer
breaks anything fails too, so the list only shrinks.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "docs" / "kugelpos-facts.md"

#: Path (or folder prefix ending in "/") -> (rules it may break, why).
_NATIVE_LANE = "edited in parallel by the native-runner work; its citations move to docs/kugelpos-facts.md next"
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "kugeldrill/stack/native/": (frozenset({"outside-notes"}), _NATIVE_LANE),
    "kugeldrill/deploy/": (frozenset({"outside-notes"}), _NATIVE_LANE),
    "docs/findings.md": (frozenset({"outside-notes"}), _NATIVE_LANE),
    "tests/integration/test_native_kugelpos.py": (frozenset({"outside-notes"}), _NATIVE_LANE),
    "README.md": (frozenset({"missing-target"}),
                  "links deploy/ci/, which the Kugelpos nightly work adds next"),
}

# Built so that this file does not match them itself.
_OUTSIDE_NOTES = re.compile(r"shared/+research|(?<![\w-])(?:kugelpos|dapr|anchors)\.md\b")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_SECTION = r"(?:§\s?\d+(?:\.\d+)?(?:\s?[–-]\s?§?\d+(?:\.\d+)?)?|Surprises?\s\d+(?:\s?[–-]\s?\d+)?)"
_FACTS_CITATION = re.compile(r"kugelpos-facts\.md[\s#]*(" + _SECTION + r"(?:(?:,\s*|\s+and\s+)" + _SECTION + r")*)")


def _tracked_texts() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    texts = {}
    for name in names.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not text
    return texts


def _allowed(name: str, rule: str) -> bool:
    for key, (rules, _why) in ALLOWED.items():
        if (name == key or (key.endswith("/") and name.startswith(key))) and rule in rules:
            return True
    return False


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _link_targets(text: str) -> list[tuple[int, str]]:
    """(offset, target) of every Markdown link outside code blocks and code spans."""
    blanked = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    blanked = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), blanked)
    found = [(m.start(1), m.group(1)) for m in _INLINE_LINK.finditer(blanked)]
    found += [(m.start(1), m.group(1)) for m in _REF_DEFINITION.finditer(blanked)]
    return found


def link_problem(source: str, target: str, root: Path = ROOT) -> tuple[str, str] | None:
    """(rule, message) when a link in file `source` (repository-relative) leaves the repository
    or points at nothing; None when it is fine."""
    if re.match(r"https?://", target, re.I) or target.startswith("#"):
        return None
    if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("/", "\\")):
        return "leaves-repo", f"link {target!r} leaves the repository (only http(s) URLs may)"
    path = unquote(re.split(r"[#?]", target, maxsplit=1)[0])
    if not path:
        return None
    resolved = (root / source).parent.joinpath(path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return "leaves-repo", f"link {target!r} leaves the repository (only http(s) URLs may)"
    if not resolved.exists():
        return "missing-target", f"link {target!r} points at a file that does not exist"
    return None


def _violations(texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(file, rule, message) for every break of the rules above, allowed or not."""
    found = []
    for name, text in texts.items():
        for m in _OUTSIDE_NOTES.finditer(text):
            found.append((name, "outside-notes",
                          f"{name}:{_line(text, m.start())}: cites {m.group(0)!r}, outside the repository; "
                          f"cite docs/kugelpos-facts.md or docs/dapr-contract.md instead"))
        if name.endswith(".md"):
            for offset, target in _link_targets(text):
                problem = link_problem(name, target)
                if problem:
                    found.append((name, problem[0], f"{name}:{_line(text, offset)}: {problem[1]}"))
    return found


def _facts_sections() -> tuple[set[str], set[str]]:
    """(numbered sections, Surprise numbers) that docs/kugelpos-facts.md has."""
    text = FACTS.read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))
    _, _, surprises_part = text.partition("## Surprises")
    surprises = set(re.findall(r"^(\d+)\. ", surprises_part, re.M))
    return sections, surprises


def _cited(citation: str) -> list[tuple[str, str]]:
    """('section'|'surprise', number) for each end of every range in a citation text."""
    out = []
    for part in re.findall(_SECTION, citation):
        kind = "surprise" if part.startswith("Surprise") else "section"
        out += [(kind, n) for n in re.findall(r"\d+(?:\.\d+)?", part)]
    return out


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return _tracked_texts()


def test_no_file_cites_notes_outside_the_repository_or_links_out_of_it(texts):
    bad = [msg for name, rule, msg in _violations(texts) if not _allowed(name, rule)]
    assert not bad, "\n".join(bad)


def test_every_allow_list_entry_is_still_needed(texts):
    used = {(key, rule) for name, rule, _ in _violations(texts) for key in ALLOWED
            if name == key or (key.endswith("/") and name.startswith(key))}
    stale = [f"{key}: {rule}" for key, (rules, _) in ALLOWED.items() for rule in rules if (key, rule) not in used]
    assert not stale, "remove from ALLOWED (nothing breaks these any more):\n" + "\n".join(stale)


def test_docs_relative_links_all_resolve(texts):
    docs = {name: text for name, text in texts.items() if name.startswith("docs/") and name.endswith(".md")}
    assert "docs/kugelpos-facts.md" in docs and "docs/dapr-contract.md" in docs
    bad = [f"{name}: {problem[1]}" for name, text in docs.items() for _, target in _link_targets(text)
           if (problem := link_problem(name, target)) and not _allowed(name, problem[0])]
    assert not bad, "\n".join(bad)


def test_every_facts_citation_names_a_section_that_exists(texts):
    sections, surprises = _facts_sections()
    assert {"1.1", "3.3", "5.2", "6.1", "6.3"} <= sections and {"1", "2", "6", "13"} <= surprises
    bad = []
    for name, text in texts.items():
        for m in _FACTS_CITATION.finditer(text):
            for kind, number in _cited(m.group(1)):
                if number not in (surprises if kind == "surprise" else sections):
                    bad.append(f"{name}:{_line(text, m.start())}: {m.group(1)!r} — docs/kugelpos-facts.md "
                               f"has no {'Surprise' if kind == 'surprise' else '§'}{number}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(("target", "rule"), [
    ("../../shared/seed/spec.md", "leaves-repo"),
    ("/etc/passwd", "leaves-repo"),
    ("file:///tmp/x.md", "leaves-repo"),
    ("nowhere.md", "missing-target"),
    ("dapr-contract.md#4-how-the-apps-answer-is-read", None),
    ("https://github.com/kugel-masa/kugelpos-backend", None),
    ("#top", None),
])
def test_link_rules(target, rule):
    problem = link_problem("docs/guide.md", target)
    assert (problem[0] if problem else None) == rule


def test_the_checks_see_what_they_must():
    """The patterns catch what they exist for (so a passing run is not a blind one)."""
    sample = "see kugelpos" + ".md §5.2 and ../shared" + "/research/x and [a](../../out.md) `[b](skip.md)`"
    assert len(_OUTSIDE_NOTES.findall(sample)) == 2
    assert [t for _, t in _link_targets(sample)] == ["../../out.md"]
    assert _cited("§5.2–5.7, Surprises 1–3") == [("section", "5.2"), ("section", "5.7"),
                                                 ("surprise", "1"), ("surprise", "3")]
    assert _FACTS_CITATION.search("(docs/kugelpos-facts.md\n# §5.7: x").group(1) == "§5.7"
