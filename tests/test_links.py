"""Every local link in README.md, docs/ and the notebooks' Markdown leads somewhere: the file exists and, for a
link with #anchor, so does the heading."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS, ZH_NOTEBOOKS, read

LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n\n".join(cell.source for cell in read(path).cells if cell.cell_type == "markdown")
    return path.read_text()


def anchors(path: Path) -> set[str]:
    """The anchors a heading of `path` gets: GitHub's (lower case, punctuation dropped, spaces to hyphens) and,
    in a notebook, JupyterLab's too (spaces to hyphens)."""
    def github(text: str) -> str:
        return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")

    found = set()
    for heading in HEADING.findall(markdown_of(path)):
        text = re.sub(r"[`*_]", "", heading).strip()
        found.add(github(text))
        found.add(github(re.sub(r"[`*]", "", heading)))  # an underscore inside a word is kept: #state_dict
        if path.suffix == ".ipynb":
            found.add(text.replace(" ", "-"))
    return found


def broken_links(path: Path) -> list[str]:
    """The links in `path` that lead nowhere, each as `target (why)`."""
    broken = []
    for target in LINK.findall(markdown_of(path)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... (no network in the tests)
            continue
        file, _, anchor = target.partition("#")
        destination = (path.parent / file).resolve() if file else path
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix in (".md", ".ipynb") and anchor not in anchors(destination):
            broken.append(f"{target} (no heading #{anchor} in {destination.name})")
    return broken


SOURCES = [REPO_ROOT / "README.md", REPO_ROOT / "README.zh-CN.md", *sorted((REPO_ROOT / "docs").glob("*.md")),
           *sorted((REPO_ROOT / "notebooks").glob("**/*.md")), *NOTEBOOKS, *ZH_NOTEBOOKS]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_local_link_leads_to_a_file_and_heading(path):
    assert not broken_links(path), f"{path.name}: {broken_links(path)}"


def test_a_missing_file_or_heading_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Saving, then loading\n\n### state_dict\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md) [ok](other.md#saving-then-loading) [web](https://example.org/x#y)\n"
                    "[ok](other.md#state_dict) [gone](missing.md) [wrong](other.md#loading) [self](#nowhere)\n"
                    "![img](other.md) [wrong](other.md#state-dict)\n")
    assert broken_links(page) == ["missing.md (no such file)", "other.md#loading (no heading #loading in other.md)",
                                  "#nowhere (no heading #nowhere in page.md)",
                                  "other.md#state-dict (no heading #state-dict in other.md)"]
