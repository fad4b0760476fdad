"""The capstone's contract as the checks use it: small data, and a run made, trained and saved the lab's way.

The checks of notebook 11 test each step on its own: where a step needs another (a resume needs a saved run),
they use these, so that a mistake in one step does not show up as a failure of another.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import BatchNormNet
from ._core import _equal_states


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def _batches(images: torch.Tensor, labels: torch.Tensor, size: int = 16) -> Callable[[int], tuple]:
    """batch(step) -> the images and labels of that step: a new order each pass, a pure function of the step."""
    per_pass = len(images) // size

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1000 + step // per_pass))
        chosen = order[(step % per_pass) * size:(step % per_pass + 1) * size]
        return images[chosen], labels[chosen]

    return batch


def _reference_run(seed: int, total_steps: int, lr: float = 0.05) -> dict:
    torch.manual_seed(seed)
    model = BatchNormNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "step": 0, "best_acc": 0.0}


def _reference_train(run: dict, batch: Callable, until_step: int) -> None:
    while run["step"] < until_step:
        run["model"].train()
        images, labels = batch(run["step"])
        loss = F.cross_entropy(run["model"](images), labels)
        run["optimizer"].zero_grad()
        loss.backward()
        run["optimizer"].step()
        run["scheduler"].step()
        run["step"] += 1


def _reference_save(run: dict, path: Path) -> None:
    torch.save({"model": run["model"].state_dict(), "optimizer": run["optimizer"].state_dict(),
                "scheduler": run["scheduler"].state_dict(), "step": run["step"], "best_acc": run["best_acc"],
                "rng": torch.get_rng_state()}, path)


def _same_optimizer_state(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> bool:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    return sa.keys() == sb.keys() and all(_equal_states(sa[i], sb[i]) for i in sa)
