"""Checks for the exercises of notebook 05 (partial loading): solutions in notebooks/solutions/ex05_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Net
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex05_1", "ex05_2"]


def _fc1_and_fc10() -> torch.nn.Module:
    """A model with layers whose names share a prefix: freezing or loading "fc1" must leave "fc10" alone."""
    return torch.nn.ModuleDict({"fc1": torch.nn.Linear(4, 3), "fc10": torch.nn.Linear(3, 2)})


@_check
def ex05_1(freeze_layers: Callable) -> str:
    """freeze_layers(model, layers) -> the number of parameters still trainable after freezing those layers."""
    model = Net()
    got = freeze_layers(model, ["conv1", "conv2"])
    _expect(got is not None, "freeze_layers returned None: return the number of parameters still trainable.")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    _expect(frozen == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"],
            f"frozen: {frozen or 'nothing'}; set requires_grad_(False) on every parameter of conv1 and conv2 only.")
    _expect(int(got) == 59_134, f"you returned {got}; 61,706 − 2,572 frozen = 59,134 remain trainable (count "
                                "p.numel() where p.requires_grad).")
    pair = _fc1_and_fc10()
    freeze_layers(pair, ["fc1"])
    _expect(all(p.requires_grad for p in pair["fc10"].parameters()),
            "freezing 'fc1' also froze 'fc10': 'fc10.weight'.startswith('fc1') is True. Match the layer name "
            "exactly: name.startswith(layer + '.').")
    return "conv1 and conv2 frozen, 59,134 parameters still train, and fc10 is not mistaken for fc1."


@_check
def ex05_2(load_only: Callable) -> str:
    """load_only(model, state_dict, layers) -> the keys loaded; only those layers change; unknown layers raise."""
    torch.manual_seed(0)
    source = Net().state_dict()
    source_keys = list(source)
    torch.manual_seed(1)
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = load_only(model, source, ["conv1", "conv2"])
    _expect(got is not None, "load_only returned None: return the list of keys you loaded.")
    _expect(list(source) == source_keys, "the state_dict passed in was changed: leave it as it is.")
    after = model.state_dict()
    changed_fc = [k for k in after if k.startswith("fc") and not torch.equal(after[k], before[k])]
    _expect(not changed_fc, f"{', '.join(changed_fc[:2])} changed: load only the named layers (select their keys, "
                            "then load_state_dict(selected, strict=False)).")
    _expect(all(torch.equal(after[k], source[k]) for k in source if k.startswith("conv")),
            "conv1 and conv2 do not hold the saved values.")
    _expect(sorted(got) == ["conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight"],
            f"you returned {got!r}; return the keys loaded: conv1.weight, conv1.bias, conv2.weight, conv2.bias.")
    try:
        load_only(Net(), source, ["conv3"])
    except KeyError as err:
        _expect("conv3" in str(err), f"the KeyError should name the missing layer, not say {err}.")
    else:
        _expect(False, "asking for a layer the state_dict lacks (conv3) must raise a KeyError naming it, "
                       "not load nothing in silence.")
    pair, other = _fc1_and_fc10(), _fc1_and_fc10()
    fc10_before = pair["fc10"].weight.clone()
    load_only(pair, other.state_dict(), ["fc1"])
    _expect(torch.equal(pair["fc10"].weight, fc10_before), "loading 'fc1' also loaded 'fc10': match "
                                                           "key.startswith(layer + '.'), not key.startswith(layer).")
    return "conv1 and conv2 loaded, the fc layers untouched, an unknown layer named in a KeyError."
