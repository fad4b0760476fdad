"""tools/glossary.py: docs/GLOSSARY.md and its TERMS agree, and every notebook links its first use of each term."""
from __future__ import annotations

import re
import runpy

import nbformat

from labutils.paths import REPO_ROOT

GLOSSARY = runpy.run_path(str(REPO_ROOT / "tools" / "glossary.py"), run_name="glossary")


def test_each_notebooks_first_use_of_a_term_links_to_the_glossary(capsys):
    assert GLOSSARY["main"](["--check"]) == 0, capsys.readouterr().err


def test_every_entry_has_a_chinese_term_and_the_articles_words_are_marked():
    text = (REPO_ROOT / "docs" / "GLOSSARY.md").read_text(encoding="utf-8")
    entries = text.split("\n### ")[1:]
    assert len(entries) == len(GLOSSARY["TERMS"]) >= 30
    assert all("\n中文：" in entry for entry in entries), [e.splitlines()[0] for e in entries if "\n中文：" not in e]
    article = (REPO_ROOT.parent / "shared" / "source-article")
    words = [word.split("：")[-1] for entry in entries for word in re.findall(r"(\S+?) \*\(文\)\*", entry)]
    if article.is_dir():  # the article the lab follows, where this checkout has it
        source = "".join(p.read_text(encoding="utf-8") for p in article.glob("*.txt"))
        assert all(word in source for word in words), [w for w in words if w not in source]
    assert {"序列化", "反序列化", "断点续训"} <= set(words)


def test_an_unlinked_first_use_and_a_missing_entry_are_named(tmp_path, monkeypatch, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## The `state_dict`\nA `state_dict` holds tensors; a [pickle]"
                                              "(../docs/GLOSSARY.md#pickle) does not need to."),
                nbformat.v4.new_markdown_cell("Every `state_dict` after the first needs no link.")]
    missing = GLOSSARY["missing_links"](nb)
    assert [(cell, term) for cell, _, _, term in missing] == [(0, "state_dict")]  # not the heading, not the pickle
    assert GLOSSARY["add_links"](nb) == 1 and GLOSSARY["missing_links"](nb) == []
    assert "A [`state_dict`](../docs/GLOSSARY.md#state_dict) holds" in nb.cells[0].source
    assert nb.cells[0].source.startswith("## The `state_dict`\n")
    monkeypatch.setitem(GLOSSARY["main"].__globals__["TERMS"], "a term nobody wrote", r"\bnobody\b")
    assert GLOSSARY["main"](["--check"]) == 1
    assert "only in TERMS: ['a term nobody wrote']" in capsys.readouterr().err
