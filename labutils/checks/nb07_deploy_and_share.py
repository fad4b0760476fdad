"""Checks for the exercises of notebook 07 (deploy and share): solutions in notebooks/solutions/ex07_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Net
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex07_1", "ex07_2", "ex07_3"]


@_check
def ex07_1(export_dynamic: Callable) -> str:
    """export_dynamic(model, image) -> an ExportedProgram, built from one image, that takes any batch size."""
    import os
    import tempfile

    torch.manual_seed(0)
    model = Net().eval()
    requests = torch.randn(5000, 1, 28, 28, generator=torch.Generator().manual_seed(1))  # 15.7 MB of images
    image = requests[:1]  # one image, as a request brings it: a view of the whole tensor
    try:
        got = export_dynamic(model, image)
    except Exception as err:  # any other error is reported as the learner's by @_check, with its message
        if "Constraints violated" not in str(err):
            raise
        raise _Wrong("torch.export refused the dynamic batch (Constraints violated): with a batch of 1 as the "
                     "example, it treats that dimension as the constant 1. Build an example of 2 or more images "
                     "from the one you get.") from None
    _expect(got is not None, "export_dynamic returned None: return torch.export.export(...).")
    _expect(isinstance(got, torch.export.ExportedProgram), f"return an ExportedProgram, not {type(got).__name__}.")
    for n in (1, 7, 100):
        try:
            out = got.module()(requests[:n])
        except Exception as err:
            raise _Wrong(f"a batch of {n} failed ({type(err).__name__}): pass dynamic_shapes={{'x': {{0: "
                         "torch.export.Dim('batch')}} so that the batch size is free.") from None
        with torch.no_grad():
            same = torch.allclose(out, model(requests[:n]), atol=1e-6)
        _expect(same, f"a batch of {n} gave other logits than the model.")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.pt2")
        torch.export.save(got, path)
        size = os.path.getsize(path)
    _expect(size < 2_000_000, f"the saved program takes {size / 1e6:.1f} MB for 0.25 MB of weights: its example is "
                              "still a view of the 5,000 images and drags all of them into the file; clone it.")
    return f"batches of 1, 7 and 100 run and match the model; the .pt2 takes {size / 1e6:.2f} MB."


@_check
def ex07_2(changed_files: Callable) -> str:
    """changed_files(folder) -> sorted names listed in SHA256SUMS that are missing or differ."""
    import tempfile
    from pathlib import Path

    from ..share import write_checksums

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, content in {"config.json": b"{}", "model.safetensors": b"\x00" * 64, "README.md": b"# card"}.items():
            (folder / name).write_bytes(content)
        write_checksums(folder)
        got = changed_files(folder)
        _expect(got is not None, "changed_files returned None: return a list of names (empty when all is well).")
        _expect(list(got) == [], f"the folder is intact, but you returned {got!r}.")
        (folder / "model.safetensors").write_bytes(b"\x01" * 64)
        (folder / "notes.txt").write_text("not listed in SHA256SUMS: ignore it")
        got = changed_files(folder)
        _expect(list(got) == ["model.safetensors"], f"model.safetensors changed; you returned {got!r}.")
        (folder / "config.json").unlink()
        got = changed_files(folder)
        _expect(list(got) == ["config.json", "model.safetensors"],
                f"config.json is missing and model.safetensors changed; you returned {got!r} (a missing file counts "
                "as changed; sort the names).")
    return "changed and missing files found, unlisted ones ignored."


@_check
def ex07_3(dense_kernel_for_keras: Callable) -> str:
    """dense_kernel_for_keras(weight, chw) -> the Keras Dense kernel of a Linear weight reading a flattened CHW map."""
    import numpy as np

    rng = np.random.default_rng(0)
    cases = [((16, 5, 5), 120), ((8, 3, 4), 7)]  # the lab's fc1, then another network's first Linear layer
    for number, ((channels, height, width), out) in enumerate(cases):
        weight = rng.standard_normal((out, channels * height * width)).astype(np.float32)
        try:
            got = dense_kernel_for_keras(weight.copy(), (channels, height, width))
        except Exception as err:
            if number == 0:
                raise  # the learner's own error, reported as theirs
            raise _Wrong(f"with chw={(channels, height, width)} and a weight of shape {weight.shape}, your function "
                         f"raised {type(err).__name__}: take the sizes from `chw` and `weight.shape`, not fc1's "
                         "numbers.") from None
        _expect(got is not None, "dense_kernel_for_keras returned None: return the Dense kernel, a NumPy array.")
        got = np.asarray(got)
        inputs = channels * height * width
        _expect(got.shape == (inputs, out),
                f"for a weight of shape {weight.shape} you returned shape {got.shape}: a Dense kernel is "
                f"(inputs, outputs), here {(inputs, out)}.")
        feature_maps = rng.standard_normal((3, channels, height, width)).astype(np.float32)
        in_torch = feature_maps.reshape(3, -1) @ weight.T  # what the Linear layer gives after torch.flatten
        in_keras = feature_maps.transpose(0, 2, 3, 1).reshape(3, -1) @ got  # Keras's Flatten of the NHWC map
        if not np.allclose(in_keras, in_torch, atol=1e-4):
            _expect(not np.array_equal(got, weight.T),
                    "the shape is right, but the rows are in PyTorch's flatten order (channel, row, column); "
                    "Keras flattens an NHWC map by row, column, then channel: reorder the rows (section 7).")
            raise _Wrong(f"with chw={(channels, height, width)}, your kernel gives other outputs than the Linear "
                         "layer on the same maps: row i of the kernel must hold the weights of the pixel and channel "
                         "that Keras's Flatten puts at position i.")
    return "the kernel gives the Linear layer's outputs on Keras's flattened maps, for fc1 and for another shape."
