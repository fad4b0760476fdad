"""Notebook plumbing: recording metrics, showing expected errors, timing, the environment report, GPU-made files."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ._io import atomic_write_bytes
from .paths import display_path, metrics_dir


def record_metrics(notebook: str, **metrics) -> None:
    """Merge `metrics` into the notebook's JSON record (read by the tests and the regression runs)."""
    path = metrics_dir() / f"{notebook}.json"
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        record = {}
    record.update(metrics)
    atomic_write_bytes(json.dumps(record, indent=1, sort_keys=True, default=_plain).encode(), path)


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


# Terminal colour codes (torch's weights_only error makes a phrase bold): noise in a notebook's output.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def expect_error(*expected: type[BaseException], lines: int = 1) -> Iterator[CaughtError]:
    """Run a block that must fail with one of `expected`; print the error as a learner would see it."""
    caught = CaughtError()
    try:
        yield caught
    except expected as err:
        caught.error = err
        text = ANSI.sub("", "".join(traceback.format_exception_only(type(err), err))).strip().splitlines()
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


def median_seconds(action: Callable[[], object], repeats: int = 5) -> float:
    """Return the median wall time of `action()` over `repeats` runs (what it prints is not shown)."""
    times = []
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


GPU_SAVE_SCRIPT = """
import sys, torch
weights = torch.load(sys.argv[1], weights_only=True)
if torch.cuda.is_available():
    weights = {k: v.cuda() for k, v in weights.items()}
    print("saved from the GPU")
else:  # label every storage 'cuda:0', as torch.save does on a GPU: the file is the same
    torch.serialization.register_package(1, lambda storage: "cuda:0", lambda storage, location: None)
    print("saved on the CPU with cuda:0 labels")
torch.save(weights, sys.argv[2])
"""


GPU_SAVE_TIMEOUT_S = 300  # a fresh Python importing torch, then one small save


_MADE_FROM_GPU: dict[str, tuple[bytes, str]] = {}  # sha256 of a source file: the file made from it, and how
_REMEMBERED_BYTES = 16 * 2**20  # small sources only (the lab's Nets take 250 KB); a large one is not even hashed


def save_as_from_gpu(source: os.PathLike | str, target: os.PathLike | str) -> str:
    """Write the state_dict file `source` to `target` as torch.save on a GPU writes it; return how it was made.

    It runs in a separate process, so that the label hook never touches this one. The same source bytes make the
    same file, so a second call with them (the exercise checks build the same small Net each time) writes the
    remembered file instead of starting Python again.
    """
    source, target = Path(source), Path(target)
    small = source.is_file() and source.stat().st_size <= _REMEMBERED_BYTES
    key = hashlib.sha256(source.read_bytes()).hexdigest() if small else None
    if key in _MADE_FROM_GPU:
        made, how = _MADE_FROM_GPU[key]
        atomic_write_bytes(made, target)
        return how
    done = subprocess.run([sys.executable, "-c", GPU_SAVE_SCRIPT, str(source), str(target)], capture_output=True,
                          text=True, timeout=GPU_SAVE_TIMEOUT_S)
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(f"could not write {display_path(target)} from {display_path(source)}: "
                           f"{lines[-1] if lines else f'the script ended with exit status {done.returncode}'}")
    how = done.stdout.strip()
    if key is not None:
        _MADE_FROM_GPU[key] = (target.read_bytes(), how)
    return how
