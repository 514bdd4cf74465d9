"""The project describes its own contract: ``schema.graphql`` and ``docs/CONTRACT.md``, linked
from the README. Every link in them resolves inside the repository, and every "SPEC §N Name"
that a comment or docstring cites is a section of docs/CONTRACT.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "CONTRACT.md"]
CONTRACT = ROOT / "docs" / "CONTRACT.md"
CITING = ["app", "schema", "db", "tests"]

_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (?P<title>.+)$", re.MULTILINE)
# "SPEC §5 Live progress", "SPEC §4, §5 Authentication", "SPEC §5 "Limits"", "SPEC §5 Uploads,
# Ownership, Audit": the names that follow a "§5 ", up to the end of the clause.
_SECTION_FIVE = re.compile(r"§5 (?P<names>[^)\n;:.]+)")


def anchor(title: str) -> str:
    """The fragment GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {anchor(match["title"]) for match in _HEADING.finditer(document.read_text())}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_resolves_inside_the_repository(document: Path) -> None:
    broken = []
    for match in _LINK.finditer(document.read_text()):
        target = match["target"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        outside = not linked.is_relative_to(ROOT) or not linked.exists()
        if outside or (fragment and linked.suffix == ".md" and fragment not in anchors(linked)):
            broken.append(target)
    assert broken == []


def test_the_readme_points_at_the_contract_not_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    assert "SPEC" not in readme.replace("STUDIO_INTROSPECTION", "")
    assert "[`docs/CONTRACT.md`](docs/CONTRACT.md)" in readme
    assert "[`schema.graphql`](schema.graphql)" in readme


def test_every_section_the_code_cites_is_in_the_contract() -> None:
    contract = CONTRACT.read_text()
    numbered = {int(n) for n in re.findall(r"^## (\d+)\. ", contract, re.MULTILINE)}
    named = [match["title"] for match in re.finditer(r"^### (?P<title>.+)$", contract, re.M)]
    missing = []
    for folder in CITING:
        for source in sorted((ROOT / folder).rglob("*.py")):
            if source == Path(__file__).resolve():  # its examples are not citations
                continue
            for line in source.read_text().splitlines():
                if "SPEC §" not in line:
                    continue
                missing += [
                    f"{source.relative_to(ROOT)}: §{number}"
                    for number in map(int, re.findall(r"§(\d+)", line))
                    if number not in numbered
                ]
                for match in _SECTION_FIVE.finditer(line):
                    for name in match["names"].split(","):
                        name = name.strip().strip('"')
                        if name[:1].isupper() and not any(name.startswith(n) for n in named):
                            missing.append(f"{source.relative_to(ROOT)}: §5 {name}")
    assert missing == []
