"""Notebook plumbing: recording metrics, showing expected errors, and the environment report."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ._io import atomic_write_bytes
from .paths import metrics_dir


def record_metrics(notebook: str, **metrics) -> None:
    """Merge `metrics` into the notebook's JSON record (read by the tests and the regression runs)."""
    path = metrics_dir() / f"{notebook}.json"
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        record = {}
    record.update(metrics)
    atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True, default=_plain).encode())


def _plain(value):
    """Turn tensors and NumPy scalars into plain JSON values."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"record_metrics cannot store {type(value).__name__}; pass numbers, strings, lists or dicts.")


@dataclass
class CaughtError:
    """The error an `expect_error` block raised."""

    error: BaseException | None = None


@contextlib.contextmanager
def expect_error(*expected: type[BaseException], lines: int = 1) -> Iterator[CaughtError]:
    """Run a block that must fail with one of `expected`; print the error as a learner would see it."""
    caught = CaughtError()
    try:
        yield caught
    except expected as err:
        caught.error = err
        text = "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()
        print("\n".join(text[:lines]))
    else:
        raise AssertionError(f"expected {' or '.join(e.__name__ for e in expected)}, but the block ran without error")


def environment_report() -> dict:
    """Return the versions, the device and the data status the lab runs with."""
    import numpy
    import torchvision

    from .data import DataError, verify_mnist
    from .train import pick_device

    try:
        verify_mnist()
        data = "verified (sha256 of all 4 files)"
    except DataError as err:
        data = f"NOT verified: {err}"
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "device (auto)": str(pick_device("auto")),
        "CUDA available": torch.cuda.is_available(),
        "CPU threads": torch.get_num_threads(),
        "MNIST": data,
        "in a virtual environment": sys.prefix != sys.base_prefix or "CONDA_PREFIX" in os.environ,
    }
