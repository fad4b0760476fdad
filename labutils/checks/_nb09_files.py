"""The files and helpers exercise checks of notebook 09 build: kept apart so that its checks module stays short."""
from __future__ import annotations

import torch

from ..models import Net


def _two_gpu_checkpoint() -> tuple[dict, dict[int, str]]:
    """A Net split over two GPUs, with Adam's state and metadata; and the device each storage was saved from."""
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4,
                  "layout": "conv1 and conv2 on cuda:0, fc1 to fc3 on cuda:1"}
    names = [name for name, _ in model.named_parameters()]
    device = {}  # storage address -> the device a two-GPU run would have saved it from
    for name, tensor in checkpoint["model"].items():
        device[tensor.untyped_storage().data_ptr()] = "cuda:0" if name.startswith("conv") else "cuda:1"
    for i, state in checkpoint["optimizer"]["state"].items():
        for key, tensor in state.items():  # Adam keeps its step counts on the CPU, whatever the parameters' device
            device[tensor.untyped_storage().data_ptr()] = (
                "cpu" if key == "step" else "cuda:0" if names[i].startswith("conv") else "cuda:1")
    return checkpoint, device


def write_two_gpu_checkpoint(path) -> None:
    """Write the checkpoint of exercise 09.2 as a two-GPU run saves it: its tensors name cuda:0, cuda:1 and cpu."""
    from unittest import mock

    checkpoint, device = _two_gpu_checkpoint()
    with mock.patch.object(torch.serialization, "location_tag", lambda storage: device[storage.data_ptr()]):
        torch.save(checkpoint, path)  # torch.save asks location_tag for each storage's device: the labels, no GPU


def _same(a, b) -> bool:
    """True when two loaded checkpoints hold equal values (tensors compared on the CPU), at every depth."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class _RunsCode:
    """Pickles as a call to os.path.exists: harmless, but proof that loading ran code."""

    def __reduce__(self):
        import os

        return (os.path.exists, (".",))


def _script_arguments(runs_code: bool = False):
    """A training script's arguments as argparse parsed them: a Namespace, with its optimizer's settings nested."""
    import argparse

    optim = argparse.Namespace(name="adam", lr=_RunsCode() if runs_code else 0.001, betas=(0.9, 0.999))
    return argparse.Namespace(epochs=3, batch_size=64, seed=0, data="mnist", optim=optim)


def _plain(value):
    import argparse

    return {k: _plain(v) for k, v in vars(value).items()} if isinstance(value, argparse.Namespace) else value


def _namespaces_in(value, where: str = "checkpoint") -> list[str]:
    """Where a loaded checkpoint still holds an argparse.Namespace, as paths such as checkpoint['args']."""
    import argparse

    if isinstance(value, argparse.Namespace):
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _namespaces_in(v, f"{where}[{k!r}]")]
    return []


def _make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 2)


def _make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _make_scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=30)


def _lr_steps(model, optimizer, scheduler, steps: int, start: int) -> list[float]:
    rates = []
    for step in range(start, start + steps):
        x = torch.linspace(-1, 1, 8 * 4).reshape(8, 4) * (step % 5 + 1)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


_TINYNET = """
import sys, torch
class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
    def forward(self, x):
        return self.fc(x)
torch.manual_seed(0)
model = TinyNet()
torch.save(model, sys.argv[1])                 # the whole model: a pickle that names __main__.TinyNet
torch.save(model.state_dict(), sys.argv[2])    # what the rescue must end up with
"""


class TinyNet(torch.nn.Module):
    """The class a whole-model pickle in notebook 09 names (__main__.TinyNet), as its author wrote it."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


_TINY_FILES: list[bytes] = []  # the script's two files, made once per process (a new Python costs seconds)


def write_tiny_pickle(path, reference) -> None:
    """Save a whole TinyNet from a script (so the pickle names __main__.TinyNet), and its state_dict beside it."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    if not _TINY_FILES:
        with tempfile.TemporaryDirectory() as tmp:
            made = Path(tmp) / "tiny.pt", Path(tmp) / "reference.pt"
            subprocess.run([sys.executable, "-c", _TINYNET, *map(str, made)], check=True, capture_output=True,
                           timeout=300)
            _TINY_FILES.extend(file.read_bytes() for file in made)
    for target, data in zip((path, reference), _TINY_FILES, strict=True):
        Path(target).write_bytes(data)


class _EncoderOld(torch.nn.Module):
    """Exercise 09.10: a library's text encoder as an older release wrote it (every buffer saved)."""

    def __init__(self, length: int = 6):
        super().__init__()
        self.tokens = torch.nn.Embedding(20, 4)
        self.positions = torch.nn.Embedding(8, 4)
        self.register_buffer("position_ids", torch.arange(8).unsqueeze(0))
        self.register_buffer("mask", torch.ones(length, length).tril())


class _EncoderNew(torch.nn.Module):
    """The release after it: a layer renamed, the two buffers no longer saved, the mask longer."""

    def __init__(self):
        super().__init__()
        self.tokens = torch.nn.Embedding(20, 4)
        self.position_embeddings = torch.nn.Embedding(8, 4)
        self.register_buffer("position_ids", torch.arange(8).unsqueeze(0), persistent=False)
        self.register_buffer("mask", torch.ones(8, 8).tril(), persistent=False)


def _drift_cases() -> list[tuple[str, torch.nn.Module, dict, list[str], list[str]]]:
    """(file name, model, state_dict, harmless keys, keys that need action) for exercise 09.10."""
    from ..models import BatchNormNet

    torch.manual_seed(0)
    upgrade = _EncoderOld().state_dict()
    batchnorm = BatchNormNet()
    statistics = batchnorm.state_dict()
    for key in ("bn1.running_mean", "bn1.running_var"):
        del statistics[key]  # a file whose writer kept only some of the buffers
    return [("encoder_release_1.pt", _EncoderNew(), upgrade, ["position_ids"],
             ["mask", "position_embeddings.weight", "positions.weight"]),
            ("batchnorm_net_partial.pt", batchnorm, statistics, [],
             ["bn1.running_mean", "bn1.running_var"])]
