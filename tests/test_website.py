"""tools/website.py's pieces, without building the site (tests/browser/test_site.py builds it and reads it): how a
link is rewritten for each edition, what problems() finds in a site, what each page says at its top, and the Chinese
search's words."""
from __future__ import annotations

import re
import runpy
from urllib.parse import parse_qs, urlsplit

import pytest

import website
from test_deploy import lab_tree_notebook

PAGES = {language: website.pages(language) for language in website.LANGUAGES}
ELSEWHERE = website.ELSEWHERE


@pytest.mark.parametrize("page, language, link, becomes", [
    # a page of the same edition: its source, which Sphinx resolves; the README is the site's index
    ("notebooks/00_welcome.ipynb", "en", "01_define_net.ipynb", "01_define_net.ipynb"),
    ("notebooks/01_define_net.ipynb", "en", "../docs/GLOSSARY.md#state_dict", "../docs/GLOSSARY.md#state_dict"),
    ("notebooks/00_welcome.ipynb", "en", "../README.md#start", "../index.md#start"),
    ("docs/INSTRUCTOR.zh-CN.md", "zh-CN", "../README.zh-CN.md", "../index.md"),
    # a page of the other edition: an address on ELSEWHERE, made relative after the build
    ("README.md", "en", "README.zh-CN.md", f"{ELSEWHERE}zh-CN/index.html"),
    ("README.zh-CN.md", "zh-CN", "docs/GLOSSARY.md#head", f"{ELSEWHERE}docs/GLOSSARY.html#head"),
    # a file of the lab that is no page, and a folder: their copies under files/
    ("notebooks/08_large_models.ipynb", "en", "scripts/ddp_save.py",
     f"{ELSEWHERE}files/notebooks/scripts/ddp_save.py.html"),
    ("docs/INSTRUCTOR.md", "en", "../tools/hub/", f"{ELSEWHERE}files/tools/hub/index.html"),
    ("docs/INSTRUCTOR.md", "en", "../deploy/README.md#binder", f"{ELSEWHERE}files/deploy/README.md.html"),
    # left as they are: pictures (copied in their places), other websites, anchors, what leads nowhere
    ("README.md", "en", "images/screenshots/first_screen.png", "images/screenshots/first_screen.png"),
    ("README.md", "en", "https://pytorch.org/tutorials/", "https://pytorch.org/tutorials/"),
    ("README.md", "en", "#other-ways-to-install", "#other-ways-to-install"),
    ("README.md", "en", "notebooks/99_missing.ipynb", "notebooks/99_missing.ipynb"),
])
def test_a_link_is_rewritten_for_its_edition(page, language, link, becomes):
    text, files = website.rewrite_links(f"see [the {link}]({link}) here", page, language, PAGES)
    assert text == f"see [the {link}]({becomes}) here"
    linked = [name for name in files if becomes == f"{ELSEWHERE}{website.file_page(name)}"]
    assert len(linked) == len(files) == (1 if "/files/" in becomes else 0), files


def test_a_picture_and_a_link_with_brackets_in_their_text_are_found():
    text = "![a `[x]` picture](../images/state_dict.png) and [`model[0]`](scripts/ddp_save.py)"
    rewritten, files = website.rewrite_links(text, "notebooks/08_large_models.ipynb", "en", PAGES)
    assert rewritten == ("![a `[x]` picture](../images/state_dict.png) and "
                         f"[`model[0]`]({ELSEWHERE}files/notebooks/scripts/ddp_save.py.html)")
    assert files == {"notebooks/scripts/ddp_save.py"}


def test_a_part_of_the_lab_links_to_the_notebooks_left_out_as_files():
    part = {language: website.pages(language, ["00", "01"]) for language in website.LANGUAGES}
    assert [name for name in part["zh-CN"] if name.startswith("notebooks/")] == [
        "notebooks/00_welcome.zh-CN.ipynb", "notebooks/01_define_net.zh-CN.ipynb"]
    text, files = website.rewrite_links("[02](02_train_mnist.ipynb)", "notebooks/01_define_net.ipynb", "en", part)
    assert text == f"[02]({ELSEWHERE}files/notebooks/02_train_mnist.ipynb.html)" and files


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_widget_keeps_the_text_it_saved_under_a_note_unless_it_is_a_boxs_repr(language):
    def shown(text: str) -> str:
        output = {"output_type": "display_data", "metadata": {},
                  "data": {website.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": [text[:9], text[9:]]}}
        fallback = website.widget_fallback(output, language)
        assert website.WIDGET_VIEW not in fallback["data"] and fallback["data"]["text/plain"] == text
        return fallback["data"]["text/html"]

    note, (with_text, without) = website.WIDGET_NOTE[language]
    bar = shown("training: 100%|##| 705/705 <loss=0.09>")
    assert note.format(with_text) in bar and "<pre>training: 100%|##| 705/705 &lt;loss=0.09&gt;</pre>" in bar
    box = shown("VBox(children=(HTML(value='<b>load from the checkpoint</b>'), Checkbox(value=True)))")
    assert note.format(without) in box and "VBox" not in box and "<pre>" not in box


def test_the_test_suites_marks_are_left_out_of_the_code():
    assert website.NBVAL_MARKER.sub("", "# NBVAL_CHECK_OUTPUT\nprint(1)\n# NBVAL_SKIP\n") == "print(1)\n"
    kept = "x = 1  # NBVAL_CHECK_OUTPUT is a mark\n"
    assert website.NBVAL_MARKER.sub("", kept) == kept


def test_a_file_of_the_lab_gets_a_page_that_shows_its_text_and_a_folder_a_list(tmp_path):
    website._write_file_page(tmp_path, "notebooks/solutions/")
    listing = (tmp_path / "files" / "notebooks" / "solutions" / "index.html").read_text(encoding="utf-8")
    assert '<a href="ex03_2.py.html">ex03_2.py</a>' in listing and '<meta charset="utf-8">' in listing
    page = (tmp_path / "files" / "notebooks" / "solutions" / "ex03_2.py.html").read_text(encoding="utf-8")
    source = (website.ROOT / "notebooks" / "solutions" / "ex03_2.py").read_text(encoding="utf-8")
    assert website.html.escape(source) in page and '<a href="../../../index.html">' in page
    for name in ("index.html", "zh-CN/index.html", "_static/favicon.svg"):  # the rest of a site
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert website.problems(tmp_path) == []
    (tmp_path / "_static" / "favicon.svg").unlink()
    assert len(website.problems(tmp_path)) == len(list((tmp_path / "files").rglob("*.html")))  # one for each


def test_a_file_that_is_not_text_is_linked_from_its_page(tmp_path):
    website._write_file_page(tmp_path, "images/state_dict.png")
    page = (tmp_path / "files" / "images" / "state_dict.png.html").read_text(encoding="utf-8")
    size = (website.ROOT / "images" / "state_dict.png").stat().st_size
    assert f'<a href="state_dict.png">state_dict.png</a> ({size:,} bytes)' in page
    assert (tmp_path / "files" / "images" / "state_dict.png").read_bytes() == (
        website.ROOT / "images" / "state_dict.png").read_bytes()


def test_the_build_empties_only_a_folder_it_built(tmp_path):
    """--out names the folder that make site empties: one that holds anything else is refused, and left as it was."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for wrong in (folder, folder / "notes.txt"):
        with pytest.raises(RuntimeError, match=r"is a file, or a folder that holds something but no site that this"):
            website.build(wrong)
    assert [path.name for path in folder.iterdir()] == ["notes.txt"] and (folder / "notes.txt").read_text() == "mine"


def _site(tmp_path, pages: dict[str, str]):
    for name, body in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"<html><body>{body}</body></html>")
    return tmp_path


def test_problems_are_none_in_a_sound_site(tmp_path):
    site = _site(tmp_path, {
        "index.html": '<h2 id="start">Start</h2><a href="notebooks/a.html#top">a</a> <a href="#start">here</a>'
                      '<a href="https://pytorch.org/">PyTorch</a> <a href="files/tools/hub/">hub</a>'
                      '<img src="_images/x.png"> <script src="_static/x.js"></script>',
        "notebooks/a.html": '<h1 id="top">A</h1><a href="../index.html">back</a>',
        "files/tools/hub/index.html": "", "_images/x.png": "", "_static/x.js": ""})
    assert website.problems(site) == []


def test_problems_name_the_page_and_what_is_wrong(tmp_path):
    site = _site(tmp_path, {
        "index.html": '<script src="https://cdn.jsdelivr.net/npm/require.js"></script>'
                      '<link rel="stylesheet" href="//fonts.googleapis.com/css">'
                      '<a href="notebooks/b.html">gone</a> <a href="notebooks/a.html#nowhere">no place</a>'
                      '<img src="_images/missing.png"> <a href="../outside.html">outside</a>'
                      f'<a href="{ELSEWHERE}zh-CN/index.html">left</a>',
        "notebooks/a.html": '<h1 id="top">A</h1>'})
    (tmp_path.parent / "outside.html").write_text("")
    said = website.problems(site)
    assert said == [
        f"index.html: a link to {ELSEWHERE}... was left as it was (finish() makes them relative)",
        "index.html: <script src='https://cdn.jsdelivr.net/npm/require.js'> is fetched from the internet",
        "index.html: <link href='//fonts.googleapis.com/css'> is fetched from the internet",
        "index.html: <a href='notebooks/b.html'> leads to no file of the site",
        "index.html: <a href='notebooks/a.html#nowhere'>: no id 'nowhere' in that page",
        "index.html: <img src='_images/missing.png'> leads to no file of the site",
        "index.html: <a href='../outside.html'> leads to no file of the site",
    ], said


def _top(tmp_path, monkeypatch, language: str, pagename: str, repository: str = "") -> str:
    """What conf.py puts at the top of `pagename`'s body, in `language`'s edition."""
    monkeypatch.setenv("LAB_SITE_LANGUAGE", language)
    monkeypatch.setenv("LAB_SITE_REPOSITORY", repository)
    monkeypatch.setenv("LAB_SITE_NOTEBOOKS", '["01_define_net.ipynb", "01_define_net.zh-CN.ipynb"]')
    conf = runpy.run_path(str(website.CONF / "conf.py"))
    depth = pagename.count("/")
    context = {"body": "<section><h1>01 · Define</h1><p>text</p></section>",
               "pathto": lambda name, resource: "../" * depth + name}
    conf["_top_of_page"](None, pagename, "page.html", context, None)
    return context["body"]


def test_a_notebook_page_says_how_to_run_it_and_where_it_is_in_the_other_language(tmp_path, monkeypatch):
    body = _top(tmp_path, monkeypatch, "en", "notebooks/01_define_net")
    assert body.startswith("<section><h1>01 · Define</h1><div class=\"lab-top\">"), body
    assert 'href="../zh-CN/notebooks/01_define_net.zh-CN.html">中文版</a>' in body
    assert "<code>make lab</code>, then open <code>notebooks/01_define_net.ipynb</code>" in body
    assert 'href="../index.html#start"' in body and "JupyterHub" in body
    assert "mybinder" not in body and "git clone" not in body  # not hosted yet
    hosted = _top(tmp_path, monkeypatch, "en", "notebooks/01_define_net", repository="acme/save-load-lab")
    assert "<code>git clone https://github.com/acme/save-load-lab</code>" in hosted
    links = re.findall(r'href="(https://mybinder[^"]*)"', hosted)
    binder = "https://mybinder.org/v2/gh/acme/save-load-lab/main?urlpath=lab/tree/save-load-lab/notebooks/"
    assert links == [f"{binder}01_define_net.ipynb"]
    # the link deploy/README.md's test accepts
    assert lab_tree_notebook(parse_qs(urlsplit(links[0]).query)["urlpath"][0]).name == "01_define_net.ipynb"
    chinese = _top(tmp_path, monkeypatch, "zh-CN", "notebooks/01_define_net.zh-CN", repository="acme/save-load-lab")
    assert 'href="../../notebooks/01_define_net.html">English</a>' in chinese and "运行方法" in chinese
    assert "然后打开 <code>notebooks/01_define_net.zh-CN.ipynb</code>（<a href=\"../index.html#开始\">" in chinese
    assert "notebooks/01_define_net.zh-CN.ipynb\">点此启动</a>" in chinese
    document = _top(tmp_path, monkeypatch, "zh-CN", "docs/GLOSSARY.zh-CN")
    assert 'href="../../docs/GLOSSARY.html">English</a>' in document and "lab-run" not in document
    index = _top(tmp_path, monkeypatch, "en", "index")
    assert 'href="zh-CN/index.html">中文版</a>' in index


def test_without_its_tools_the_build_says_how_to_install_them(monkeypatch, tmp_path):
    real = website.importlib.util.find_spec
    monkeypatch.setattr(website.importlib.util, "find_spec", lambda name: None if name == "jieba" else real(name))
    with pytest.raises(RuntimeError, match=r"\(jieba missing\): `make site` installs them \(requirements-site.txt\)"):
        website.build(tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_the_chinese_search_knows_the_glossarys_terms_whole():
    terms = website.search_terms()
    assert {"断点续训", "状态字典", "检查点", "权重和偏置"} <= set(terms), terms
    assert all(website.CJK_TERM.fullmatch(term) for term in terms)
