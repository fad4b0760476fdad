"""A cache of trained Nets, so that any notebook can start from one without running the others."""
from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import models, train as train_module
from ._io import folder_locked
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sidecar_path
from .data import mnist_tensors
from .models import Net
from .paths import artifacts_dir, display_path, shared_cache_dir
from .train import TrainConfig, fit, pick_device, seed_everything

CACHE_FORMAT = 2


@dataclass
class TrainedNet:
    """A trained Net with the history and configuration that made it."""

    model: Net
    history: list[dict]
    config: TrainConfig
    from_cache: bool
    path: Path


def cache_key(config: TrainConfig, device: str = "cpu") -> str:
    """Return the key of a configuration: it changes with the parameters, the kind of device that trains (a Net
    trained on a GPU or on Apple's MPS computes differently and is not served as a CPU one), torch, and the lab's
    training code."""
    code = hashlib.sha256()
    for module in (models, train_module):
        code.update(Path(module.__file__).read_bytes())
    payload = {"config": config.to_dict(), "format": CACHE_FORMAT, "torch": torch.__version__,
               "code": code.hexdigest()}
    if torch.device(device).type != "cpu":  # CPU keys stay as they were, so existing caches still serve
        payload["device"] = torch.device(device).type
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(config: TrainConfig, device: str = "cpu") -> Path:
    """Return where the Net trained with `config` on `device` (its kind: cpu, cuda, mps) is cached."""
    return artifacts_dir() / "cache" / f"net-{cache_key(config, device)}.pt"


def trained_net(config: TrainConfig | None = None, *, device: str | torch.device = "auto", progress: bool = True,
                **overrides) -> TrainedNet:
    """Return a trained Net in eval mode: from the cache when it holds one for these parameters, else trained now."""
    known = set(TrainConfig.__dataclass_fields__)
    if set(overrides) - known:
        raise TypeError(f"trained_net() got {', '.join(sorted(set(overrides) - known))}; "
                        f"the parameters it knows are {', '.join(sorted(known))} (and device, progress).")
    config = replace(config or TrainConfig(), **overrides)
    device = pick_device(device)
    shared = shared_cache_dir()
    if shared is not None:  # a classroom hub's read-only cache (LAB_SHARED_CACHE), before the learner's own
        path = shared / cache_path(config, device.type).name
        cached = _load(path, config)
        if cached is not None:
            return TrainedNet(cached[0].to(device).eval(), cached[1], config, True, path)
    path = cache_path(config, device.type)
    cached = _load(path, config)
    if cached is None:
        with _one_trainer(path):
            cached = _load(path, config, quiet=True)  # stored by another process while this one waited?
            if cached is None:
                print(f"No trained Net in the cache for {config}: training one now "
                      f"(3 to 8 s per epoch on a 2-core CPU).")
                seed_everything(config.seed)
                model = Net().to(device)
                history = fit(model, mnist_tensors(True, subset=config.train_subset, device=device),
                              mnist_tensors(False, device=device), config, progress=progress)
                path = store_trained_net(model, history, config)
                return TrainedNet(model.eval(), history, config, False, path)
    model, history = cached
    return TrainedNet(model.to(device).eval(), history, config, True, path)


@contextlib.contextmanager
def _one_trainer(path: Path) -> Iterator[None]:
    """Let one process at a time train the Net cached at `path`. Another that asks for the same Net meanwhile (a
    second notebook, a parallel test) waits, then finds it in the cache instead of training it a second time; if
    the first stopped without storing it, the waiting one trains it."""
    lock = path.parent / f".{path.name}.training"  # a folder: the lab's folder lock, which a dead process releases
    try:
        lock.mkdir(parents=True, exist_ok=True)
    except OSError:  # a cache folder this process cannot write to: no lock; the save says what is wrong
        yield
        return
    with folder_locked(lock, blocking=False) as free:
        if free:
            yield
            return
    print(f"Another process is training this Net for {display_path(path)}: waiting for it, then loading it.")
    with folder_locked(lock):
        yield


def store_trained_net(model: Net, history: list[dict], config: TrainConfig) -> Path:
    """Put a Net trained with `config` into the cache, through save_checkpoint (atomic, with a sha256 sidecar)."""
    trained_on = next(model.parameters()).device.type
    path = cache_path(config, trained_on)
    state = {key: tensor.detach().cpu() for key, tensor in model.state_dict().items()}
    return save_checkpoint({"model": state, "history": history}, path,
                           metadata={"config": config.to_dict(), "cache_format": CACHE_FORMAT})


def _load(path: Path, config: TrainConfig, quiet: bool = False) -> tuple[Net, list[dict]] | None:
    """Return the cached Net and history, or None (with a warning, unless `quiet`, when a cached file is unusable)."""
    if not path.exists() and not sidecar_path(path).exists():
        return None
    try:
        payload = load_checkpoint(path)  # verified against its sha256, weights only
        if payload["metadata"].get("config") != config.to_dict():
            raise ValueError(f"it was trained with {payload['metadata'].get('config')}, not {config.to_dict()}")
        model = Net()
        model.load_state_dict(payload["model"])
        return model, payload["history"]
    except (CheckpointError, ValueError, KeyError, TypeError, RuntimeError) as err:
        if not quiet:
            warnings.warn(f"Ignoring the cached Net {display_path(path)}: {err}. Training a new one.", stacklevel=3)
        return None
