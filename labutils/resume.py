"""Resumable training: every piece of state a run needs, a checkpoint manager, and an exact resume."""
from __future__ import annotations

import contextlib
import random
import re
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ._io import remove_stale_temporaries
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sidecar_path, verify_checksum
from .models import Net
from .paths import display_path
from .train import TrainConfig, evaluate, make_optimizer, seed_everything

FORMAT = "resume/2"

# Exit statuses of a training script stopped by a signal after saving: the shell's 128 + the signal's number.
STOPPED_EXIT = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}


class ResumeError(CheckpointError):
    """A checkpoint that loads is not one this run can continue from (another format or configuration)."""


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
    saved, here = state.get("cuda", []), torch.cuda.device_count()
    if saved and len(saved) == here:
        torch.cuda.set_rng_state_all(saved)
    elif saved:  # GPU i's state belongs to GPU i: with another number of GPUs, no draw on them can repeat
        warnings.warn(f"the checkpoint holds the random state of {len(saved)} GPU(s) and this machine has {here}: "
                      "the CPU generators are restored, the GPUs' are not, so random draws on the GPU will differ "
                      "from the interrupted run's.", stacklevel=2)


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


class ShiftedImages(Dataset):
    """Images shifted by up to one pixel at random, in the DataLoader's worker processes.

    Which worker loads which batch is not part of any state, and a worker's own generators restart with each
    epoch, so the shift of an image is drawn from a generator seeded by the epoch's seed and the image's index:
    the same in any worker, and after a resume. The run sets `epoch_seed` from the DataLoader's generator at
    the start of each epoch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels
        self.epoch_seed = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed((self.epoch_seed + index) % 2**63)
        dy, dx = torch.randint(-1, 2, (2,), generator=generator).tolist()
        return torch.roll(self.images[index], shifts=(dy, dx), dims=(1, 2)), self.labels[index]


def ignore_stop_signals(worker_id: int) -> None:
    """Let DataLoader workers ignore SIGTERM and SIGINT: the main process decides when to stop, and ends them."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StopRequest:
    """Set by SIGTERM or SIGINT while a run trains: the run stops after the current step, saving first."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[StopRequest]:
    """Turn the first of `signals` into a StopRequest; the handlers are put back on exit, or by the first signal,
    so that a second one acts as usual (Ctrl-C twice interrupts at once). Off the main thread nothing is caught."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {}

    def handler(signum, frame) -> None:
        request.signal = signal.Signals(signum)
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in signals:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- a run --------------------------------------------------------------------------------------------------

class ResumableRun:
    """Train a Net step by step so that a run stopped after any batch continues exactly as if it never stopped.

    Images are augmented twice: in the DataLoader's workers each image is shifted by up to a pixel (see
    ShiftedImages: drawn from the DataLoader's generator), and in the training loop each batch, with probability
    1/2 (Python `random`), gets its contrast scaled (NumPy's Generator), then noise (torch's generator). So every
    generator matters to the result. Python's and torch's generators belong to the process: building a run seeds
    them, so take a run's state_dict() before building another run in the same process.

    While `train` runs, SIGTERM (what a cluster sends before it stops a job) and SIGINT (Ctrl-C, Jupyter's
    interrupt) make it finish the current step, save through its manager and return, with `stopped_by` set.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, *, num_workers: int = 0,
                 test: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.config = config
        self.test = test
        seed_everything(config.seed)
        self.numpy_rng = np.random.default_rng(config.seed)
        self.model = Net()
        self.sampler = ResumableSampler(len(labels), config.seed)
        self.dataset = ShiftedImages(images, labels)
        # The loader's own generator seeds each epoch's shifts and workers; without one, each epoch would draw a
        # seed from torch's global generator.
        self.loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler,
                                 num_workers=num_workers, generator=torch.Generator().manual_seed(config.seed),
                                 worker_init_fn=ignore_stop_signals if num_workers else None)
        self.loader_epoch_start = self.loader.generator.get_state()
        self.steps_per_epoch = -(-len(labels) // config.batch_size)
        self.optimizer, self.scheduler = make_optimizer(self.model, config, self.steps_per_epoch)
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches finished in the current epoch
        self.history: dict[str, list] = {"loss": [], "lr": [], "test_acc": []}
        self.stop_request = StopRequest()
        self.stopped_by: str | None = None  # "SIGTERM" or "SIGINT" when a signal stopped the last train()

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

    @property
    def stop_requested(self) -> bool:
        """True once SIGTERM or SIGINT arrived during train(): the run stops after the current step."""
        return bool(self.stop_request)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Scale the batch's contrast with probability 1/2 and add a little noise: one draw from each generator."""
        if random.random() < 0.5:
            images = images * float(self.numpy_rng.uniform(0.8, 1.2))
        return images + 0.1 * torch.randn_like(images)

    def _begin_epoch(self) -> None:
        """Draw this epoch's shift seed from the loader's generator (which then seeds the workers as well)."""
        self.loader_epoch_start = self.loader.generator.get_state()
        self.dataset.epoch_seed = int(torch.randint(2**62, (), generator=self.loader.generator))

    def train(self, *, until_step: int | None = None, manager: CheckpointManager | None = None,
              on_step=None) -> None:
        """Train until the end (or until `until_step` steps are done), saving through `manager` when it says so.

        SIGTERM or SIGINT stops it after the current step: it saves through `manager` (unless that step was just
        saved) and returns with `stopped_by` naming the signal; a second signal acts as usual.
        """
        self.model.train()
        self.stopped_by = None
        with stop_on_signals() as self.stop_request:
            while not self.done:
                if until_step is not None and self.step >= until_step:
                    return
                self._begin_epoch()
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
                    saved = manager is not None and manager.due(self)
                    if saved:
                        manager.save(self)
                    if on_step is not None:
                        on_step(self)
                    if self.stop_request:
                        if manager is not None and not saved:
                            manager.save(self)
                        self.stopped_by = self.stop_request.signal.name
                        self._park()
                        return
                    if until_step is not None and self.step >= until_step:
                        self._park()
                        return
                if self.batch:  # the loader ran dry early (it cannot, unless the data changed)
                    raise RuntimeError(f"epoch {self.epoch + 1} ended after {self.batch} of {self.steps_per_epoch} "
                                       "batches")

    def _park(self) -> None:
        """Stopping mid-epoch: rewind the order and the loader so that the next train() continues this epoch."""
        if self.batch:
            self.sampler.load_state_dict(self.sampler.state_dict(self.batch * self.config.batch_size))
            self.loader.generator.set_state(self.loader_epoch_start)

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
            # the loader's generator as the epoch started (mid-epoch) or now (between epochs): it seeds the shifts
            "loader_generator": (self.loader_epoch_start if self.batch else self.loader.generator.get_state()).clone(),
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
        if "loader_generator" not in skip:
            self.loader.generator.set_state(state["loader_generator"])
        if "rng" not in skip:
            restore_rng(state["rng"], self.numpy_rng)
        self.history = {k: list(v) for k, v in state["history"].items()}


def resume(path: str | Path, images: torch.Tensor, labels: torch.Tensor, *, num_workers: int = 0,
           test: tuple[torch.Tensor, torch.Tensor] | None = None) -> ResumableRun:
    """Rebuild a run from a checkpoint file (verified, weights only), ready to continue from its exact batch.

    Every error names the file: a missing or damaged one (CheckpointError), or one that is not a resumable
    checkpoint of this format, or that does not fit the data given (ResumeError).
    """
    path = Path(path)
    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ResumeError(path, f"it is not a resumable checkpoint of this lab (format {found!r}, expected "
                          f"{FORMAT!r})", "resume from a file that CheckpointManager.save or "
                          "save_checkpoint(run.state_dict(), path) wrote")
    try:
        config = TrainConfig(**state["config"])
        if config.train_subset not in (None, len(labels)) or len(images) != len(labels):
            raise ValueError(f"it was made with {config.train_subset} training images, but {len(labels)} were given")
        run = ResumableRun(images, labels, config, num_workers=num_workers, test=test)
        run.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ResumeError(path, f"this run cannot continue from it ({type(err).__name__}: {err})",
                          "pass the training data it was made with, or start a new run") from err
    return run


# --- the checkpoint manager ---------------------------------------------------------------------------------

class CheckpointManager:
    """Save a run every N steps and at each epoch end; keep the last k and the best; find the newest good one.

    "The last k" are the checkpoint just saved and the k - 1 highest steps among the others: a save never deletes
    the file it has just written, even when the folder holds higher steps (ones latest() skipped as damaged).
    """

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
        self._best: tuple[Any, tuple] | None = None  # best.pt's metric, and the file's stamp when it was known

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
        path = save_checkpoint(state, self.path(run.step), metadata=meta)
        if run.batch == 0 and self._improves(metrics):
            best = save_checkpoint(state, self.folder / "best.pt", metadata=meta)
            self._best = metrics[self.best_metric], _stamp(best)
        self._rotate(path)
        return path

    def _improves(self, metrics: dict) -> bool:
        if self.best_metric is None or metrics.get(self.best_metric) is None:
            return False
        previous = self._best_so_far()
        if previous is None:
            return True
        new = metrics[self.best_metric]
        return new > previous if self.higher_is_better else new < previous

    def _best_so_far(self) -> Any:
        """Return the metric best.pt holds: None when it is missing, damaged or has no such metric.

        It is remembered from the last save or read, as long as best.pt and its sidecar are the files they were
        then (same inode, size and modification time). Otherwise best.pt is read again, once: its sha256 is
        checked and its metadata read, with the tensors left on the "meta" device (no data read into memory).
        """
        best = self.folder / "best.pt"
        stamp = _stamp(best)
        if self._best is not None and self._best[1] == stamp:
            return self._best[0]
        try:
            value = load_checkpoint(best, map_location="meta")["metadata"]["metrics"].get(self.best_metric)
        except CheckpointError:
            return None
        self._best = value, stamp
        return value

    def checkpoints(self) -> list[Path]:
        """Return the step checkpoints in the folder, oldest first."""
        found = [p for p in self.folder.glob("step-*.pt") if self.NAME.fullmatch(p.name)]
        return sorted(found, key=lambda p: int(self.NAME.fullmatch(p.name).group(1)))

    def _rotate(self, saved: Path) -> None:
        """Keep `keep_last` step checkpoints: the one just saved, and the newest of the others; delete the rest.

        The one just saved is kept even when newer steps are in the folder: a run that resumed from step 200,
        because latest() skipped a damaged step 300, must not lose its own step 250 to the damaged file.
        """
        others = [p for p in self.checkpoints() if p != saved]
        for old in others[:max(0, len(others) - (self.keep_last - 1))]:
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


def _stamp(path: Path) -> tuple:
    """Return what tells a file and its sidecar apart from a rewritten or replaced copy: inode, size, mtime."""
    stamp = []
    for p in (path, sidecar_path(path)):
        try:
            st = p.stat()
        except FileNotFoundError:
            stamp.append(None)
        else:
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamp)
