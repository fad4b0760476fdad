"""Sharing a trained Net: a Hugging Face-style model folder with a model card and checksums, offline."""
from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin

from . import sha256sums
from ._io import atomic_write_bytes
from .checkpoint import ChecksumMismatchError, ChecksumMissingError
from .data import MEAN, STD
from .models import Net

CHECKSUMS = "SHA256SUMS"


class HubNet(Net, PyTorchModelHubMixin, library_name="save-load-lab", license="cc-by-sa-3.0",
             tags=["mnist", "image-classification", "lenet"]):
    """Net with save_pretrained / from_pretrained; its config.json records the preprocessing it expects."""

    def __init__(self, num_classes: int = 10, mean: float = MEAN, std: float = STD, image_size: int = 28):
        super().__init__(num_classes=num_classes)
        self.mean, self.std, self.image_size = mean, std, image_size


# The files HubNet.from_pretrained and tools/predict.py load: a listing that leaves one out proves nothing.
LOADED = ("config.json", "model.safetensors")


def write_checksums(folder: os.PathLike | str) -> Path:
    """Write SHA256SUMS (the format of `sha256sum -c`) for every file in `folder`, atomically; return its path.

    Hidden files (the lab's locks and temporaries) are left out, as the shell's `sha256sum *` leaves them out.
    """
    folder = Path(folder)
    lines = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != CHECKSUMS and not path.name.startswith("."):
            with open(path, "rb") as f:
                lines.append(sha256sums.line(sha256sums.file_digest(f), path.name))
    return atomic_write_bytes("".join(lines).encode(), folder / CHECKSUMS)


def verify_checksums(folder: os.PathLike | str, required: tuple[str, ...] = LOADED) -> list[str]:
    """Check every file SHA256SUMS lists, and that it lists the `required` ones; return the names checked.

    Raises naming the first file that is missing, changed, or left out of the listing; a listing that names a path
    (`../x`, `/x`, `sub/x`, `..`) is refused before any file is read. This checks the folder as
    it is now: HubNet.from_pretrained opens the files again afterwards, which matters only if someone can write
    to the folder in between (tools/predict.py, which loads folders made elsewhere, loads the very bytes it checked).
    """
    folder = Path(folder)
    sums = folder / CHECKSUMS
    if not sums.is_file():
        raise ChecksumMissingError(sums, "the model folder has no SHA256SUMS", "write it with write_checksums(folder)")
    try:
        entries = sha256sums.parse(sums.read_text())
    except (sha256sums.FormatError, UnicodeDecodeError) as err:
        raise ChecksumMismatchError(sums, f"it is not a sha256sum listing ({err})",
                                    "copy the folder again, or rewrite it with write_checksums(folder)") from err
    if outside := [name for _digest, name in entries if not _in_folder(name)]:
        raise ChecksumMismatchError(sums, f"it names {outside[0]!r}, which is not a file in this folder: a model "
                                    "folder's listing holds bare file names, and a path could make the check read "
                                    "(and report on) a file outside it",
                                    "rewrite it with write_checksums(folder) where the folder was made, or copy the "
                                    "folder again from its source")
    listed = {name for _digest, name in entries}
    if left_out := [name for name in required if name not in listed]:
        raise ChecksumMismatchError(sums, f"it does not list {', '.join(left_out)}, which loading the model reads, "
                                    "so those files cannot be verified",
                                    "rewrite it with write_checksums(folder) where the folder was made")
    names = []
    for digest, name in entries:
        path = folder / name
        if not path.is_file():
            raise ChecksumMismatchError(path, "it is listed in SHA256SUMS but missing", "copy the whole folder again")
        with open(path, "rb") as f:
            actual = sha256sums.file_digest(f)
        if actual != digest:
            raise ChecksumMismatchError(path, f"its sha256 is {actual[:16]}…, SHA256SUMS says {digest[:16]}…",
                                        "the file changed after the folder was made: copy it again")
        names.append(name)
    return names


def _in_folder(name: str) -> bool:
    """True for a bare file name: no path separator, not absolute, not "." or ".."."""
    separators = {os.sep, os.altsep, "/"} - {None}
    return name not in (".", "..") and not any(sep in name for sep in separators)


def _subset(config: dict) -> str:
    """Return ' (a subset of N)' when the model was trained on part of the training set."""
    return f" (a subset of {config['train_subset']:,})" if config.get("train_subset") else ""


def model_card(*, test_accuracy: float, config: dict, parameters: int) -> str:
    """Return a model card (README.md) with the Hub's metadata header, built from measured figures."""
    return f"""---
library_name: save-load-lab
license: cc-by-sa-3.0
tags:
- mnist
- image-classification
- lenet
datasets:
- mnist
metrics:
- accuracy
---

# LeNet for MNIST digits (Save & Load Lab)

A LeNet-5-style convolutional network ({parameters:,} parameters) that classifies 28×28 grayscale images of
handwritten digits, trained in the Save & Load Lab.

## Results
- Test accuracy on the 10,000 MNIST test images: **{test_accuracy:.2%}** (measured when this folder was made).

## Training
- Data: the 60,000 MNIST training images{_subset(config)}.
- Adam with a one-cycle learning-rate schedule, peak {config['lr']}, batch size {config['batch_size']},
  {config['epochs']} epochs, seed {config['seed']}.

## Use
Inputs: tensors of shape (N, 1, 28, 28), pixels scaled to [0, 1] and then normalised with the `mean` and
`std` in `config.json`. Outputs: 10 logits, one per digit. Load it with `HubNet.from_pretrained(folder)` or
without the lab's code with `tools/predict.py`.

## Intended use and limitations
For learning how models are saved, shared and deployed. Like MNIST it expects a single centred, white digit
on black; it has not been tested on other handwriting, scanned forms (dark digits on white: invert them),
letters or other image sizes, and it gives a confident answer even for images that are not digits.

## Data licence
MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0.

## Files
`model.safetensors` (weights), `config.json` (constructor arguments and preprocessing), this card, and
`SHA256SUMS` (check with `sha256sum -c SHA256SUMS`).
"""
