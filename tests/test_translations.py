"""The Chinese edition (tools/translations.py): complete, current, made only from the catalogues, and the same lab.

Every Markdown cell of every English notebook, every block of README.md and docs/*.md and every message of the
exercise checks has a Chinese translation that is not fuzzy; the Chinese files are exactly what
`make translations` writes from the catalogues; a Chinese notebook has the English code and outputs (the lab's own
lines in Chinese); and a
changed English sentence fails a test that names the notebook and the cell until it is translated again.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess

import polib
import pytest

import translations as tr
from labutils import i18n
from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS, ZH_NOTEBOOKS

LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _catalogue(path):
    return tr.read_catalogue(tr.catalogue_of(path))


@pytest.mark.parametrize("path", tr.sources(), ids=lambda p: p.name)
def test_every_english_text_has_a_current_chinese_translation(path):
    assert tr.catalogue_of(path).is_file(), f"no catalogue for {path.name}: run `make translations`"
    assert not tr.problems(path, _catalogue(path)), "\n".join(tr.problems(path, _catalogue(path)))


def test_every_message_of_the_checks_has_a_chinese_translation_with_the_same_values():
    found = tr.message_problems(tr.read_catalogue(i18n.CATALOGUE))
    assert not found, "\n".join(found)
    assert len(i18n.extract()) > 300, "the checks' messages are found where they are written"


def test_the_chinese_files_are_exactly_what_make_translations_writes():
    counts = tr.update(write=False)
    assert counts["written"] == 0, f"edited by hand, or out of date: {counts['stale']}; run `make translations`"
    assert counts["fuzzy"] == counts["untranslated"] == 0 and counts["usable"] == counts["entries"] > 700


def test_a_hand_edited_chinese_file_is_found_and_named(tmp_path, monkeypatch):
    english = REPO_ROOT / "notebooks" / "03_saving.ipynb"
    copy = tmp_path / "03_saving.zh-CN.ipynb"
    shutil.copy(tr.translated_name(english), copy)
    monkeypatch.setattr(tr, "sources", lambda: [english])
    monkeypatch.setattr(tr, "translated_name", lambda path: copy)
    assert tr.update(write=False)["written"] == 0, "the copy is what make translations writes"
    text = copy.read_text(encoding="utf-8")
    copy.write_text(text.replace("一个文件里放多个模型", "一个文件里放几个模型"), encoding="utf-8")
    counts = tr.update(write=False)
    assert counts["written"] == 1 and counts["stale"] == ["03_saving.zh-CN.ipynb"]


def test_every_english_notebook_has_its_chinese_edition_and_no_other():
    assert [tr.translated_name(p) for p in NOTEBOOKS] == ZH_NOTEBOOKS
    assert tr.sources()[:len(NOTEBOOKS)] == NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chinese_notebook_has_the_english_code_and_outputs(path):
    english = json.loads(path.read_text(encoding="utf-8"))
    chinese = json.loads(tr.translated_name(path).read_text(encoding="utf-8"))
    cells = [(c["id"], c["cell_type"]) for c in english["cells"]]
    assert [(c["id"], c["cell_type"]) for c in chinese["cells"]] == cells, f"{path.name}: other cells"
    widgets = copy.deepcopy(english)
    tr._translate_widgets(widgets, i18n.table(tr.read_catalogue(i18n.CATALOGUE)))  # their labels, in Chinese
    assert chinese["metadata"] == {**widgets["metadata"], "language": "zh-CN"}
    switched = 0
    for en, zh in zip(english["cells"], chinese["cells"]):
        assert zh["metadata"] == en["metadata"], f"{path.name} cell {en['id']}: metadata"
        if en["cell_type"] == "code":
            source = "".join(en["source"])
            if "setup" in en["metadata"].get("tags", []):
                source, switched = source.rstrip("\n") + "\n" + tr.SWITCH, switched + 1
            assert "".join(zh["source"]) == source, f"{path.name} cell {en['id']}: the code differs"
            assert zh["execution_count"] == en["execution_count"], f"{path.name} cell {en['id']}: another run"
            # the outputs: the English ones, the lab's own lines in Chinese (tests/test_lab_output_i18n.py)
        else:
            assert i18n.CHINESE.search("".join(zh["source"])), f"{path.name} cell {en['id']}: not in Chinese"
    assert switched == 1, f"{path.name}: one setup cell, which switches the checks to Chinese"


def test_changing_one_english_sentence_fails_naming_the_notebook_and_the_cell_until_it_is_translated(tmp_path):
    english = REPO_ROOT / "notebooks" / "03_saving.ipynb"
    copy = tmp_path / english.name
    shutil.copy(english, copy)
    po, catalogue = _catalogue(english), "translations/zh-CN/notebooks/03_saving.po"
    assert tr.problems(copy, po, catalogue) == [], "the copy, unchanged, is translated"
    nb = json.loads(copy.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["id"] == "c21")
    old = "".join(cell["source"])
    new = old.replace("Several models in one file work the same way", "Several models share one file the same way")
    assert new != old
    cell["source"] = new.splitlines(keepends=True)
    copy.write_text(json.dumps(nb), encoding="utf-8")

    found = tr.problems(copy, po, catalogue)
    assert found == [(f"03_saving.ipynb cell c21: its English is not in {catalogue} (it changed or is new): run "
                     "`make translations`, then translate the entry it marks")]

    merged = tr.merge(po, tr.segments_of(copy))  # what `make translations` does to the catalogue
    entry = next(e for e in merged if e.msgctxt == "c21")
    assert "fuzzy" in entry.flags and entry.previous_msgid == old and entry.msgid == new
    assert entry.msgstr == next(e for e in po if e.msgctxt == "c21").msgstr, "the old translation is kept"
    found = tr.problems(copy, merged, catalogue)
    assert found == [(f"03_saving.ipynb cell c21: its English changed since it was translated: update the fuzzy entry "
                     f"in {catalogue} and remove its fuzzy flag")]
    written = json.loads(tr.translate_notebook(copy, merged))
    text = {c["id"]: "".join(c["source"]) for c in written["cells"]}
    assert text["c21"] == new, "a fuzzy translation is not used: the English stands in"
    assert i18n.CHINESE.search(text["c19"]), "the other cells stay translated"

    entry.msgstr, entry.flags = entry.msgstr.replace("同样的做法", "同样的做法。"), []
    assert tr.problems(copy, merged, catalogue) == []
    assert "".join(json.loads(tr.translate_notebook(copy, merged))["cells"][0]["source"]).startswith("# 03 · 保存")


def test_a_new_cell_arrives_untranslated_and_a_new_message_too(tmp_path):
    english = REPO_ROOT / "notebooks" / "00_welcome.ipynb"
    nb = json.loads(english.read_text(encoding="utf-8"))
    nb["cells"].insert(3, {"cell_type": "markdown", "id": "new1", "metadata": {}, "source": ["A brand-new cell."]})
    copy = tmp_path / english.name
    copy.write_text(json.dumps(nb), encoding="utf-8")
    merged = tr.merge(_catalogue(english), tr.segments_of(copy))
    entry = next(e for e in merged if e.msgctxt == "new1")
    assert entry.msgstr == "" and not entry.flags
    catalogue = "translations/zh-CN/notebooks/00_welcome.po"
    assert tr.problems(copy, merged, catalogue) == [
        f"00_welcome.ipynb cell new1: not translated yet: fill in its msgstr in {catalogue}"]

    messages = tr.read_catalogue(i18n.CATALOGUE)
    segment = i18n.Segment("the check has a brand-new hint.", None, "labutils/checks/nb00_welcome.py:ex00_1")
    assert tr.message_problems(messages, [segment]) == [
        ("labutils/checks/nb00_welcome.py:ex00_1: 'the check has a brand-new hint.' is missing in "
        "labutils/locale/zh-CN.po: run `make translations`, then translate it")]


def test_a_translated_message_must_keep_its_values():
    po = tr.new_catalogue()
    po.append(polib.POEntry(msgid="return a dict, not {0}.", msgstr="请返回一个字典。"))
    po.append(polib.POEntry(msgid="the checkpoint lacks {0}.", msgstr="检查点缺少 {0}。"))
    segments = [i18n.Segment(e.msgid, None, "here") for e in po]
    assert tr.message_problems(po, segments) == [
        ("here: the translation of 'return a dict, not {0}.' has other placeholders or braces than its English: "
        "'请返回一个字典。'")]


def test_the_messages_are_found_however_the_checks_write_them(tmp_path):
    (tmp_path / "nb99_demo.py").write_text(
        "def ex99_1(answer):\n"
        "    _expect(answer, 'a plain hint.')\n"
        "    _expect(answer, f'got {answer!r} for {len(answer)} items.')\n"
        "    hint = 'first part.' + (' and a second.' if answer else '')\n"
        "    raise _Wrong(hint)\n"
        "    return 'all right.' if answer else f'{answer}'\n")
    found = i18n.extract(tmp_path, package=None)
    assert sorted((s.msgid, s.values) for s in found) == [
        ("a plain hint.", ()), ("all right.", ()), ("first part.", ()), ("first part. and a second.", ()),
        ("got {0} for {1} items.", ("{answer!r}", "{len(answer)}"))]
    assert {s.where for s in found} == {"labutils/checks/nb99_demo.py:ex99_1"}


def test_the_rest_of_labutils_gives_only_what_it_marks_for_translation(tmp_path):
    (tmp_path / "checks").mkdir()
    (tmp_path / "demo.py").write_text(
        "COLUMNS = [N_('key'), 'not marked at all']\n"
        "def load(path, n):\n"
        "    print('a line nobody marked')\n"
        "    what, fix = N_(f'a {n}'), 'store plain values'\n"
        "    label = translate(N_(f'mean of {n} batches'))\n"
        "    raise CheckpointCorruptError(path, f'it is {n} bytes short', fix=N_('save it again'))\n"
        "FORMAT = Format('demo', 'a demo file', 'what a demo file holds', 'demo.load(path)',\n"
        "                caution='only if you trust it')\n"
        "TEMPLATE = N_('{0}: {1}. Fix: {2}')\n")
    found = i18n.extract(tmp_path / "checks", package=tmp_path)
    assert sorted(s.msgid for s in found) == [
        "a demo file", "it is {0} bytes short", "key", "mean of {0} batches", "only if you trust it", "save it again",
        "store plain values", "what a demo file holds", "{0}: {1}. Fix: {2}"]  # not "a {0}": nearly all value
    assert {s.where for s in found if s.msgid == "key"} == {"labutils/demo.py:module"}


def _without_comments(block: str) -> str:
    """A code block with the text of each of its comments taken out: its code, to compare across the editions."""
    lines = block.split("\n")
    for number, column, text in reversed(tr.code_comments(block, words_only=False)):
        lines[number] = lines[number][:column]
    return "\n".join(lines)


def test_markdown_blocks_give_the_text_back_and_only_the_comments_of_code_are_translated():
    translated = 0
    for name in tr.DOCUMENTS:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert "".join(separator + block for separator, block in tr.markdown_blocks(text)) == text, name
        english_code = re.findall(r"^```.*?^```", text, re.M | re.S)
        chinese = tr.translated_name(REPO_ROOT / name).read_text(encoding="utf-8")
        chinese_code = re.findall(r"^```.*?^```", chinese, re.M | re.S)
        assert [_without_comments(b) for b in chinese_code] == [_without_comments(b) for b in english_code], \
            f"{name}: its code blocks differ in more than their comments"
        translated += sum(b != e for b, e in zip(chinese_code, english_code))
        for block in chinese_code:  # every comment of a code block is Chinese, or only code itself
            assert not [t for _, _, t in tr.code_comments(block) if not i18n.CHINESE.search(t)
                        and re.search(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}", t)], f"{name}: English comments left"
    assert translated > 20, "the cheat sheet's code blocks carry Chinese comments"
    assert tr.markdown_blocks("a\n\n```\nx\n\ny\n```\n\n\nb\n") == [
        ("", "a\n"), ("\n", "```\nx\n\ny\n```\n"), ("\n\n", "b\n")]


def test_a_comment_is_found_by_python_and_a_changed_line_of_code_is_not_hidden_by_it():
    block = '```python\nx = f("a # b")  # keep it\n# a whole line\n```'
    assert tr.code_comments(block) == [(1, 18, "keep it"), (2, 2, "a whole line")]
    chinese = tr._translate_comments(block, {(None, "keep it"): "保留它"})
    assert chinese == '```python\nx = f("a # b")  # 保留它\n# a whole line\n```'
    assert _without_comments(chinese) == _without_comments(block)
    assert _without_comments(chinese.replace('"a # b"', '"a # c"')) != _without_comments(block)  # must say no


def _zh_files():
    return [*ZH_NOTEBOOKS, *(tr.translated_name(REPO_ROOT / name) for name in tr.DOCUMENTS)]


# The only links from the Chinese edition to an English file that has a Chinese one: "this page in English"
BACK_TO_ENGLISH = {("README.zh-CN.md", "README.md"), ("INSTRUCTOR.zh-CN.md", "INSTRUCTOR.md")}


def english_links(path) -> list[str]:
    """The links of a Chinese file to an English notebook or document whose Chinese edition exists."""
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text("utf-8"))["cells"])
    else:
        text = path.read_text("utf-8")
    found = []
    for _, target in LINK.findall(text):
        file = target.partition("#")[0]
        if file and not re.match(r"[a-z]+:", file) and (path.name, file) not in BACK_TO_ENGLISH:
            destination = (path.parent / file).resolve()
            if destination.suffix in (".md", ".ipynb") and tr.translated_name(destination).exists():
                found.append(target)
    return found


@pytest.mark.parametrize("path", _zh_files(), ids=lambda p: p.name)
def test_the_chinese_edition_links_to_the_chinese_edition(path):
    assert not english_links(path), f"{path.name} links to English files: {english_links(path)}"


def test_a_link_to_an_english_notebook_is_found(tmp_path):
    page = tmp_path / "notebooks" / "page.zh-CN.md"
    page.parent.mkdir()
    page.write_text("[保存](03_saving.ipynb)，[加载](04_loading.zh-CN.ipynb)，[外部](https://pytorch.org)")
    (tmp_path / "notebooks" / "03_saving.ipynb").write_text("{}")
    (tmp_path / "notebooks" / "03_saving.zh-CN.ipynb").write_text("{}")
    assert english_links(page) == ["03_saving.ipynb"]


def test_the_readme_links_the_chinese_edition_in_its_first_lines_and_back():
    assert "(README.zh-CN.md)" in "".join((REPO_ROOT / "README.md").read_text().splitlines(keepends=True)[:4])
    chinese = (REPO_ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "[English](README.md)" in "".join(chinese.splitlines(keepends=True)[:4])
    assert "make lab LAB_LANG=zh-CN" in chinese and "make translations" in chinese


def test_make_translations_and_make_notebooks_write_the_chinese_edition():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^translations: setup\n\t\$\(BIN\)/python tools/translations.py$", makefile, re.M)
    notebooks = re.search(r"^notebooks: data\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert notebooks.rstrip().endswith("tools/translations.py")
    dry = subprocess.run(["make", "-n", "--no-print-directory", "notebooks"], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    run = next(line for line in dry.splitlines() if "-m labutils.runner" in line).split()
    assert run[run.index("labutils.runner") + 1:] == [p.relative_to(REPO_ROOT).as_posix() for p in NOTEBOOKS], dry
