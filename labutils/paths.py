"""Where the lab keeps its notebooks, data, artifacts and recorded metrics.

Standard library only: tools/lab.py loads this file on its own, without the package (whose __init__ imports torch),
so that starting JupyterLab stays quick and works in an environment without torch (make second-python).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_NAME = re.compile(r"\d\d_\w+\.ipynb")  # 03_saving.ipynb; not its Chinese edition, 03_saving.zh-CN.ipynb


def notebooks(folder: os.PathLike | str = REPO_ROOT / "notebooks") -> list[Path]:
    """Return the lab's numbered notebooks in `folder`, in teaching order: NN_name.ipynb, not their Chinese editions."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb") if NOTEBOOK_NAME.fullmatch(p.name))


def data_dir() -> Path:
    """Return the folder holding the bundled MNIST files (override with LAB_DATA_DIR)."""
    return Path(os.environ.get("LAB_DATA_DIR", REPO_ROOT / "data"))


def artifacts_dir() -> Path:
    """Return the folder for saved models and caches, creating it (override with LAB_ARTIFACTS_DIR)."""
    path = Path(os.environ.get("LAB_ARTIFACTS_DIR", REPO_ROOT / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_cache_dir() -> Path | None:
    """Return the read-only folder of trained Nets that a classroom hub shares among its learners (LAB_SHARED_CACHE),
    or None. labutils.cache looks there before the learner's own cache, and never writes there."""
    folder = os.environ.get("LAB_SHARED_CACHE")
    return Path(folder) if folder else None


def metrics_dir() -> Path:
    """Return the folder where notebooks record their metrics (override with LAB_METRICS_DIR)."""
    path = Path(os.environ.get("LAB_METRICS_DIR", artifacts_dir() / "metrics"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_path(path: os.PathLike | str) -> str:
    """Return a path as a learner can find it, never naming the machine's folders above the lab.

    Inside the working folder: relative to it (`net.pt`). Elsewhere in the lab, with the working folder in the
    lab too (a notebook saving to artifacts/): relative to the working folder (`../artifacts/03_saving/net.pt`).
    Anywhere else: the absolute path, which is the only way to find it.
    """
    path = Path(path).absolute()
    here = Path.cwd()
    if path.is_relative_to(here):
        return path.relative_to(here).as_posix() or "."
    root = REPO_ROOT.resolve()
    resolved, here_resolved = path.resolve(), here.resolve()
    if resolved.is_relative_to(root) and here_resolved.is_relative_to(root):
        return Path(os.path.relpath(resolved, here_resolved)).as_posix()
    return str(path)
