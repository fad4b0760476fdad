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
    cases = {(28, 2): 400, (32, 0): 400, (28, 0): 256, (64, 0): 2704, (36, 2): 784}
    for (size, padding), expected in cases.items():
        got = fc1_inputs(size, padding)
        _expect(got is not None, "fc1_inputs returned None: return the number of features.")
        _expect(int(got) == expected, f"fc1_inputs({size}, {padding}) gave {got}, expected {expected}. Follow "
                                      "one side: + 2·padding, − 4 (conv1), ÷ 2 (pool), − 4 (conv2), ÷ 2 (pool); then "
                                      "16 channels × side × side.")
    return "right for 28×28 with and without padding, 32×32 and larger inputs."


@_check
def ex01_3(snapshot: Callable) -> str:
    """snapshot(model) -> a CPU copy of the state_dict, whatever the model's device, that training leaves alone."""
    model = BatchNormNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snap = snapshot(model)
    _expect(snap is not None, "snapshot returned None: return a dict from each key to a copy of its tensor.")
    _expect(isinstance(snap, dict), f"return a dict of tensors (an OrderedDict), not {type(snap).__name__}.")
    _expect(list(snap) == list(before), "the snapshot must have the same keys, in the same order, as state_dict().")
    _expect(all(isinstance(v, torch.Tensor) for v in snap.values()), "map each key to a tensor (a copy of it).")
    live = model.state_dict()
    shared = [k for k in snap if snap[k].untyped_storage().data_ptr() == live[k].untyped_storage().data_ptr()]
    if shared:
        raise _Wrong(f"{len(shared)} of your {len(snap)} tensors ({shared[0]}, …) share memory with the model: "
                     "state_dict() returns the live tensors, and on a model that is already on the CPU, .cpu() and "
                     ".to('cpu') return those very tensors, not copies. Ask for a copy: .to('cpu', copy=True), "
                     "or .cpu().clone().")
    _expect(all(not v.requires_grad for v in snap.values()),
            "detach the tensors: a snapshot needs no autograd history.")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 1, 28, 28))  # updates the BatchNorm buffers
    changed = [k for k in before if not torch.equal(snap[k].cpu(), before[k])]
    _expect(not changed, f"after the model changed, your snapshot changed too ({', '.join(changed[:3])}…): "
                         "copy the tensors.")
    model.load_state_dict(snap)
    _expect(all(torch.equal(v, before[k]) for k, v in model.state_dict().items()),
            "load_state_dict(snapshot) did not put the old values back.")
    if not torch.cuda.is_available():
        return ("the CPU copy kept the old values while the model trained, and loading it put them back. This machine "
                "has no GPU, so the check could not also snapshot a model on cuda.")
    model = BatchNormNet().cuda()
    snap = snapshot(model)
    devices = sorted({str(v.device) for v in snap.values()})
    _expect(devices == ["cpu"], f"for a model on the GPU your snapshot is on {devices}: move it with .to('cpu').")
    model.load_state_dict(snap)  # copies back into the GPU tensors
    _expect(all(torch.equal(v.cpu(), snap[k]) for k, v in model.state_dict().items()),
            "loading the CPU snapshot into the GPU model did not restore it.")
    return "a CPU copy from a CPU model and from a GPU model: training left it alone, and loading it restored both."
