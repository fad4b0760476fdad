"""Sphinx's settings for the lab's website (tools/website.py runs Sphinx with them, once per edition).

tools/website.py says which edition (LAB_SITE_LANGUAGE), which notebooks (LAB_SITE_NOTEBOOKS) and, once the lab is
hosted, its repository on GitHub (LAB_SITE_REPOSITORY: OWNER/NAME). Nothing here fetches anything from the
internet: the theme's scripts, stylesheets and fonts are in the packages of requirements-site.txt, no widget script
is loaded (a widget is a note, tools/website.py), and no page has mathematics (MathJax would come from a CDN:
problems() in tools/website.py would name its script).
"""
from __future__ import annotations

import json
import os

LANGUAGE = os.environ.get("LAB_SITE_LANGUAGE", "en")
REPOSITORY = os.environ.get("LAB_SITE_REPOSITORY", "")
NOTEBOOKS = json.loads(os.environ.get("LAB_SITE_NOTEBOOKS", "[]"))
CHINESE = LANGUAGE == "zh-CN"

project = "保存与加载实验" if CHINESE else "Save & Load Lab"
author = "Save & Load Lab"
copyright = "the Save & Load Lab's authors"
language = "zh_CN" if CHINESE else "en"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["static"]  # lab.css
html_css_files = ["lab.css"]
html_js_files = ["search-quotes.js", *(["search.zh-CN.js"] if CHINESE else [])]
templates_path = ["templates"]  # search.html: the language switch on the search page too
html_use_index = False  # no index of terms: the lab has none
html_favicon = "static/favicon.svg"  # without one, the browser asks for /favicon.ico and gets a 404
html_copy_source = False  # no _sources/: the notebooks are in the lab itself
html_show_sourcelink = False
html_last_updated_fmt = None
html_context = {"default_mode": "light"}  # the theme's light/dark switch starts light (none set: a console error)
html_search_language = "zh" if CHINESE else "en"  # Chinese words are found with jieba (requirements-site.txt)
if CHINESE:  # the glossary's terms, whole (tools/website.py, search_terms)
    html_search_options = {"dict": os.environ.get("LAB_SITE_SEARCH_TERMS", "")}

nb_execution_mode = "off"  # the committed outputs, as `make notebooks` saved them
nb_ipywidgets_js = {}  # no widget scripts from a CDN: tools/website.py shows each widget's saved text
nb_merge_streams = True
myst_heading_anchors = 3  # the links to ../docs/GLOSSARY.md#state_dict and the README's #start
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["myst.header"]  # a notebook's sections may start below its level-1 title at level 3

html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": True,
}
if REPOSITORY:
    html_theme_options |= {"repository_url": f"https://github.com/{REPOSITORY}", "use_repository_button": True,
                           "repository_branch": "main"}

# What each page adds at its top: the same page in the other edition; on a notebook, how to run it ({0}: the notebook's
# file, {1}: the link to the README's "Start", {2}: the repository's address). The ids are those of the README's
# headings (tools/website.py's problems() finds one that moved).
WORDS = {
    "en": {
        "other": "中文版", "start": "how to start", "start_id": "start",
        "saved": "This page shows the notebook with the outputs saved when it last ran. <b>To run it:</b>",
        "lab": "on your computer, in your copy of the lab: <code>make lab</code>, then open <code>{0}</code> ({1})",
        "clone": "on your computer: <code>git clone {2}</code>, <code>make lab</code> in that folder, then open "
                 "<code>{0}</code> ({1})",
        "hub": "in a class with a JupyterHub: sign in at the address your instructor gives you, then open "
               "<code>{0}</code>",
        "binder": "on Binder, with nothing to install: <a class=\"lab-binder\" href=\"{3}\">launch it</a>",
    },
    "zh-CN": {
        "other": "English", "start": "如何开始", "start_id": "开始",
        "saved": "本页显示的是这个 notebook 上次运行时保存的输出。<b>运行方法：</b>",
        "lab": "在自己的电脑上：进入你的实验副本，运行 <code>make lab</code>，然后打开 <code>{0}</code>（{1}）",
        "clone": "在自己的电脑上：<code>git clone {2}</code>，在该文件夹中运行 <code>make lab</code>，然后打开 "
                 "<code>{0}</code>（{1}）",
        "hub": "在有 JupyterHub 的课堂上：用讲师给你的地址登录，然后打开 <code>{0}</code>",
        "binder": "在 Binder 上，无需安装任何东西：<a class=\"lab-binder\" href=\"{3}\">点此启动</a>",
    },
}


def _other_edition(pagename: str) -> str:
    """The same page in the other edition, relative to the site's root folder of this one."""
    if CHINESE:
        return "../" + pagename.removesuffix(".zh-CN") + ".html"
    special = pagename in ("index", "search")
    return "zh-CN/" + pagename + ("" if special else ".zh-CN") + ".html"


def _top_of_page(app, pagename, templatename, context, doctree):
    """Put the language switch, and on a notebook the ways to run it, at the top of the page's body (the search
    page, which has none, shows `lab_switch` itself: templates/search.html)."""
    words = WORDS[LANGUAGE]
    root = context["pathto"]("", 1)  # this edition's root folder, relative to the page
    other_language = "en" if CHINESE else "zh-CN"
    switch = (f'<p class="lab-switch"><a class="lab-language" hreflang="{other_language}" lang="{other_language}" '
              f'href="{root}{_other_edition(pagename)}">{words["other"]}</a></p>')
    if "body" not in context:
        context["lab_switch"] = switch
        return
    name = pagename.rsplit("/", 1)[-1] + ".ipynb"
    ways = ""
    if pagename.startswith("notebooks/") and name in NOTEBOOKS:
        start = f'<a href="{root}index.html#{words["start_id"]}">{words["start"]}</a>'
        repository = f"https://github.com/{REPOSITORY}" if REPOSITORY else ""
        binder = f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/save-load-lab/notebooks/{name}"
        items = [words["clone" if REPOSITORY else "lab"], words["hub"]] + ([words["binder"]] if REPOSITORY else [])
        ways = (f'<div class="lab-run"><p>{words["saved"]}</p><ul>'
                + "".join(f"<li>{item.format(f'notebooks/{name}', start, repository, binder)}</li>" for item in items)
                + "</ul></div>")
    body, top = context["body"], f'<div class="lab-top">{switch}{ways}</div>'
    title_ends = body.find("</h1>") + len("</h1>")  # below the page's title, when it has one
    context["body"] = body[:title_ends] + top + body[title_ends:] if title_ends >= len("</h1>") else top + body


def setup(app):
    app.connect("html-page-context", _top_of_page)
