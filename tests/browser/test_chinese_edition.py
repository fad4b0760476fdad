"""The Chinese edition as learners meet it: `make lab LAB_LANG=zh-CN` in a real Chromium (tools/lab_browser.py).

JupyterLab opens on 00_welcome.zh-CN.ipynb with its own menus in Chinese (the pinned
jupyterlab-language-pack-zh-CN, set by tools/jupyterlab/zh-CN/overrides.json) and a file browser that lists the
Chinese notebooks only, and the Chinese notebooks draw every picture. (Two Chinese notebooks run end to end, their
checks answering in Chinese: 00 from JupyterLab's Run menu in tests/browser/test_lab_in_browser.py, 06 in a
papermill chain.)
Skipped, with one line saying why, where no Chromium is found.
"""
from __future__ import annotations

import lab  # tools/ is on the tests' path (pyproject.toml)
import lab_browser
import pytest

CHROMIUM = lab_browser.find_chromium()
if CHROMIUM is None:
    pytest.skip(f"browser tests: {lab_browser.why_no_chromium()}", allow_module_level=True)

NOTEBOOKS = ["00_welcome.zh-CN.ipynb", "06_resume_training.zh-CN.ipynb"]


@pytest.fixture(scope="module")
def ui():
    # the English 00 is served too: the Chinese edition's file browser must not list it
    with lab_browser.lab_session(CHROMIUM, NOTEBOOKS + ["00_welcome.ipynb"], language="zh-CN") as lab:
        yield lab


def test_make_lab_in_chinese_opens_the_chinese_00_with_chinese_menus(ui):
    ui.page.goto(ui.server.printed_url())
    ui.wait_for_notebook("00_welcome.zh-CN.ipynb")
    assert ui.current_tab() == "00_welcome.zh-CN.ipynb" and ui.kernel_name() == lab.KERNEL_DISPLAY_NAME
    menus = ui.page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert menus[:5] == ["文件", "编辑", "查看", "运行", "内核"], f"JupyterLab's menus are not in Chinese: {menus}"
    assert "你将学到" in ui.notebook.locator(".jp-MarkdownOutput h2").first.inner_text()
    listed = lambda: ui.page.locator(".jp-DirListing-itemText").all_inner_texts()  # noqa: E731
    ui.wait_until(lambda: "06_resume_training.zh-CN.ipynb" in listed(), "the file browser listing the notebooks")
    assert "00_welcome.ipynb" not in listed() and "00_welcome.zh-CN.ipynb" in listed(), \
        f"the Chinese file browser lists the English edition: {listed()}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_chinese_notebook_draws_every_picture_unchanged(ui, name):
    served = (ui.server.folder / "notebooks" / name).read_bytes()
    ui.open(name)
    assert ui.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").count() == 0, f"opening {name} changed it"
    ui.wait_until(lambda: not ui.broken_pictures(), "every picture drawn")
    assert ui.press_save(name) == served, f"{name}, only opened, then saved with Ctrl+S, changed"

