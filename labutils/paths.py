"""Where the lab keeps its data, artifacts and recorded metrics."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Return the folder holding the bundled MNIST files (override with LAB_DATA_DIR)."""
    return Path(os.environ.get("LAB_DATA_DIR", REPO_ROOT / "data"))


def artifacts_dir() -> Path:
    """Return the folder for saved models and caches, creating it (override with LAB_ARTIFACTS_DIR)."""
    path = Path(os.environ.get("LAB_ARTIFACTS_DIR", REPO_ROOT / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def metrics_dir() -> Path:
    """Return the folder where notebooks record their metrics (override with LAB_METRICS_DIR)."""
    path = Path(os.environ.get("LAB_METRICS_DIR", artifacts_dir() / "metrics"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_path(path: os.PathLike | str) -> str:
    """Return a path as a learner should see it: relative to the repository, never a machine path."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return f"…/{path.parent.name}/{path.name}"
