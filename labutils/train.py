"""Seeding, devices, and the lab's plain training loop (shown in full in notebook 02)."""
from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from .i18n import N_, translate


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights a training run produces (the cache key of a trained Net)."""

    seed: int = 0
    epochs: int = 3
    batch_size: int = 256
    lr: float = 0.01  # the peak learning rate of the one-cycle schedule
    train_subset: int | None = None  # the first N training images; None for all 60,000

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: use a whole number ≥ 1.")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is not allowed: use a positive learning rate such as 0.01.")
        if self.train_subset is not None and not (isinstance(self.train_subset, int) and self.train_subset >= 1):
            raise ValueError(f"train_subset={self.train_subset!r} is not allowed: use a whole number ≥ 1, "
                             "or None (or 0 in a notebook's parameters) for all 60,000 images.")

    def to_dict(self) -> dict:
        """Return the configuration as plain Python values."""
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and make torch choose deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Return the device to use: "auto" picks CUDA, then Apple's MPS, then the CPU."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"DEVICE={device!r} is not a device: use \"auto\", \"cpu\", \"cuda\" or \"mps\".") from err
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(chosen.type, False):
        raise ValueError(f"DEVICE={device!r} is not available on this machine: use \"auto\" or \"cpu\".")
    return chosen


def make_loader(images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, seed: int) -> DataLoader:
    """Return a shuffling DataLoader over in-memory tensors, its order fixed by an explicit generator."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, generator=generator)


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    progress: tqdm | None = None) -> dict:
    """Train for one pass over `loader`; return the mean loss, each batch's loss and the accuracy seen."""
    model.train()
    total_loss, correct, seen, batch_losses = 0.0, 0, 0, []
    for images, labels in loader:
        optimizer.zero_grad()
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_losses.append(loss.item())
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return {"loss": total_loss / seen, "train_acc": correct / seen, "batch_losses": batch_losses}


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Return the model's logits for `images`, computed in eval mode, leaving the model's mode as it was.

    Batches of 256 keep a LeNet's activations in a CPU's cache: on a 2-core machine the Net's 10,000 test images
    take about half the time they take in batches of 1,000, and the logits come out the same.
    """
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> dict:
    """Return the mean loss and the accuracy of `model` on a labelled set, computed in eval mode."""
    logits = predict(model, images, batch_size)
    return {"loss": F.cross_entropy(logits, labels).item(),
            "accuracy": (logits.argmax(1) == labels).float().mean().item()}


def progress_bar(total: int, desc: str, disable: bool = False) -> tqdm:
    """Return a tqdm.auto bar whose text form, kept in a saved notebook for viewers that draw no widgets, ends full.

    A notebook stores a widget's text form as it was when the widget was shown: 0 %. This bar shows itself with a
    display id and, when it closes, updates that display, so the saved text reads as the bar ended.
    """
    bar = tqdm(total=total, desc=desc, disable=disable, **({"display": False} if _is_widget_bar() else {}))
    container = getattr(bar, "container", None)
    if disable or container is None:
        return bar
    from IPython.display import display

    handle = display(container, display_id=True)
    close = bar.close

    def close_and_update() -> None:
        done = bar.disable  # closed before: nothing new to show
        close()
        if handle is not None and not done:
            handle.update(container)

    bar.close = close_and_update
    return bar


def _is_widget_bar() -> bool:
    """Whether tqdm.auto draws widgets here (in a Jupyter kernel with ipywidgets) rather than text."""
    from tqdm.notebook import tqdm_notebook

    return issubclass(tqdm, tqdm_notebook)


def make_optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    """Return the lab's optimizer (Adam) and schedule (one cycle: warm up, then anneal to almost 0)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps_per_epoch)
    return optimizer, scheduler


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
        config: TrainConfig = TrainConfig(), *, progress: bool = True) -> list[dict]:
    """Train `model` as notebook 02 does and return the history: one dict per epoch.

    Call seed_everything(config.seed) before building the model so that its initial weights are fixed too.
    """
    loader = make_loader(*train, batch_size=config.batch_size, seed=config.seed)
    optimizer, scheduler = make_optimizer(model, config, len(loader))
    history = []
    with progress_bar(config.epochs * len(loader), translate(N_("training")), disable=not progress) as bar:
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            stats = train_one_epoch(model, loader, optimizer, scheduler, bar)
            seconds = time.perf_counter() - start
            test_stats = evaluate(model, *test)
            history.append({"epoch": epoch, **stats, "test_loss": test_stats["loss"],
                            "test_acc": test_stats["accuracy"], "seconds": seconds})
    return history
