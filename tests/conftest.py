"""Shared fixtures: an empty artifacts folder, a private copy of the bundled data, a module's shared kernel."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labutils.data import SHA256
from labutils.paths import REPO_ROOT
from labutils.runner import SharedKernel


@pytest.fixture
def artifacts(tmp_path, monkeypatch) -> Path:
    """An empty artifacts folder (so an empty cache) that labutils uses for this test only."""
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(folder))
    monkeypatch.delenv("LAB_METRICS_DIR", raising=False)
    return folder


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A copy of the four bundled .gz files, free to damage."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in SHA256:
        shutil.copy(REPO_ROOT / "data" / f"{name}.gz", folder)
    return folder


@pytest.fixture(scope="module")
def kernel():
    """One kernel for a module's papermill runs (labutils.runner.SharedKernel), in notebooks/; stopped when the
    module's tests are done, even after a failure."""
    with SharedKernel(REPO_ROOT / "notebooks") as shared:
        yield shared
