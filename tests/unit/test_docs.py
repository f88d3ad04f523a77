"""The docs stay in step with the code: every ``docs/<file>.md, <Section>`` citation names a section that exists.

Code, tests and benchmarks cite the docs by section instead of repeating them; a section renamed or a file
removed would leave those pointers dangling without anyone noticing, so this reads them all (fast, no torch).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: Where citations are looked for: the package, the tests, the benchmarks (RESULTS.md too), the README, the docs.
SCANNED = ("autosc", "tests", "benchmarks")
ARCHITECTURE_MAX_WORDS = 1700

#: ``docs/x.md`` then, for a section, ``, Section``, ``, "Section"``, `` (Section)``, `` ("Section")`` or ``
#: "Section"``; anything else after the file name (``]``, ``)``, a quote) cites the file alone.
CITATION = re.compile(r"docs/([\w.-]+\.md)(?P<sep>,\s*\"?|\s*\(\"?|\s+\")?")
#: What may follow a section name in a citation: the end of the citation or of its sentence.
SECTION_END = set(")\".,;:'`") | {""}


def _normalised(text: str) -> str:
    """One line per citation: a citation wrapped over lines (in a comment, a docstring, markdown) is joined."""
    return re.sub(r"\s*\n\s*(?:#+\s+)?", " ", text)


def headings(path: Path) -> list[str]:
    """The ``##`` and ``###`` headings of a markdown file, without backticks (as a citation writes them)."""
    found = re.findall(r"^#{2,3}\s+(.+?)\s*$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [h.replace("`", "") for h in found]


def cited_section(rest: str, names: list[str]) -> str | None:
    """The heading that ``rest`` (the text after the separator) starts with, ending where a citation ends."""
    matches = [
        name
        for name in names
        if rest.lower().startswith(name.lower()) and rest[len(name) : len(name) + 1] in SECTION_END
    ]
    return max(matches, key=len) if matches else None


def citation_problems(text: str, where: str, docs: Path = DOCS) -> list[str]:
    """Each citation in ``text`` whose file or section does not exist, as ``where: docs/x.md, ...: why``."""
    problems = []
    text = _normalised(text)
    for match in CITATION.finditer(text):
        name = match.group(1)
        path = docs / name
        quoted = text[match.start() : match.start() + 80]
        if not path.is_file():
            problems.append(f"{where}: {quoted!r}: docs/{name} does not exist")
            continue
        if match.group("sep") is None:
            continue  # the file alone
        rest = text[match.end() :].replace("`", "")
        if cited_section(rest, headings(path)) is None:
            problems.append(f"{where}: {quoted!r}: no such ## or ### heading in docs/{name}")
    return problems


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for folder in SCANNED:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md") and p.is_file())
    return [p for p in files if p.is_file() and p.resolve() != Path(__file__).resolve()]


def test_every_docs_citation_names_an_existing_section():
    problems = []
    for path in scanned_files():
        problems += citation_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, "citations of the docs that point nowhere:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "see (docs/algorithm.md, No such section) here",
        "see docs/algorithm.md, Training schedule for it",  # a real heading followed by more words
        'see docs/algorithm.md ("Traning")',
        "see (docs/design.md, Training)",  # a file that is gone
        "(docs/architecture.md,\n    # Pipelines)",  # wrapped over two comment lines
    ],
)
def test_a_broken_citation_is_caught(text):
    assert citation_problems(text, "example")


@pytest.mark.parametrize(
    "text",
    [
        "(docs/algorithm.md, Width and budget projection).",
        'docs/algorithm.md, "The run folder")',
        "docs/algorithm.md (Training)'s pitfall",
        'docs/algorithm.md "Training")',
        "(docs/algorithm.md,\n    Freeze, export, measure).",
        "(docs/algorithm.md, AutoTL)",
        "(docs/architecture.md, To add a budget kind)",
        "[docs/algorithm.md](docs/algorithm.md)",
    ],
)
def test_a_good_citation_passes(text):
    assert citation_problems(text, "example") == []


def test_architecture_is_read_in_minutes():
    words = len((DOCS / "architecture.md").read_text(encoding="utf-8").split())
    assert words <= ARCHITECTURE_MAX_WORDS, f"docs/architecture.md has {words} words (at most {ARCHITECTURE_MAX_WORDS})"


def test_paths_named_by_the_new_docs_exist():
    """A module named in the architecture or algorithm doc exists (the old design doc named files long gone)."""
    missing = []
    for name in ("architecture.md", "algorithm.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        for path in sorted(set(re.findall(r"`((?:autosc|benchmarks|tests)/[\w/.-]*\w)`", text))):
            if not (ROOT / path).exists():
                missing.append(f"docs/{name}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)
