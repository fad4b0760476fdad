"""Checks for the exercises of notebook 05 (partial loading): solutions in notebooks/solutions/ex05_*.py."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..models import Net
from ..partial import optimizer_state
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex05_1", "ex05_2", "ex05_3"]


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


# --- ex05_3: carry Adam's state over a swapped head -----------------------------------------------------------

def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    """Take `steps` Adam steps on fixed random images (labels folded into the model's classes)."""
    classes = model.fc3.out_features
    for step in range(steps):
        generator = torch.Generator().manual_seed(step)
        images, labels = torch.randn(8, 1, 28, 28, generator=generator), torch.arange(8) % classes
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.as_tensor(a[k]).shape == torch.as_tensor(b[k]).shape
        and torch.equal(torch.as_tensor(a[k]).float(), torch.as_tensor(b[k]).float()) for k in a)


def _carry_case(carry: Callable, frozen: list[str]) -> None:
    """An Adam that trained a 10-class Net (all but `frozen`), recorded by optimizer_state; a 5-class Net whose new
    head is in a first group of its own (lr 1e-3), the rest in a second (lr 1e-4); carry, then check every state."""
    torch.manual_seed(0)
    old = Net()
    old_adam = torch.optim.Adam([p for n, p in old.named_parameters() if n.split(".")[0] not in frozen], lr=1e-3)
    _steps(old, old_adam, 3)
    saved = optimizer_state(old_adam, old)
    kept = copy.deepcopy(saved)
    names = [n for group in kept["parameters"] for n in group]  # the name of each saved position
    by_name = {n: kept["state_dict"]["state"][i] for i, n in enumerate(names) if i in kept["state_dict"]["state"]}
    shapes = dict(zip(names, [s for group in kept["shapes"] for s in group]))
    torch.manual_seed(1)
    model = Net(num_classes=5)
    model.load_state_dict({k: v for k, v in old.state_dict().items() if not k.startswith("fc3.")}, strict=False)
    head = [model.fc3.weight, model.fc3.bias]
    body = [p for n, p in model.named_parameters() if not n.startswith("fc3.")]
    optimizer = torch.optim.Adam([{"params": head}, {"params": body, "lr": 1e-4}], lr=1e-3)
    try:
        got = carry(copy.deepcopy(saved), model, optimizer)
    except ValueError as err:
        if "parameter group" not in str(err):  # not torch's refusal of a whole state_dict: the learner's own error
            raise
        raise _Wrong(f"your code raised ValueError: {err}. optimizer.load_state_dict takes a saved state whole: the "
                     "same param_groups, of the same sizes, matched by position (section 6). Here the groups "
                     "differ, so build the state parameter by parameter.") from None
    _expect(got is not None, "carry_adam_state returned None: return the names of the parameters whose state you "
                             "carried over.")
    lrs = [group["lr"] for group in optimizer.param_groups]
    _expect(lrs == [1e-3, 1e-4], f"the optimizer's learning rates changed from [0.001, 0.0001] to {lrs}: "
                                 "load_state_dict replaces each group's settings with the saved ones (section 6). "
                                 "Carry the state only, and keep the groups the optimizer was built with.")
    expected = [n for n, p in model.named_parameters() if n in by_name and shapes[n] == list(p.shape)]
    for name, parameter in model.named_parameters():
        have = optimizer.state.get(parameter, {})
        if name in expected:
            _expect(bool(have), f"{name} starts fresh, but the state saved for it fits it (same name, same shape): "
                                "carry it. saved['parameters'] names each saved position.")
            if not _same_state(have, by_name[name]):
                source = next((n for n, s in by_name.items() if _same_state(have, s)), None)
                _expect(source is None, f"{name} holds the state saved for {source}: the optimizer's state_dict "
                                        "numbers parameters by their position in param_groups, and the new "
                                        "optimizer orders them differently. Match them by name: "
                                        "saved['parameters'] names each saved position.")
                _expect(False, f"{name} does not hold the state saved for it: carry its step, exp_avg and "
                               "exp_avg_sq as saved.")
        elif name in by_name:
            _expect(not have, f"{name} has saved state, but the new head must start fresh: its moments were made for "
                              f"shape {shapes[name]}, the new {name} has {list(parameter.shape)}. Carry a parameter "
                              "only when its name and its shape are unchanged.")
        else:
            _expect(not have, f"{name} has state, but none was saved for it (the old optimizer left {name} out): "
                              "saved['parameters'] names each saved position; look a parameter up by name.")
    _expect(sorted(got) == sorted(expected), f"you returned {got!r}; return the names of the parameters whose state "
                                             f"you carried: {', '.join(expected)}.")
    twin = copy.deepcopy(model)
    twin_head = [twin.fc3.weight, twin.fc3.bias]
    twin_body = [p for n, p in twin.named_parameters() if not n.startswith("fc3.")]
    reference = torch.optim.Adam([{"params": twin_head}, {"params": twin_body, "lr": 1e-4}], lr=1e-3)
    for name, parameter in twin.named_parameters():
        if name in expected:
            reference.state[parameter] = copy.deepcopy(by_name[name])
    _steps(model, optimizer, 1)
    _steps(twin, reference, 1)
    _expect(all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters())),
            "one step with your optimizer differs from Adam's with the carried state: carry each state as saved "
            "(step, exp_avg, exp_avg_sq) and leave the rest of the optimizer as it was built.")


@_check
def ex05_3(carry_adam_state: Callable) -> str:
    """carry_adam_state(saved, model, optimizer) -> the names whose Adam state was carried; the new head fresh."""
    _carry_case(carry_adam_state, frozen=[])
    _carry_case(carry_adam_state, frozen=["conv1"])
    return ("the state of conv1, conv2, fc1 and fc2 carried over by name (and of conv2, fc1 and fc2 when conv1 had "
            "been frozen), the new head fresh, the optimizer's own learning rates kept.")
