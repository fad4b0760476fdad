"""The lab's own output in Chinese (issue 40, item 4): after labutils.set_language("zh-CN"), which every Chinese
notebook's setup cell calls, `diagnose` tables, the lab's errors, its widgets and its progress bar answer in Chinese
from labutils/locale/zh-CN.po; the saved outputs of the Chinese notebooks say what a Chinese run prints; and each
edition's file browser shows that edition's notebooks only. In English, nothing changes.
"""
from __future__ import annotations

import copy
import fnmatch
import json
import pickle
import re

import lab  # tools/lab.py
import pytest
import torch
import translations as tr  # tools/translations.py

import labutils
from labutils import i18n
from labutils.checkpoint import CheckpointNotFoundError, load_checkpoint
from labutils.partial import KeyMismatchError, diagnose, load_partial
from notebook_files import NOTEBOOK_DIR, NOTEBOOKS, ZH_NOTEBOOKS

CJK = i18n.CHINESE


@pytest.fixture
def chinese():
    labutils.set_language("zh-CN")
    try:
        yield
    finally:
        labutils.set_language("en")


def _prefixed(prefix: str) -> dict:
    return {prefix + key: value for key, value in labutils.Net().state_dict().items()}


# --- what is translated ------------------------------------------------------------------------------------------

def test_the_catalogue_holds_what_the_lab_marks_and_not_what_it_does_not():
    found = {segment.msgid: segment.where for segment in i18n.extract()}
    assert found["likely cause"] == "labutils/partial.py:module"
    assert found["saved from nn.DataParallel or DistributedDataParallel"] == "labutils/partial.py:module"
    assert found["{0}: {1}. Fix: {2}"] == "labutils/errors.py:CheckpointError"  # a template, filled part by part
    assert found["a TorchScript archive (torch.jit.save)"] == "labutils/formats.py:module"
    assert found["Fine-tune and add a bar"] == "labutils/widgets.py:LayerPicker"
    assert "it is empty (0 bytes): the save that wrote it did not finish" in found  # a problem given to an error
    # must say no: text nobody marked (labutils inspect's headings), and a template that is almost all value
    assert not [msgid for msgid in found if msgid.startswith("  what it is")]
    assert "a {0}" not in found


# --- diagnose, errors, widgets ---------------------------------------------------------------------------------------

def test_a_diagnose_table_shows_chinese_and_keeps_its_english_columns_for_code(chinese):
    table = diagnose(labutils.Net(), _prefixed("module."))
    shown, html = repr(table.head(2)), table.head(2)._repr_html_()
    for text in (shown, html):
        assert "可能的原因" in text and "解决办法" in text and "缺失" in text, text[:400]
        assert "likely cause" not in text and "saved from nn.DataParallel" not in text
        assert "conv1.weight" in text and "consume_prefix_in_state_dict_if_present(state_dict, 'module.')" in text
    assert list(table.columns)[4] == "likely cause"  # code written against the table reads it in either edition
    assert table["likely cause"].iloc[0] == "saved from nn.DataParallel or DistributedDataParallel"


def test_a_diagnose_table_stays_english_by_default():
    text = repr(diagnose(labutils.Net(), _prefixed("module.")).head(2))
    assert "likely cause" in text and not CJK.search(text)


def test_a_checkpoint_error_reads_in_chinese_and_keeps_its_english_parts(chinese, tmp_path):
    torch.jit.save(torch.jit.script(labutils.Net()), tmp_path / "scripted.pt")
    with pytest.raises(labutils.checkpoint.NotACheckpointError) as caught:
        load_checkpoint(tmp_path / "scripted.pt")
    err = caught.value
    text = str(err)
    assert text.startswith(f"{err.where}：它是 TorchScript 归档") and "解决办法：用 " in text, text
    # the call that opens it holds ", ": the Chinese keeps it whole, and its caution after it
    assert 'torch.jit.load(path, map_location="cpu")' in text and "TorchScript 代码" in text.split("——")[1]
    assert "Fix:" in err.message and not CJK.search(err.message + err.problem + err.fix)
    assert str(pickle.loads(pickle.dumps(err))) == text  # as a DataLoader worker's error reaches the notebook


def test_a_checkpoint_error_stays_english_by_default(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as caught:
        load_checkpoint(tmp_path / "nothing.pt")
    assert str(caught.value) == caught.value.message and "no such file. Fix: check the name" in str(caught.value)
    assert not CJK.search(str(caught.value))


def test_a_refused_partial_load_reads_in_chinese_with_its_keys_as_they_are(chinese):
    with pytest.raises(KeyMismatchError) as caught:
        load_partial(labutils.Net(), _prefixed("net."))
    text = str(caught.value)
    assert text.startswith("strict=False 能加载 10 个条目中的 0 个") and "缺失的键 conv1.weight" in text, text
    assert "多余的键 net.conv1.weight" in text and "可能的原因" in text
    assert "另有 6 个" in text and "Fix" not in text and "unexpected" not in text
    labutils.set_language("en")
    assert str(caught.value).startswith("strict=False would load 0 of 10 entries") and not CJK.search(str(caught.value))


def test_the_widgets_label_themselves_in_the_lab_language(chinese):
    from labutils.widgets import LayerExplorer, LayerPicker

    picker = LayerPicker(["conv1", "fc3"], lambda load, freeze: 0.5)
    assert CJK.search(picker.button.description), picker.button.description
    assert CJK.search(picker.widget.children[0].children[0].children[0].value)
    assert LayerExplorer(labutils.Net()).dropdown.description == i18n.translate("entry") != "entry"
    labutils.set_language("en")
    english = LayerPicker(["conv1"], lambda load, freeze: 0.5)
    assert english.button.description == "Fine-tune and add a bar" and LayerExplorer(labutils.Net()).dropdown \
        .description == "entry"


# --- the saved outputs of the Chinese notebooks -----------------------------------------------------------------------

def _messages() -> tuple:
    return i18n.table(tr.read_catalogue(i18n.CATALOGUE))


def test_a_saved_output_gets_the_lab_lines_in_chinese_and_leaves_torch_alone():
    messages = _messages()
    text = ("✗ ex04_1: strip_prefix returned None: return the new dict.\n"
            "labutils.checkpoint.CheckpointCorruptError: x.pt: it is empty (0 bytes): the save that wrote it did "
            "not finish. Fix: the file is incomplete or damaged: restore it from a copy, or save it again from the "
            "model\n"
            "(waiting) this part runs your answers to ex12_1, ex12_2: make their checks say ✓, then run it again\n"
            "RuntimeError: Error(s) in loading state_dict for Net:\n"
            "accuracy 98.1%")
    lines = tr.translate_output_text(text, messages).split("\n")
    assert lines[0].startswith("✗ ex04_1: ") and CJK.search(lines[0]), lines[0]
    assert lines[1].startswith("labutils.checkpoint.CheckpointCorruptError: x.pt：") and "解决办法" in lines[1]
    assert lines[2].startswith("（等待中）") and "ex12_1, ex12_2" in lines[2], lines[2]
    assert lines[3:] == text.split("\n")[3:]  # torch's own error and the lab's numbers stay as they are


def test_the_chinese_04_shows_diagnose_and_the_checks_in_chinese_and_the_english_04_does_not():
    zh = json.loads((NOTEBOOK_DIR / "04_loading.zh-CN.ipynb").read_text(encoding="utf-8"))
    en = json.loads((NOTEBOOK_DIR / "04_loading.ipynb").read_text(encoding="utf-8"))

    def html(nb):
        return "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"]
                       for o in c.get("outputs", []) if "diagnose(" in "".join(c["source"]))

    assert "<th>可能的原因</th>" in html(zh) and "likely cause" not in html(zh)
    assert "<th>likely cause</th>" in html(en) and not CJK.search(html(en))


@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_every_line_the_lab_printed_in_a_chinese_notebook_is_chinese(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    english = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).split("\n"):
                match = tr.CHECK_LINE.match(line) or tr.WAITING_LINE.match(line) or tr.LAB_ERROR_LINE.match(line)
                if match and not CJK.search(match.group(2)):
                    english.append(f"cell {cell['id']}: {line[:120]}")
    assert not english, f"{path.name}: the lab's lines in English:\n" + "\n".join(english)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chinese_notebook_has_the_english_outputs_with_only_the_lab_lines_translated(path):
    english = json.loads(path.read_text(encoding="utf-8"))
    chinese = json.loads(tr.translated_name(path).read_text(encoding="utf-8"))
    messages = _messages()
    for en, zh in zip(english["cells"], chinese["cells"]):
        if en["cell_type"] == "code":
            expected = copy.deepcopy(en)
            tr._translate_outputs(expected, messages)
            assert zh["outputs"] == expected["outputs"], f"{path.name} cell {en['id']}: other outputs"


def test_the_chinese_edition_shows_the_chinese_figures():
    files = ZH_NOTEBOOKS + [tr.translated_name(tr.ROOT / name) for name in tr.DOCUMENTS]
    english = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        english += [f"{path.name}: {target}" for target in re.findall(r"\]\(([^)\s]+\.png)\)", text)
                    if not target.endswith(".zh-CN.png")
                    and (path.parent / target.replace(".png", ".zh-CN.png")).exists()]
    assert not english, "English figures where a Chinese one exists:\n" + "\n".join(english)


# --- one lab per language in the file browser ------------------------------------------------------------------------

def test_each_edition_hides_exactly_the_other_editions_notebooks_and_never_a_learners_own():
    names = [p.name for p in NOTEBOOKS] + [p.name for p in ZH_NOTEBOOKS]
    own = ["01_define_net.zh-CN-Copy1.ipynb", "01_define_net-Copy1.ipynb", "13_my_project.ipynb", "notes.ipynb"]

    def shown(language, candidates):
        return [n for n in candidates if not any(fnmatch.fnmatch(n, g) for g in lab.hidden(language))]

    assert shown("en", names) == [p.name for p in NOTEBOOKS]
    assert shown("zh-CN", names) == [p.name for p in ZH_NOTEBOOKS]
    for language in lab.LANGUAGES:  # a learner's copies and notebooks, and the lab's other files, stay in view
        others = own + ["ex04_1.py", "README.md", "README.zh-CN.md", "ddp_save.py", "scripts", "solutions"]
        assert shown(language, others) == others, language


def test_the_lab_server_keeps_jupyter_servers_own_hidden_files_and_adds_the_other_edition():
    from jupyter_server.services.contents.manager import ContentsManager

    assert lab.SERVER_HIDDEN == ContentsManager.class_traits()["hide_globs"].default()
    for language in lab.LANGUAGES:
        args = lab.command(tr.ROOT, open_browser=False, language=language)
        hidden = [a.split("=", 1)[1] for a in args if a.startswith("--ContentsManager.hide_globs=")]
        assert hidden == lab.SERVER_HIDDEN + lab.hidden(language) and len(lab.hidden(language)) == 13
