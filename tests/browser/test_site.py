"""The lab's website (`make site`, tools/website.py) as a reader meets it: built once from the committed notebooks,
served by `python -m http.server` as a classroom would, and read in a headless Chromium (tools/lab_browser.py).

The build and its file checks run without a Chromium too; the pages need one. Nothing on a page may come from another
host: every request that is not to the local server is refused and named.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import posixpath
import re
import threading

import pytest

import lab_browser
import website

CHROMIUM = lab_browser.find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=f"browser tests: {lab_browser.why_no_chromium()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The whole site, both editions, as `make site` builds it (10 to 20 s)."""
    return website.build(tmp_path_factory.mktemp("site") / "site")


def test_the_site_has_every_notebook_in_both_languages_and_no_problem(site):
    for language, (folder, suffix, _) in website.LANGUAGES.items():
        root = site / folder
        assert (root / "index.html").is_file() and (root / "search.html").is_file(), language
        for path in lab_browser.lab.notebooks(lab_browser.NOTEBOOKS):
            page = root / "notebooks" / path.name.replace(".ipynb", f"{suffix}.html")
            assert page.is_file(), f"no page for {path.name} in the {language} site"
        for name in website.DOCS:
            assert (root / "docs" / f"{name}{suffix}.html").is_file(), (language, name)
    assert website.problems(site) == []
    assert not list(site.rglob("*.ipynb")), "the site serves pages, not notebooks to run"
    assert [path.name for path in site.parent.iterdir()] == ["site"], "the build wrote beside its folder"


def test_a_widget_shows_a_note_that_it_needs_a_kernel_and_the_text_it_saved_if_it_says_anything(site):
    english = (site / "notebooks" / "05_partial_loading.html").read_text(encoding="utf-8")
    chinese = (site / "zh-CN" / "notebooks" / "05_partial_loading.zh-CN.html").read_text(encoding="utf-8")
    for text, language in ((english, "en"), (chinese, "zh-CN")):
        note, (_, without) = website.WIDGET_NOTE[language]
        assert note.format(without) in text and "VBox(children=" not in text, language
    progress = (site / "notebooks" / "02_train_mnist.html").read_text(encoding="utf-8")
    note, (with_text, _) = website.WIDGET_NOTE["en"]
    assert note.format(with_text) in progress and re.search(r"<pre>training: 100%\|#+\| 705/705", progress)
    for page in (english, chinese, progress):
        assert "widget-view+json" not in page and "@jupyter-widgets" not in page and "NBVAL_" not in page


@contextlib.contextmanager
def served(folder):
    """`folder` on http://127.0.0.1:PORT/, as `python -m http.server -d folder` serves it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


class Reader:
    """One Chromium page on the served site that notes what went wrong: JavaScript errors, console errors, answers
    of 400 and above, and any request to another host (refused, as on a classroom network without the internet)."""

    def __init__(self, page, base: str):
        self.page, self.base, self.wrong = page, base, []
        page.on("console", lambda message: message.type == "error" and self.wrong.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: self.wrong.append(f"JavaScript: {error}"))
        page.on("response", lambda response: response.status >= 400
                and self.wrong.append(f"{response.status} for {response.url}"))
        page.context.route(re.compile(r"^(?!" + re.escape(base) + r"|data:)"), self._refuse)

    def _refuse(self, route):
        self.wrong.append(f"fetched from the internet: {route.request.url}")
        route.abort()

    def open(self, path: str) -> list[str]:
        """Open `path` (below the site's root) and return what went wrong there, pictures that did not load included."""
        self.wrong = []
        self.page.goto(self.base + path)  # returns at the load event: every script, stylesheet and picture is in
        return self.wrong + [f"picture not shown: {src}" for src in lab_browser.broken_pictures(self.page)]


@pytest.fixture(scope="module")
def reader(site):
    from playwright.sync_api import sync_playwright

    with served(site) as base, sync_playwright() as playwright:
        browser = lab_browser.launch(playwright, CHROMIUM)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            yield Reader(page, base)
        finally:
            browser.close()


@needs_chromium
def test_every_page_opens_without_an_error_and_shows_every_picture(site, reader):
    pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html")
                   if "_static" not in path.parts and "files" not in path.parts)
    assert len(pages) >= 2 * (len(lab_browser.lab.notebooks(lab_browser.NOTEBOOKS)) + 4)
    wrong = {name: found for name in pages if (found := reader.open(name))}
    assert not wrong, wrong


@needs_chromium
def test_the_reader_notices_what_it_must_refuse(tmp_path, reader):
    """The checks above can fail: a page that loads a script from a CDN and shows a missing picture is caught."""
    (tmp_path / "bad.html").write_text('<html><body><img src="missing.png">'
                                       '<script src="https://cdn.jsdelivr.net/npm/x.js"></script></body></html>')
    context = reader.page.context.browser.new_context()
    try:
        with served(tmp_path) as base:
            wrong = Reader(context.new_page(), base).open("bad.html")
    finally:
        context.close()
    said = "\n".join(wrong)
    assert "fetched from the internet: https://cdn.jsdelivr.net/npm/x.js" in said, said
    assert "picture not shown" in said and "404" in said, said


def _results(reader, path: str) -> list[str]:
    assert reader.open(path) == []
    results = reader.page.locator("#search-results")
    # the search fills in its summary line when it has shown every result
    reader.page.wait_for_function("() => document.querySelector('#search-results .search-summary')?.innerText")
    return results.locator("ul.search li a").all_inner_texts()


@needs_chromium
def test_search_finds_a_term_in_each_language(reader):
    english = _results(reader, "search.html?q=map_location")
    assert any(title.startswith("04 ·") for title in english), english
    quoted = reader.page.locator("#search-results ul.search").inner_text()  # the article's words, not the buttons'
    assert "map_location" in quoted and "System Settings" not in quoted and "To run it" not in quoted, quoted
    chinese = _results(reader, "zh-CN/search.html?q=断点续训")  # one word, though jieba cuts it in two
    assert any(title.startswith("06 ·") for title in chinese), chinese
    assert reader.page.locator(".search-summary").inner_text() == f"搜索完成，匹配到 {len(chinese)} 页。"
    assert _results(reader, "search.html?q=qwzxv") == []


def _href(page, css_class: str) -> str | None:
    pattern = r'<a class="[^"]*\b' + css_class + r'\b[^"]*"[^>]*\bhref="([^"]*)"'
    found = re.search(pattern, page.read_text(encoding="utf-8"))
    return found and posixpath.normpath(found.group(1))


def test_every_page_links_to_itself_in_the_other_language_and_follows_the_lab_order(site):
    names = [path.stem for path in lab_browser.lab.notebooks(lab_browser.NOTEBOOKS)]
    for language, (folder, suffix, _) in website.LANGUAGES.items():
        other, back = ("zh-CN/", ".zh-CN") if language == "en" else ("../", "")
        root = site / folder
        for page in [root / "index.html", root / "search.html", *(root / "docs").glob("*.html")]:
            name = page.relative_to(root).as_posix()
            top = name in ("index.html", "search.html")
            counterpart = name if top else name.replace(f"{suffix}.html", f"{back}.html")
            expected = ("" if top else "../") + other + counterpart
            assert _href(page, "lab-language") == expected, (language, name)
        pages = [root / "notebooks" / f"{name}{suffix}.html" for name in names]
        for before, page, after in zip(pages, pages[1:], pages[2:]):
            assert _href(page, "lab-language") == f"../{other}notebooks/{page.stem.removesuffix(suffix)}{back}.html"
            assert (_href(page, "left-prev"), _href(page, "right-next")) == (before.name, after.name), page.name
        assert _href(root / "index.html", "right-next") == f"notebooks/{pages[0].name}"


@needs_chromium
def test_the_language_switch_lands_on_the_same_notebook_and_back(reader):
    for name in ("index", "notebooks/01_define_net", "notebooks/12_capstone_project"):
        assert reader.open(f"{name}.html") == []
        title = reader.page.locator("h1").first.inner_text()
        reader.page.locator("a.lab-language").click()
        reader.page.wait_for_load_state()
        chinese = name if name == "index" else f"{name}.zh-CN"
        assert reader.page.url == f"{reader.base}zh-CN/{chinese}.html", reader.page.url
        assert reader.page.locator("html").get_attribute("lang") == "zh-CN"
        assert reader.page.locator("h1").first.inner_text()[:4] == title[:4]  # "01 ·", "12 ·"; the lab's name
        reader.page.locator("a.lab-language").click()
        reader.page.wait_for_load_state()
        assert reader.page.url == f"{reader.base}{name}.html", reader.page.url
