"""Checks for the exercises of notebook 01 (define net): solutions in notebooks/solutions/ex01_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import BatchNormNet, Net
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex01_1", "ex01_2", "ex01_3"]


@_check
def ex01_1(count_parameters: Callable) -> str:
    """count_parameters(model) -> the number of trainable parameters (buffers and frozen ones excluded)."""
    got = count_parameters(Net())
    _expect(got is not None, "count_parameters returned None: return the total as an int.")
    _expect(int(got) == 61_706, f"Net() gave {got}, expected 61,706: add up p.numel() for every parameter.")
    got = int(count_parameters(BatchNormNet()))
    _expect(got != 61_796, "BatchNormNet() gave 61,796: that counts buffers (running statistics); use "
                           "model.parameters(), not model.state_dict().")
    _expect(got == 61_750, f"BatchNormNet() gave {got}, expected 61,750 (Net plus the BatchNorm weights and biases).")
    frozen = Net()
    frozen.conv1.requires_grad_(False)
    got = int(count_parameters(frozen))
    _expect(got == 61_706 - 156, f"with conv1 frozen you got {got}, expected 61,550: count only parameters whose "
                                 "requires_grad is True.")
    return "61,706 trainable parameters in Net; buffers and frozen parameters are not counted."


@_check
def ex01_2(fc1_inputs: Callable) -> str:
    """fc1_inputs(image_size, conv1_padding) -> the number of features reaching fc1."""
    cases = {(28, 2): 400, (32, 0): 400, (28, 0): 256, (64, 0): 2704, (36, 2): 784, (30, 0): 256}
    for (size, padding), expected in cases.items():
        got = fc1_inputs(size, padding)
        _expect(got is not None, "fc1_inputs returned None: return the number of features.")
        _expect((size, padding) != (30, 0) or int(got) != 324,
                f"fc1_inputs(30, 0) gave {got}, expected 256: after conv1 and the first pool the side is 13, and a "
                "2 × 2 max-pool of an odd side drops the last row and column.")
        _expect(int(got) == expected, f"fc1_inputs({size}, {padding}) gave {got}, expected {expected}. Follow "
                                      "one side: + 2·padding, − 4 (conv1), ÷ 2 (pool), − 4 (conv2), ÷ 2 (pool); then "
                                      "16 channels × side × side.")
    return "right for 28×28 with and without padding, 32×32, larger inputs, and an odd side that a pool rounds down."


@_check
def ex01_3(train_keep_best: Callable) -> str:
    """train_keep_best(model, epochs, train_one_epoch, score) -> (best epoch, CPU snapshot), the model put back."""
    _keep_best_on(train_keep_best, "cpu")  # where .to("cpu") alone copies nothing: on every machine
    if not torch.cuda.is_available():
        return ("epoch 2 of 4 kept as a copy, running statistics included, and put back at the end. This machine has "
                "no GPU, so the check trained on the CPU, where .to('cpu') alone copies nothing.")
    _keep_best_on(train_keep_best, "cuda")
    return ("epoch 2 of 4 kept as a CPU copy, running statistics included, and put back at the end, for a model "
            "trained on the CPU and for one trained on the GPU.")


def _keep_best_on(train_keep_best: Callable, device: str) -> None:
    """Run train_keep_best on a BatchNormNet on `device` whose second of four epochs scores best; raise _Wrong."""
    generator = torch.Generator().manual_seed(0)
    model = BatchNormNet().to(device)
    scores = [0.61, 0.83, 0.72, 0.79]  # the best epoch is the second, not the last
    after = []  # the model's state after each epoch, as the check saw it

    def train_one_epoch(trained: torch.nn.Module) -> None:
        with torch.no_grad():
            for p in trained.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator).to(p.device))
            trained.train()(torch.randn(16, 1, 28, 28, generator=generator).to(device))  # moves BatchNorm's buffers
        after.append({k: v.detach().to("cpu", copy=True) for k, v in trained.state_dict().items()})

    def score(scored: torch.nn.Module) -> float:
        return scores[max(len(after), 1) - 1]  # the score of the epoch just trained

    result = train_keep_best(model, len(scores), train_one_epoch, score)
    _expect(result is not None, "train_keep_best returned None: return the best epoch and the snapshot you kept.")
    _expect(isinstance(result, tuple) and len(result) == 2, "return a pair: (the best epoch, the snapshot).")
    epoch, snap = result
    _expect(len(after) == len(scores), f"train_one_epoch ran {len(after)} times for epochs={len(scores)}: call it "
                                       "once per epoch.")
    _expect(epoch == 2, f"you returned epoch {epoch!r}; the scores were 0.61, 0.83, 0.72, 0.79, so the best is "
                        "epoch 2 (count from 1).")
    keys = list(model.state_dict())
    _expect(isinstance(snap, dict) and list(snap) == keys,
            "the snapshot must be a dict with the state_dict's keys, in its order: buffers included.")
    _expect(all(isinstance(v, torch.Tensor) for v in snap.values()), "map each key to a tensor (a copy of it).")
    live = model.state_dict()
    shared = [k for k in keys if snap[k].untyped_storage().data_ptr() == live[k].untyped_storage().data_ptr()]
    if shared:
        raise _Wrong(f"{len(shared)} of your {len(snap)} tensors ({shared[0]}, …) are the model's own: "
                     "state_dict() returns the live tensors (section 3), and .to('cpu') of a tensor already on the "
                     "CPU returns that same tensor. Such a snapshot follows the model to its last epoch: keep "
                     "copies that own their memory.")
    devices = sorted({str(v.device) for v in snap.values()})
    _expect(devices == ["cpu"], f"for a model on the GPU your snapshot is on {devices}: keep it in the computer's "
                                "memory, on the CPU.")
    _expect(all(not v.requires_grad for v in snap.values()),
            "detach the tensors: a snapshot needs no autograd history.")
    differ = [k for k in keys if not torch.equal(snap[k], after[1][k])]
    _expect(not differ, f"your snapshot is not the state after epoch 2 ({', '.join(differ[:3])}…): take it right "
                        "after the best epoch is scored, running statistics included.")
    _expect(all(torch.equal(v.cpu(), after[1][k]) for k, v in model.state_dict().items()),
            "the model ends with another epoch's weights: put the best ones back into it at the end.")
    _expect(all(v.device.type == device for v in model.state_dict().values()),
            f"the model is no longer on {device}: load_state_dict copies into the model's own tensors, wherever "
            "they are.")
