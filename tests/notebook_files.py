"""Reading the lab's notebooks in tests."""
from __future__ import annotations

from pathlib import Path

import nbformat

from labutils.paths import REPO_ROOT, notebooks

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = notebooks(NOTEBOOK_DIR)  # the English ones
ZH_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.zh-CN.ipynb"))  # the Chinese edition (tools/translations.py)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
