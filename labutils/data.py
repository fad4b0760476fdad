"""Bundled MNIST: verified files, torchvision datasets and in-memory tensors.

torchvision is imported only by `mnist()`, the one function that returns its dataset: importing it costs about
1.5 s on a 2-core CPU, paid by every process that imports labutils (kernels, the scripts, the tests' children).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from torchvision import datasets, transforms

from ._io import atomic_write, sha256_file
from .paths import data_dir, display_path

# The normalisation every notebook uses: mean and std of the training pixels scaled to [0, 1].
MEAN, STD = 0.1307, 0.3081

# sha256 of the uncompressed canonical IDX files (the same values as data/SHA256SUMS).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
RESTORE = "Restore the bundled files with `git checkout data/` (and delete data/MNIST/ if it exists)."

# Raw files already checked in this process: path -> (size, mtime_ns) when it was checked.
_verified: dict[Path, tuple[int, int]] = {}


class DataError(RuntimeError):
    """The bundled MNIST is missing or damaged; the message says which file and how to restore it."""


def raw_dir(root: os.PathLike | str | None = None) -> Path:
    """Return the folder torchvision reads MNIST from (`<root>/MNIST/raw`)."""
    return Path(root or data_dir()) / "MNIST" / "raw"


def verify_mnist(root: os.PathLike | str | None = None) -> Path:
    """Decompress the bundled MNIST once, check every file's sha256, and return the raw folder."""
    root = Path(root or data_dir())
    raw = raw_dir(root)
    for name, expected in SHA256.items():
        target = raw / name
        if _is_verified(target):
            continue
        if target.exists():
            actual = sha256_file(target)
            if actual == expected:
                _mark_verified(target)
                continue
            print(f"{display_path(target)} is damaged (sha256 {actual[:12]}…, expected {expected[:12]}…); "
                  f"extracting it again from {name}.gz", file=sys.stderr)
        _extract(root / f"{name}.gz", target, expected)
        _mark_verified(target)
    return raw


def mnist(train: bool = True, *, transform: transforms.Compose | None = None, download: bool = False,
          root: os.PathLike | str | None = None) -> datasets.MNIST:
    """Return torchvision's MNIST over the bundled, verified copy (ToTensor + Normalize by default)."""
    from torchvision import datasets, transforms

    root = Path(root or data_dir())
    if download and not all((root / f"{n}.gz").exists() for n in SHA256):
        datasets.MNIST(root, train=train, download=True)  # the network, only because you asked
        _verified.clear()
    verify_mnist(root)
    if transform is None:
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    return datasets.MNIST(root, train=train, transform=transform, download=False)


def mnist_tensors(train: bool = True, *, subset: int | None = None, device: torch.device | str = "cpu",
                  root: os.PathLike | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return MNIST as normalised float images (N, 1, 28, 28) and int64 labels, all in memory."""
    images, labels = _raw_tensors(train, str(Path(root or data_dir()).resolve()))
    if subset:
        if not 0 < subset <= len(labels):
            raise ValueError(f"subset={subset} is out of range: the {'training' if train else 'test'} set "
                             f"has {len(labels)} images; pass a number from 1 to {len(labels)}, or None for all.")
        images, labels = images[:subset], labels[:subset]
    images = images.to(device=device, dtype=torch.float32).div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    return images, labels.to(device, copy=True)  # a copy: changing it must not change the cached labels


@functools.lru_cache(maxsize=4)
def _raw_tensors(train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the uint8 images (N, 28, 28) and int64 labels of one split, read once per process.

    The same tensors as torchvision's `datasets.MNIST(...).data` and `.targets` (tests/test_data.py compares them),
    read straight from the verified IDX files.
    """
    raw = verify_mnist(root)
    prefix = "train" if train else "t10k"
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte").long()
    return images, labels


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (MNIST's format): a 4-byte magic 0x0000 08 NDIM, NDIM big-endian
    sizes, then the bytes. Returns a uint8 tensor of that shape; a file of another kind raises DataError."""
    data = Path(path).read_bytes()
    ndim = data[3] if len(data) >= 4 else 0
    header = 4 + 4 * ndim
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= ndim <= 3 or len(data) < header:
        raise DataError(f"{display_path(path)} is not an IDX file of unsigned bytes. {RESTORE}")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(shape)):
        raise DataError(f"{display_path(path)} holds {len(data) - header} bytes of data where its header "
                        f"promises {shape}. {RESTORE}")
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy())


def _is_verified(path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return _verified.get(path) == (st.st_size, st.st_mtime_ns)


def _mark_verified(path: Path) -> None:
    st = path.stat()
    _verified[path] = (st.st_size, st.st_mtime_ns)


def _extract(gz: Path, target: Path, expected: str) -> None:
    """Decompress `gz` into `target` atomically, refusing content whose sha256 is not `expected`."""
    if not gz.exists():
        raise DataError(f"{display_path(gz)} is missing: the lab expected the bundled MNIST file there "
                        f"(it decompresses to sha256 {expected}) and found nothing. {RESTORE}")
    def decompress(out) -> None:
        digest = hashlib.sha256()
        with gzip.open(gz, "rb") as src:
            while block := src.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected:
            raise DataError(f"{display_path(gz)} does not hold the canonical MNIST: it decompresses to sha256 "
                            f"{digest.hexdigest()}, expected {expected}. {RESTORE}")

    try:
        atomic_write(target, decompress)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{display_path(gz)} is damaged and cannot be decompressed ({type(err).__name__}: "
                        f"{err}); it should decompress to sha256 {expected}. {RESTORE}") from err


def main() -> int:
    """Check the bundled data from the command line (`python -m labutils`)."""
    try:
        raw = verify_mnist()
    except DataError as err:
        print(f"MNIST check failed: {err}", file=sys.stderr)
        return 1
    print(f"MNIST verified: {len(SHA256)} files, sha256 OK, in {display_path(raw)}")
    return 0
