"""Checks for notebook 11 (checkpoints in frameworks): solutions in notebooks/solutions/ex11_*.py.

lightning is imported inside the check, so that `import labutils` stays quick.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from ._core import _check, _equal_states, _expect, _Wrong

__all__ = ["ex11_1", "ex11_2"]

_STEPS_PER_EPOCH = 4  # 256 random images in batches of 64
_SAVE_EVERY = 6  # a checkpoint at step 6 (epoch 1, batch 2) and at step 12 (the end of epoch 3)


def _lightning_checkpoints() -> list[dict]:
    """Train a Net in Lightning for 3 epochs of 4 batches, saving every 6 steps; return the checkpoints in order."""
    import logging
    import tempfile
    import warnings
    from pathlib import Path

    import lightning as L
    import torch.nn.functional as F
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from ..models import Net

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Net()

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)}

    generator = torch.Generator().manual_seed(11)
    data = TensorDataset(torch.randn(64 * _STEPS_PER_EPOCH, 1, 28, 28, generator=generator),
                         torch.randint(0, 10, (64 * _STEPS_PER_EPOCH,), generator=generator))
    torch.manual_seed(11)
    module = Module()
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saver = ModelCheckpoint(dirpath=folder, every_n_train_steps=_SAVE_EVERY, save_top_k=-1)
            trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=3, logger=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[saver])
            trainer.fit(module, DataLoader(data, batch_size=64))
            paths = sorted(Path(folder).glob("*.ckpt"), key=lambda p: int(p.stem.rsplit("=", 1)[1]))
            return [torch.load(path, weights_only=True) for path in paths]
    finally:
        logger.setLevel(level)


def _optimizer_for(net: torch.nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)


@_check
def ex11_1(net_from_state_folder: Callable) -> str:
    """net_from_state_folder(folder) -> a plain Net with an accelerate save_state folder's weights, in eval mode."""
    import tempfile
    from pathlib import Path

    import torch.nn.functional as F
    from accelerate import Accelerator

    from ..models import Net

    torch.manual_seed(11)
    accelerator = Accelerator(cpu=True)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.backward(F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,))))
    optimizer.step()
    expected = {name: tensor.clone() for name, tensor in accelerator.unwrap_model(model).state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "accelerate-state"
        accelerator.save_state(folder)
        before = {path.name: path.read_bytes() for path in folder.iterdir()}
        got = net_from_state_folder(folder)
        _expect(got is not None, "net_from_state_folder returned None: return the Net with the folder's weights.")
        _expect(isinstance(got, torch.nn.Module), f"return the Net (a torch.nn.Module), not {type(got).__name__}.")
        _expect({path.name: path.read_bytes() for path in folder.iterdir()} == before,
                "the folder changed: read it, write nothing into it.")
    state = got.state_dict()
    _expect(state.keys() == expected.keys(), "your model's keys are not a Net's: return a labutils.Net.")
    _expect(_equal_states(state, expected), "the Net's weights are not those the folder holds: which file is the "
                                            "model's (section 2's table)?")
    _expect(not got.training, "the Net is in training mode: a Net that will predict goes into eval mode first.")
    return "a plain Net with the folder's weights, in eval mode, and the folder left as it was."


@_check
def ex11_2(lab_resume_state: Callable) -> str:
    """lab_resume_state(checkpoint, steps_per_epoch) -> notebook 06's pieces from a Lightning checkpoint."""
    from ..models import Net

    checkpoints = _lightning_checkpoints()
    _expect(len(checkpoints) == 2, "the lab's Lightning run did not save its two checkpoints.")
    for checkpoint in checkpoints:
        step = checkpoint["global_step"]
        epoch, batch = divmod(step, _STEPS_PER_EPOCH)
        where = f"the checkpoint saved after step {step} ({_STEPS_PER_EPOCH} batches per epoch)"
        got = lab_resume_state(copy.deepcopy(checkpoint), _STEPS_PER_EPOCH)
        _expect(got is not None, "lab_resume_state returned None: return a dict with model, optimizer, scheduler, "
                                 "step, epoch and batch.")
        _expect(isinstance(got, dict), f"return a dict, not {type(got).__name__}.")
        missing = [key for key in ("model", "optimizer", "scheduler", "step", "epoch", "batch") if key not in got]
        _expect(not missing, f"the dict lacks {', '.join(missing)}.")
        plain = {name.removeprefix("net."): tensor for name, tensor in checkpoint["state_dict"].items()}
        model = got["model"]
        _expect(isinstance(model, dict), "\"model\" must be a state_dict (a dict of tensors), not "
                                         f"{type(model).__name__}.")
        _expect(not any(str(name).startswith("net.") for name in model),
                "the model's keys still start with `net.`, the LightningModule's attribute: a plain Net refuses "
                "them (section 1 shows it).")
        net = Net()
        try:
            net.load_state_dict(model)
        except RuntimeError as err:
            raise _Wrong(f"{where}: a plain Net does not load your \"model\": {str(err).splitlines()[-1].strip()}") \
                from None
        _expect(_equal_states(net.state_dict(), plain), f"{where}: your \"model\" holds other weights than the "
                                                        "checkpoint's state_dict.")
        optimizer, scheduler = _optimizer_for(net)
        _expect(isinstance(got["optimizer"], dict) and "param_groups" in got["optimizer"],
                "\"optimizer\" must be the optimizer's state_dict (with \"state\" and \"param_groups\"); "
                "the checkpoint keeps a list of them, one per optimizer.")
        _expect(isinstance(got["scheduler"], dict) and "last_epoch" in got["scheduler"],
                "\"scheduler\" must be the scheduler's state_dict (with \"last_epoch\"); the checkpoint keeps a "
                "list of them, one per scheduler.")
        optimizer.load_state_dict(got["optimizer"])
        scheduler.load_state_dict(got["scheduler"])
        saved = checkpoint["optimizer_states"][0]["state"]
        _expect(all(torch.equal(optimizer.state_dict()["state"][i]["momentum_buffer"], saved[i]["momentum_buffer"])
                    for i in saved), f"{where}: the optimizer's momentum is not the checkpoint's.")
        _expect(scheduler.last_epoch == checkpoint["lr_schedulers"][0]["last_epoch"],
                f"{where}: the scheduler's position is not the checkpoint's.")
        _expect(got["step"] == step, f"{where}: \"step\" is {got['step']!r}; the checkpoint counts the optimizer "
                                     "steps taken in one of its keys (section 1's table).")
        if (got["epoch"], got["batch"]) == (epoch, batch):
            continue
        if got["epoch"] == checkpoint["epoch"] != epoch:
            raise _Wrong(f"{where}: you say {got['epoch']} epochs finished, but checkpoint[\"epoch\"] is the epoch "
                         "the save happened in, counted from 0, not the number finished: count from the steps.")
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
        if got["batch"] in (progress["completed"], progress["ready"]) and got["batch"] != batch:
            raise _Wrong(f"{where}: the loops' batch counters are updated around the callback that saves, so they "
                         "can be one off; count from the steps.")
        raise _Wrong(f"{where}: you say epoch {got['epoch']!r}, batch {got['batch']!r}; count the epochs finished "
                     "and the batches of the epoch under way.")
    return ("the weights load into a plain Net, the optimizer and the scheduler into theirs, and the position is "
            "right in the middle of an epoch and at its end.")
