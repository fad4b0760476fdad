"""Checks for the exercises of notebook 03 (saving): solutions in notebooks/solutions/ex03_*.py."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..models import Net
from ._core import (_check, _expect, _expect_atomic, _raised_in_learners_code, _watching_renames_and_fsyncs,  # noqa: F401
                    _weights_only_round_trip, _Wrong)

__all__ = ["ex03_1", "ex03_2", "ex03_3"]


def _call(function: Callable, *args) -> tuple[object, str | None]:
    """Call the learner's `function`; return (its result, None), or (None, "Error: message") if their code raised."""
    try:
        return function(*args), None
    except Exception as err:
        if not _raised_in_learners_code(err):
            raise
        return None, f"{type(err).__name__}: {err}"


@_check
def ex03_1(make_checkpoint: Callable) -> str:
    """make_checkpoint(model, optimizer, scheduler, epoch, loss) -> a dict that resumes training and loads
    weights-only, with or without a scheduler, whatever type the epoch and the loss come as."""
    import numpy as np
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loss = F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8))  # a tensor attached to its graph
    loss.backward()
    optimizer.step()
    scheduler.step()
    value = loss.item()

    # 1. a loop like section 3's: a scheduler, an int epoch, the loss tensor
    got, error = _call(make_checkpoint, model, optimizer, scheduler, 3, loss)
    _expect(error is None, f"with a scheduler, epoch 3 and a loss tensor, your code raised {error}.")
    _expect(got is not None,
            "make_checkpoint returned None: return a dict with model, optimizer, scheduler, epoch and loss.")
    _expect(isinstance(got, dict), f"return a dict, not {type(got).__name__}.")
    missing = {"model", "optimizer", "scheduler", "epoch", "loss"} - set(got)
    _expect(not missing, f"the checkpoint lacks {', '.join(sorted(missing))}.")
    loaded = _weights_only_round_trip(got, "save the state_dict() of the model, the optimizer and the scheduler, "
                                           "not the objects.")
    _expect(type(loaded["loss"]) is float, f"the loss came back as a {type(loaded['loss']).__name__}: store a "
                                           "Python float (a tensor keeps its graph alive, NumPy values need code).")
    _expect(loaded["loss"] == value, f"the loss should be {value}, the value passed in, not {loaded['loss']!r}.")
    _expect(type(loaded["epoch"]) is int and loaded["epoch"] == 3,
            f"epoch should be 3, the value passed in, as an int, not {loaded['epoch']!r}.")
    fresh = Net()
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    fresh_scheduler = torch.optim.lr_scheduler.StepLR(fresh_optimizer, step_size=1, gamma=0.5)
    fresh.load_state_dict(loaded["model"])
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    state = optimizer.state_dict()["state"]
    _expect(all(torch.equal(tensor, fresh_optimizer.state_dict()["state"][i][name])
                for i in state for name, tensor in state[i].items()), "the optimizer state did not come back.")
    _expect(isinstance(loaded["scheduler"], dict), "store scheduler.state_dict() under \"scheduler\".")
    fresh_scheduler.load_state_dict(loaded["scheduler"])
    _expect(fresh_scheduler.get_last_lr() == scheduler.get_last_lr(), "the scheduler's state did not come back.")

    # 2. a loop without a schedule
    got, error = _call(make_checkpoint, model, optimizer, None, 3, loss)
    _expect(error is None, f"with scheduler=None, your code raised {error}. A loop without a schedule passes None: "
                           "the checkpoint then stores None under \"scheduler\".")
    loaded = _weights_only_round_trip(got, "with scheduler=None, store None under \"scheduler\".")
    _expect(isinstance(loaded, dict) and "scheduler" in loaded and loaded["scheduler"] is None,
            "with scheduler=None, store None under \"scheduler\", so that the loader knows there was none.")

    # 3. a loop that keeps its numbers in NumPy
    got, error = _call(make_checkpoint, model, optimizer, scheduler, np.int64(3), np.float32(value))
    _expect(error is None, f"with a NumPy epoch and loss (np.int64(3), np.float32), your code raised {error}.")
    loaded = _weights_only_round_trip(got, "the epoch and the loss came as NumPy scalars and stayed NumPy values: "
                                           "store Python numbers, an int and a float (section 3).")
    _expect(type(loaded["epoch"]) is int and type(loaded["loss"]) is float and loaded["loss"] == value,
            "with a NumPy epoch and loss, store an int and a float equal to what was passed in.")

    # 4. a loop that already took .item()
    got, error = _call(make_checkpoint, model, optimizer, scheduler, 3, value)
    _expect(error is None, f"with the loss already a Python float, your code raised {error}. `.item()` belongs to "
                           "tensors and NumPy values, and a Python float has none: handle that case too.")
    loaded = _weights_only_round_trip(got, "with the loss as a Python float, keep it a float.")
    _expect(type(loaded["loss"]) is float and loaded["loss"] == value,
            "with the loss as a Python float, store that float.")
    return ("model, optimizer and scheduler state_dicts (or None), an int epoch and a float loss, whatever type "
            "they came as: it loads with weights_only=True and resumes.")


@_check
def ex03_2(save_atomically: Callable) -> str:
    """save_atomically(obj, path) -> None: a temporary in the same folder, fsync, os.replace, fsync of the folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        with _watching_renames_and_fsyncs(Path(tmp)) as events:
            save_atomically({"epoch": 1, "w": torch.arange(5.0)}, path)
            _expect(path.exists(), "nothing was written at `path`.")
            loaded = torch.load(path, weights_only=True)
            _expect(loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.arange(5.0)),
                    "the saved file does not hold what was passed in.")
            _expect_atomic(events, path)
            before = path.read_bytes()
            raised = False
            try:
                save_atomically({"epoch": 2, "schedule": lambda step: 0.5}, path)  # pickling fails half-way
            except Exception:
                raised = True
        _expect(raised, "a save that fails (here: a lambda cannot be pickled) must raise: let the error through.")
        _expect(path.read_bytes() == before, "the failed save damaged the good checkpoint: write to a temporary "
                                             "file, and only replace `path` once the save succeeded.")
        left = sorted(p.name for p in Path(tmp).iterdir())
        _expect(left == ["checkpoint.pt"], f"the failed save left {left}: delete the temporary when the save fails.")
    return ("temporary in the same folder, fsync, os.replace, fsync of the folder; a failed save left the good file "
            "byte for byte intact.")


@_check
def ex03_3(untie: Callable) -> str:
    """untie(state_dict) -> a dict safetensors accepts: tensors sharing memory with an earlier one are copied."""
    import safetensors.torch

    torch.manual_seed(0)
    shared = torch.randn(10, 16)
    bias = torch.randn(10)
    original = {"embed.weight": shared, "head.weight": shared, "head.bias": bias, "decoder.weight": shared}
    got = untie(original)
    _expect(got is not None, "untie returned None: return a new dict of tensors.")
    _expect(isinstance(got, dict) and list(got) == list(original), "return a dict with the same keys, in order.")
    _expect(all(torch.equal(got[k], v) for k, v in original.items()), "the values changed: copy, do not modify.")
    _expect(original["head.weight"] is shared and original["decoder.weight"] is shared,
            "the input dict changed: build a new one.")
    try:
        safetensors.torch.save(got)
    except RuntimeError:
        _expect(False, "safetensors still refuses: some tensors share memory. Compare "
                       "tensor.untyped_storage().data_ptr() and clone() every repeat.")
    pointers = [got[k].untyped_storage().data_ptr() for k in got]
    _expect(pointers[0] == shared.untyped_storage().data_ptr() and got["head.bias"] is bias,
            "copy only what you must: keep the first tensor of each shared group and every unshared one as they are.")
    return "one copy per repeat, the first and the unshared tensors kept: safetensors saves it."
