"""The README and the pages in docs/ are read from a checkout or on the repository's site: every link
between them must lead somewhere, and the README must keep the organiser's path and the test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import errors

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) outside code spans; an address with a scheme is not ours to check.
LINK = re.compile(r"(?<!`)\[[^\]]*\]\(([^)\s]+)\)")


def _without_code(text: str) -> str:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """The anchors a heading gets on the repository's site: lower case, punctuation dropped except - and _,
    spaces as hyphens."""
    headings = re.findall(
        r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M), re.M
    )
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_between_the_pages_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    links = LINK.findall(_without_code(page.read_text(encoding="utf-8")))
    broken = []
    for target in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        outside = not linked.exists() or REPO not in (linked, *linked.parents)
        if outside or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)}: links that lead nowhere: {broken}"
    if page.name == "README.md":
        assert len(links) >= 8, "the README links to the pages in docs/"


def test_the_readme_starts_with_the_organisers_path_and_names_the_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", readme, re.M)
    assert headings[:6] == [
        "Install",
        "A first meeting",
        "How long it takes",
        "What the exit code means",
        "What to agree with the official beforehand",
        "More",
    ]
    for command in ("make demo", "hearing models get", "hearing run", "hearing review", "hearing render"):
        assert f"`{command}" in readme or f"{command} " in readme, command

    # Every code the program can end with, from the one place that maps them, is explained, and no other.
    def subclasses(cls: type[errors.PipelineError]) -> list[type[errors.PipelineError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    known = {errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_REJECTED, errors.EXIT_DRAFT}
    known |= {c.exit_code for c in subclasses(errors.PipelineError)}
    known.add(errors.exit_code_for(KeyboardInterrupt()))
    codes = [int(c) for c in re.findall(r"^\| (\d+) \|", readme, re.M)]
    assert codes == sorted(known)
    assert "`make test`" in readme  # .ci/run runs the README's test command
    for page in (REPO / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"the README's More does not link {page.name}"
