"""Resumable training: every piece of state a run needs, a checkpoint manager, and an exact resume."""
from __future__ import annotations

import random
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset

from .checkpoint import (CheckpointError, load_checkpoint, remove_stale_temporaries, save_checkpoint, sidecar_path,
                         verify_checksum)
from .models import Net
from .paths import display_path
from .train import TrainConfig, evaluate, make_optimizer, seed_everything

FORMAT = "resume/1"


# --- random number generators -------------------------------------------------------------------------------

def capture_rng(numpy_generator: np.random.Generator) -> dict[str, Any]:
    """Return the state of every random number generator a run draws from, as plain values and tensors."""
    return {
        "python": random.getstate(),  # (version, tuple of 625 ints, None)
        "numpy": numpy_generator.bit_generator.state,  # a dict of ints and strings
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any], numpy_generator: np.random.Generator) -> None:
    """Put every random number generator back in the state `capture_rng` recorded."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_generator.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- the data order -------------------------------------------------------------------------------------------

class ResumableSampler(Sampler[int]):
    """Shuffle like RandomSampler, from its own generator, and start an epoch part-way through when resuming."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch_start = self.generator.get_state()
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        self.epoch_start = self.generator.get_state()
        order = torch.randperm(self.size, generator=self.generator)
        skip, self.skip = self.skip, 0
        yield from order[skip:].tolist()

    def __len__(self) -> int:
        return self.size - self.skip

    def state_dict(self, samples_done: int) -> dict[str, Any]:
        """Return what reproduces the rest of this epoch's order and every later epoch's."""
        start = self.epoch_start if samples_done else self.generator.get_state()
        return {"epoch_start": start.clone(), "samples_done": samples_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["epoch_start"])
        self.skip = state["samples_done"]


# --- a run --------------------------------------------------------------------------------------------------

class ResumableRun:
    """Train a Net step by step so that a run stopped after any batch continues exactly as if it never stopped.

    Each batch is augmented: with probability 1/2 (Python `random`) it is shifted by up to two pixels (NumPy's
    Generator), and noise is added (torch's generator). So every generator matters to the result.
    Python's and torch's generators belong to the process: building a run seeds them, so take a run's
    state_dict() before building another run in the same process.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, *, num_workers: int = 0,
                 test: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.config = config
        self.test = test
        seed_everything(config.seed)
        self.numpy_rng = np.random.default_rng(config.seed)
        self.model = Net()
        self.sampler = ResumableSampler(len(labels), config.seed)
        # The loader gets its own generator: otherwise each new epoch would draw a seed from torch's global one.
        self.loader = DataLoader(TensorDataset(images, labels), batch_size=config.batch_size, sampler=self.sampler,
                                 num_workers=num_workers, generator=torch.Generator().manual_seed(config.seed))
        self.steps_per_epoch = -(-len(labels) // config.batch_size)
        self.optimizer, self.scheduler = make_optimizer(self.model, config, self.steps_per_epoch)
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches finished in the current epoch
        self.history: dict[str, list] = {"loss": [], "lr": [], "test_acc": []}

    @property
    def step(self) -> int:
        """Return the number of optimizer steps taken."""
        return self.epoch * self.steps_per_epoch + self.batch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Shift the batch with probability 1/2 and add a little noise: one draw from each generator."""
        if random.random() < 0.5:
            dy, dx = (int(v) for v in self.numpy_rng.integers(-2, 3, size=2))
            images = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
        return images + 0.1 * torch.randn_like(images)

    def train(self, *, until_step: int | None = None, manager: CheckpointManager | None = None,
              on_step=None) -> None:
        """Train until the end (or until `until_step` steps are done), saving through `manager` when it says so."""
        self.model.train()
        while not self.done:
            if until_step is not None and self.step >= until_step:
                return
            for images, labels in self.loader:
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(self.augment(images)), labels)
                loss.backward()
                self.optimizer.step()
                self.history["lr"].append(self.scheduler.get_last_lr()[0])
                self.scheduler.step()
                self.history["loss"].append(loss.item())
                self.batch += 1
                if self.batch == self.steps_per_epoch:
                    self._end_epoch()
                if manager is not None and manager.due(self):
                    manager.save(self)
                if on_step is not None:
                    on_step(self)
                if until_step is not None and self.step >= until_step:
                    self._park()
                    return
            if self.batch:  # the loader ran dry early (it cannot, unless the data changed)
                raise RuntimeError(f"epoch {self.epoch + 1} ended after {self.batch} of {self.steps_per_epoch} batches")

    def _park(self) -> None:
        """Stopping mid-epoch: rewind the order so that the next train() continues this epoch, not a new one."""
        if self.batch:
            self.sampler.load_state_dict(self.sampler.state_dict(self.batch * self.config.batch_size))

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch = 0
        if self.test is not None:
            self.history["test_acc"].append(evaluate(self.model, *self.test)["accuracy"])
            self.model.train()

    def state_dict(self) -> dict[str, Any]:
        """Return everything needed to continue: model, optimizer, schedule, position, generators and history."""
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "sampler": self.sampler.state_dict(self.batch * self.config.batch_size),
            "rng": capture_rng(self.numpy_rng),
            "history": {k: list(v) for k, v in self.history.items()},
        }

    def load_state_dict(self, state: dict[str, Any], *, skip: tuple[str, ...] = ()) -> None:
        """Restore a run from `state_dict()`; `skip` names pieces to leave out (to show what each one is for)."""
        if state.get("format") != FORMAT:
            raise ValueError(f"not a resumable checkpoint (format {state.get('format')!r}, expected {FORMAT!r})")
        if state["config"] != self.config.to_dict():
            raise ValueError(f"the checkpoint was made with {state['config']}, this run is {self.config.to_dict()}; "
                             "build the run with the checkpoint's configuration")
        self.model.load_state_dict(state["model"])
        if "optimizer" not in skip:
            self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" not in skip:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch = state["epoch"], state["batch"]
        if "sampler" not in skip:
            self.sampler.load_state_dict(state["sampler"])
        else:
            self.sampler.skip = state["sampler"]["samples_done"]  # the position without the order
        if "rng" not in skip:
            restore_rng(state["rng"], self.numpy_rng)
        self.history = {k: list(v) for k, v in state["history"].items()}


def resume(path: str | Path, images: torch.Tensor, labels: torch.Tensor, *, num_workers: int = 0,
           test: tuple[torch.Tensor, torch.Tensor] | None = None) -> ResumableRun:
    """Rebuild a run from a checkpoint file (verified, weights only), ready to continue from its exact batch."""
    state = load_checkpoint(path)
    run = ResumableRun(images, labels, TrainConfig(**state["config"]), num_workers=num_workers, test=test)
    run.load_state_dict(state)
    return run


# --- the checkpoint manager ---------------------------------------------------------------------------------

class CheckpointManager:
    """Save a run every N steps and at each epoch end; keep the last k and the best; find the newest good one."""

    NAME = re.compile(r"step-(\d{8})\.pt")

    def __init__(self, folder: str | Path, *, every: int, keep_last: int = 3, best_metric: str | None = "test_acc",
                 higher_is_better: bool = True):
        if every < 1 or keep_last < 1:
            raise ValueError(f"every={every} and keep_last={keep_last} must both be at least 1")
        self.folder = Path(folder)
        self.every = every
        self.keep_last = keep_last
        self.best_metric = best_metric
        self.higher_is_better = higher_is_better
        self.skipped: list[str] = []

    def due(self, run: ResumableRun) -> bool:
        """True after every `every` steps and at the end of each epoch."""
        return run.step % self.every == 0 or run.batch == 0

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}.pt"

    def save(self, run: ResumableRun) -> Path:
        """Save the run's state atomically, update best.pt when the metric improved, and rotate old files."""
        metrics = {"loss": run.history["loss"][-1] if run.history["loss"] else None}
        if run.history["test_acc"]:
            metrics["test_acc"] = run.history["test_acc"][-1]
        state = run.state_dict()
        meta = {"step": run.step, "epoch": run.epoch, "batch": run.batch, "metrics": metrics}
        path = save_checkpoint(self.path(run.step), state, metadata=meta)
        if run.batch == 0 and self._improves(metrics):
            save_checkpoint(self.folder / "best.pt", state, metadata=meta)
        self._rotate()
        return path

    def _improves(self, metrics: dict) -> bool:
        if self.best_metric is None or metrics.get(self.best_metric) is None:
            return False
        best = self.folder / "best.pt"
        try:
            previous = load_checkpoint(best)["metadata"]["metrics"].get(self.best_metric)
        except CheckpointError:
            return True
        if previous is None:
            return True
        new = metrics[self.best_metric]
        return new > previous if self.higher_is_better else new < previous

    def checkpoints(self) -> list[Path]:
        """Return the step checkpoints in the folder, oldest first."""
        found = [p for p in self.folder.glob("step-*.pt") if self.NAME.fullmatch(p.name)]
        return sorted(found, key=lambda p: int(self.NAME.fullmatch(p.name).group(1)))

    def _rotate(self) -> None:
        """Delete all but the newest `keep_last` step checkpoints (the one just saved is always among them)."""
        for old in self.checkpoints()[:-self.keep_last]:
            old.unlink(missing_ok=True)
            sidecar_path(old).unlink(missing_ok=True)

    def latest(self) -> Path | None:
        """Return the newest checkpoint that verifies; warn about (and skip) damaged ones; clean dead saves."""
        remove_stale_temporaries(self.folder)
        self.skipped = []
        for path in reversed(self.checkpoints()):
            try:
                verify_checksum(path)
                return path
            except CheckpointError as err:
                self.skipped.append(path.name)
                warnings.warn(f"Skipping {display_path(path)}: {err.problem}. Falling back to an older checkpoint.",
                              stacklevel=2)
        return None
