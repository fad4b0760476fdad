"""Build the lab as a static website, in English and Chinese: `make site` runs this.

    python tools/website.py [--out site] [--repository OWNER/NAME] [--notebooks 00 01 ...]

The pages are the committed notebooks with their saved outputs (nothing is executed), the README as the first page,
and the documents in docs/, in the lab's order, built by Sphinx with myst-nb and the Jupyter Book theme
(sphinx-book-theme), pinned in requirements-site.txt. The English site is `site/index.html`, the Chinese one
`site/zh-CN/index.html`, each page linking to the same page in the other language (tools/website_sphinx/conf.py
adds that line, and how to run the notebook: `make lab`, a class's hub, and Binder once the lab is hosted:
--repository). Every script, stylesheet, font and picture is in `site/`: `python -m http.server -d site` serves it
on a classroom's network without the internet. Widgets have no kernel on a website: each is a note that says so,
above the text it saved where that text says something.

A link to a file of the lab that is not a page (a script, a solution, the Dockerfile) leads to a page under
`site/files/` that shows its text. `problems(site)` lists what is wrong in a built site: a page that fetches
something from the internet, a link or a picture that leads nowhere. --notebooks builds a part of the lab, for a
quick look; the links to the notebooks left out then lead to pages that show their files.
"""
from __future__ import annotations

import argparse
import html
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import lab  # tools/lab.py: the lab's notebooks in teaching order (this folder is on the path, as a script or in tests)

ROOT = lab.ROOT
CONF = ROOT / "tools" / "website_sphinx"  # conf.py, the stylesheet and the page additions
OUT = ROOT / "site"
DOCS = ("CHEATSHEET", "GLOSSARY", "INSTRUCTOR")
# Each edition: the folder of its site below site/, the suffix of its files and its README, the first page
LANGUAGES = {"en": ("", "", "README.md"), "zh-CN": ("zh-CN", ".zh-CN", "README.zh-CN.md")}
ELSEWHERE = "https://lab-site.invalid/"  # a link to another edition's page or to a file: made relative after the build
MARKDOWN_LINK = re.compile(r"(!?\[(?:[^\[\]]|\[[^\]]*\])*\]\()([^)\s]+)(\))")
CJK_TERM = re.compile(r"[\u4e00-\u9fff]{2,}")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_REPR = re.compile(r"[A-Z]\w*\(children=")  # what ipywidgets saves as the text of a box of widgets
WIDGET_NOTE = {  # {0}: with the text it saved below, or without
    "en": (("An interactive widget was here. It needs a running kernel, so this page {0}: open the notebook in the "
            "lab to use it."), ("shows only the text it saved", "cannot show it")),
    "zh-CN": ("这里原本是一个交互式控件。它需要运行中的内核，所以本页{0}；要使用它，请在实验环境中打开这个 notebook。",
              ("只显示它保存的文本", "无法显示它")),
}
BUILT = ".nojekyll"  # in every site built here: a folder without it is not emptied
NBVAL_MARKER = re.compile(r"^# NBVAL_\w+\n", re.M)  # the test suite's marks on a cell, not the lesson


def notebook_names(language: str, numbers: list[str] | None = None) -> list[str]:
    """The notebooks of `language`'s edition in teaching order (`numbers`: only those, by their two digits)."""
    suffix = LANGUAGES[language][1]
    return [path.name.replace(".ipynb", f"{suffix}.ipynb") for path in lab.notebooks(ROOT / "notebooks")
            if numbers is None or path.name[:2] in numbers]


def pages(language: str, numbers: list[str] | None = None) -> dict[str, str]:
    """The pages of `language`'s site: {the lab's file: the file in the Sphinx source folder}. The README becomes
    index.md; everything else keeps its place, so that the links between them stay as they are."""
    suffix = LANGUAGES[language][1]
    found = {LANGUAGES[language][2]: "index.md"}
    found |= {f"notebooks/{name}": f"notebooks/{name}" for name in notebook_names(language, numbers)}
    found |= {f"docs/{name}{suffix}.md": f"docs/{name}{suffix}.md" for name in DOCS}
    return found


def html_name(source: str) -> str:
    """The page Sphinx writes for a source file: notebooks/01_define_net.ipynb -> notebooks/01_define_net.html."""
    return source.rsplit(".", 1)[0] + ".html"


def rewrite_links(text: str, page: str, language: str, all_pages: dict[str, dict[str, str]]) -> tuple[str, set[str]]:
    """Markdown `text` of the lab's file `page`, with each link made to work on `language`'s site: to a page of that
    site, its source (Sphinx resolves it); to a page of the other edition, or to a file of the lab that is no page,
    an address on ELSEWHERE that the build makes relative. Returns the text and the lab's files linked that way."""
    files: set[str] = set()
    folder = posixpath.dirname(page)
    own = all_pages[language]
    other = next(name for name in LANGUAGES if name != language)

    def link(match: re.Match) -> str:
        target = match.group(2)
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path:
            return match.group(0)
        anchor = f"#{parts.fragment}" if parts.fragment else ""
        path = posixpath.normpath(posixpath.join(folder, unquote(parts.path)))
        if path in own:
            new = posixpath.relpath(own[path], posixpath.dirname(own[page])) + anchor
        elif path in all_pages[other]:
            new = f"{ELSEWHERE}{posixpath.join(LANGUAGES[other][0], html_name(all_pages[other][path]))}{anchor}"
        elif match.group(1).startswith("!") or path.startswith("images/"):
            return match.group(0)  # pictures are copied into the source folder, in their places
        elif (ROOT / path).exists():
            files.add(path)
            new = f"{ELSEWHERE}{file_page(path)}"  # a page that shows the file: no place in it to link to
        else:
            return match.group(0)  # leads nowhere: problems() names it
        return f"{match.group(1)}{new}{match.group(3)}"

    return MARKDOWN_LINK.sub(link, text), files


def search_terms() -> list[str]:
    """The glossary's Chinese terms (docs/GLOSSARY.md, its lines "中文：..."), for the Chinese site's search index:
    jieba cuts 断点续训 into 断点 and 续训, and the search box looks a query up whole, so each term is indexed whole
    too (Sphinx's html_search_options "dict": a jieba dictionary of the learner's words)."""
    lines = (ROOT / "docs" / "GLOSSARY.md").read_text(encoding="utf-8").splitlines()
    return sorted({term for line in lines if line.startswith("中文：") for term in CJK_TERM.findall(line)})


def widget_fallback(output: dict, language: str) -> dict:
    """A widget's output as the website shows it: a note that it needs a running kernel, above the text it saved
    (tqdm's last line, say), unless that text is only a container's Python repr ("VBox(children=(...")."""
    text = "".join(output["data"].get("text/plain", ""))
    shown = not WIDGET_REPR.match(text)
    note, parts = WIDGET_NOTE[language]
    note = f'<p class="lab-widget-note">{html.escape(note.format(parts[0 if shown else 1]))}</p>'
    saved = f"<pre>{html.escape(text)}</pre>" if shown else ""
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f'<div class="lab-widget">{note}{saved}</div>', "text/plain": text}}


def stage(language: str, source: Path, all_pages: dict[str, dict[str, str]]) -> set[str]:
    """Write `language`'s Sphinx source folder: its pages with their links rewritten, the pictures, and index.md's
    table of contents in the lab's order. Returns the lab's files its pages link to that are no pages."""
    files: set[str] = set()
    own = all_pages[language]
    for page, staged in own.items():
        target = source / staged
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.endswith(".ipynb"):
            notebook = json.loads((ROOT / page).read_text(encoding="utf-8"))
            notebook["metadata"].pop("widgets", None)  # no widget state: the page loads no widget scripts
            for cell in notebook["cells"]:
                if cell["cell_type"] == "code":
                    cell["source"] = NBVAL_MARKER.sub("", "".join(cell["source"]))
                if cell["cell_type"] == "markdown":
                    text, linked = rewrite_links("".join(cell["source"]), page, language, all_pages)
                    cell["source"], files = text, files | linked
                for index, output in enumerate(cell.get("outputs", [])):
                    if WIDGET_VIEW in output.get("data", {}):
                        cell["outputs"][index] = widget_fallback(output, language)
            target.write_text(json.dumps(notebook, ensure_ascii=False), encoding="utf-8")
        else:
            text, linked = rewrite_links((ROOT / page).read_text(encoding="utf-8"), page, language, all_pages)
            files |= linked
            if staged == "index.md":
                entries = "\n".join(name for name in own.values() if name != "index.md")
                text += f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{entries}\n```\n"
            target.write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "images", source / "images")
    return files


def file_page(path: str) -> str:
    """Where the site shows the lab's file or folder `path`: a page of its own under files/, its text in UTF-8 (a
    plain copy would be downloaded, or shown without its charset, by `python -m http.server`); a folder: a list."""
    return f"files/{path.rstrip('/')}/index.html" if (ROOT / path).is_dir() else f"files/{path}.html"


FILE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · Save &amp; Load Lab</title><link rel="icon" href="{root}_static/favicon.svg">
<style>body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }}
pre {{ background: #f5f5f5; padding: 1rem; overflow-x: auto; font-size: 0.9rem; }}</style></head>
<body><p><a href="{root}index.html">← Save &amp; Load Lab</a> · <a href="{root}zh-CN/index.html">保存与加载实验</a></p>
<h1><code>{name}</code></h1>
<p>{what}</p>
{body}
</body></html>
"""


def _write_file_page(site: Path, name: str) -> None:
    """The page of file_page(name): the file's text, or the folder's files (each a page of its own, written too)."""
    source, page = ROOT / name, site / file_page(name)
    root = "../" * (page.relative_to(site).as_posix().count("/"))
    if source.is_dir():
        listed = sorted(path for path in source.iterdir() if path.is_file() and not path.name.startswith((".", "__")))
        for path in listed:
            _write_file_page(site, f"{name.rstrip('/')}/{path.name}")
        items = "".join(f'<li><a href="{html.escape(path.name)}.html">{html.escape(path.name)}</a></li>\n'
                        for path in listed)
        what, body = "A folder of the lab: its files.", f"<ul>\n{items}</ul>"
    else:
        what = "A file of the lab, as it is in its repository."
        try:
            body = f"<pre>{html.escape(source.read_text(encoding='utf-8'))}</pre>"
        except UnicodeDecodeError:  # not text: the file itself, beside its page
            page.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, page.with_suffix(""))
            shown = html.escape(source.name)
            body = f'<p><a href="{shown}">{shown}</a> ({source.stat().st_size:,} bytes)</p>'

    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(FILE_PAGE.format(name=html.escape(name.rstrip("/") + ("/" if source.is_dir() else "")),
                                     root=root, what=what, body=body), encoding="utf-8")


def _relative(site: Path, page: Path, address: str) -> str:
    """An address on ELSEWHERE, made relative to `page` in `site`."""
    path, _, anchor = address.partition("#")
    relative = os.path.relpath(site / path, page.parent).replace(os.sep, "/")
    return relative + ("/" if path.endswith("/") else "") + (f"#{anchor}" if anchor else "")


def finish(site: Path, files: set[str]) -> None:
    """After Sphinx: the links on ELSEWHERE made relative, and the pages of the lab's files they lead to written
    under files/."""
    address = re.compile(r'(<a class="reference )external(" href=")' + re.escape(ELSEWHERE) + r'([^"]*)"')
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if ELSEWHERE in text:
            text = address.sub(lambda m: f'{m.group(1)}internal{m.group(2)}{_relative(site, page, m.group(3))}"', text)
            page.write_text(text, encoding="utf-8")
    for name in sorted(files):
        _write_file_page(site, name)


ADDRESS = re.compile(r'<(a|link|script|img|iframe|source)\b[^>]*?\b(href|src)="([^"]*)"', re.S)
ANCHOR = re.compile(r'\bid="([^"]*)"')


def problems(site: Path) -> list[str]:
    """What is wrong in the built `site`, one line each: a script, stylesheet, picture or frame fetched from another
    host, and a link or picture that leads to no file of the site or to no place in its page. (Links to other
    websites are not followed: this machine may be offline.)"""
    site, found, anchors = site.resolve(), [], {}
    for page in sorted(site.rglob("*.html")):
        name = page.relative_to(site).as_posix()
        text = page.read_text(encoding="utf-8")
        if ELSEWHERE in text:
            found.append(f"{name}: a link to {ELSEWHERE}... was left as it was (finish() makes them relative)")
        for tag, attribute, address in ADDRESS.findall(text):
            address = html.unescape(address)
            parts = urlsplit(address)
            if parts.scheme in ("mailto", "data", "javascript"):
                continue
            if parts.scheme or parts.netloc:
                if tag != "a":
                    found.append(f"{name}: <{tag} {attribute}={address!r}> is fetched from the internet")
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.is_relative_to(site.resolve()):
                found.append(f"{name}: <{tag} {attribute}={address!r}> leads to no file of the site")
            elif parts.fragment and target.suffix == ".html":
                if target not in anchors:
                    anchors[target] = set(ANCHOR.findall(target.read_text(encoding="utf-8")))
                if unquote(parts.fragment) not in anchors[target]:
                    found.append(f"{name}: <{tag} {attribute}={address!r}>: no id {parts.fragment!r} in that page")
    return found


def build(out: Path = OUT, numbers: list[str] | None = None, repository: str = "") -> Path:
    """Build both editions into `out` (emptied first); return `out`. Raises RuntimeError that says how to install
    the tools when one is missing, and with Sphinx's own words when Sphinx fails or warns."""
    tools = ("sphinx", "myst_nb", "sphinx_book_theme", "jieba")
    missing = [name for name in tools if not importlib.util.find_spec(name)]
    if missing:
        raise RuntimeError(f"The website's tools are not installed in {sys.prefix} ({', '.join(missing)} missing): "
                           "`make site` installs them (requirements-site.txt), then builds the site.")
    all_pages = {language: pages(language, numbers) for language in LANGUAGES}
    if out.exists() and (not out.is_dir() or any(out.iterdir()) and not (out / BUILT).is_file()):
        raise RuntimeError(f"{out} is a file, or a folder that holds something but no site that this tool built (no "
                           f"{BUILT} in it): the build empties the folder it writes, so name a new or empty one with "
                           "--out, or delete this one yourself.")
    if out.exists():
        shutil.rmtree(out)
    files: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="lab-site-") as work:
        terms = Path(work) / "search-terms.txt"
        terms.write_text("".join(f"{term} 1000\n" for term in search_terms()), encoding="utf-8")
        running = {}
        for language in LANGUAGES:  # both editions at once: half the time on two cores
            source, pages_made = Path(work) / language / "source", Path(work) / language / "html"
            files |= stage(language, source, all_pages)
            environment = {**os.environ, "LAB_SITE_LANGUAGE": language, "LAB_SITE_REPOSITORY": repository,
                           "LAB_SITE_SEARCH_TERMS": str(terms),
                           "LAB_SITE_NOTEBOOKS": json.dumps(notebook_names(language, numbers))}
            command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(CONF),
                       "-d", f"{work}/doctrees-{language}", "--fail-on-warning", "--keep-going", "-q",
                       str(source), str(pages_made)]  # myst-nb writes beside it: jupyter_execute/
            log = (Path(work) / f"sphinx-{language}.log").open("w+", encoding="utf-8")
            running[language] = (subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT),
                                 log, pages_made)
        failed = [language for language, (process, _, _) in running.items() if process.wait()]
        for language, (_, log, pages_made) in running.items():
            with log:
                log.seek(0)
                if language in failed:
                    raise RuntimeError(f"Sphinx could not build the {language} site:\n{log.read()}")
            shutil.copytree(pages_made, out / LANGUAGES[language][0], dirs_exist_ok=True)
    # Sphinx's and the theme's leftovers
    for leftover in (".buildinfo", ".doctrees", "_sources", "_static/webpack-macros.html",
                     "_static/sbt-webpack-macros.html"):
        for path in out.rglob(leftover):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    finish(out, files)
    # GitHub Pages from a branch would run Jekyll, which drops the folders named _*; and the sign of a site built here
    (out / BUILT).touch()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write (emptied first; default: site/)")
    parser.add_argument("--repository", default=os.environ.get("SITE_REPOSITORY", ""),
                        help="OWNER/NAME on GitHub once the lab is hosted there: each notebook gets a Binder link")
    parser.add_argument("--notebooks", nargs="+", metavar="NN", help="only these notebooks (their two digits)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        build(args.out, args.notebooks, args.repository)
    except RuntimeError as error:
        sys.exit(str(error))
    wrong = problems(args.out)
    if wrong:
        sys.exit(f"{len(wrong)} problems in {args.out}:\n" + "\n".join(wrong))
    print(f"{args.out}/index.html and {args.out}/zh-CN/index.html written in {time.monotonic() - started:.0f} s: "
          f"python -m http.server -d {args.out} serves them")


if __name__ == "__main__":
    main()
