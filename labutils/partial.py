"""Loading part of a model: selecting keys, checked non-strict loads, freezing, and optimizer state that must fit."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .checkpoint import diagnose


class KeyMismatchError(RuntimeError):
    """A non-strict load left keys missing or unused that the caller did not allow."""


class ShapeMismatchError(KeyMismatchError):
    """A key is in both the model and the state_dict, with different shapes."""


class OptimizerMismatchError(ValueError):
    """Saved optimizer state does not fit the optimizer it is loaded into."""


def _matches(key: str, prefixes: Iterable[str]) -> bool:
    """True when `key` is one of `prefixes` or lies under one ("conv1" covers "conv1.weight", not "conv10.weight")."""
    return any(key == p or key.startswith(p if p.endswith(".") else p + ".") for p in prefixes)


def select_keys(state_dict: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """Return the entries of `state_dict` under the given layer names or prefixes, in their order."""
    prefixes = list(prefixes)
    return {key: value for key, value in state_dict.items() if _matches(key, prefixes)}


def load_partial(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, allow_missing: Iterable[str] = (),
                 allow_unexpected: Iterable[str] = ()):
    """Load with strict=False, after checking that every missing or unexpected key lies under an allowed prefix and
    every shared key has the model's shape; on any mismatch raise before the model is touched (it stays as it was).
    """
    allow_missing, allow_unexpected = list(allow_missing), list(allow_unexpected)
    expected = model.state_dict()
    found = {k: v for k, v in state_dict.items()}
    reshaped = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in found.items()
                if k in expected and isinstance(v, torch.Tensor) and v.shape != expected[k].shape]
    if reshaped:
        key, in_file, in_model = reshaped[0]
        others = [k for k, _, _ in reshaped[1:]]
        more = f" (and {len(others)} more: {_short(others)})" if others else ""
        raise ShapeMismatchError(
            f"{key} has shape {in_file} in the state_dict but {in_model} in the model{more}; nothing was loaded. "
            "Fix: leave these keys out (select_keys, or allow_missing for them after dropping them), or build the "
            "model with the sizes the weights were saved with.")
    missing_all = [k for k in expected if k not in found]
    unexpected_all = [k for k in found if k not in expected]
    missing = [k for k in missing_all if not _matches(k, allow_missing)]
    unexpected = [k for k in unexpected_all if not _matches(k, allow_unexpected)]
    if missing or unexpected:
        loadable = len(expected) - len(missing_all)
        causes = sorted(set(diagnose(model, state_dict)["likely cause"]))
        raise KeyMismatchError(
            f"strict=False would load {loadable} of {len(expected)} entries; nothing was loaded, because these are "
            "not allowed: "
            + "; ".join(part for part in (f"missing {_short(missing)}" if missing else "",
                                          f"unexpected {_short(unexpected)}" if unexpected else "") if part)
            + (f". Likely cause: {'; '.join(causes)}" if causes else "")
            + ". Fix: rename the keys to match the model, or allow these keys if leaving them out is intended.")
    return model.load_state_dict(state_dict, strict=False)


def _short(keys: list[str], shown: int = 4) -> str:
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def freeze(model: nn.Module, prefixes: Iterable[str]) -> list[str]:
    """Stop training the parameters under `prefixes` (requires_grad=False); return their names."""
    prefixes = list(prefixes)
    frozen = []
    for name, parameter in model.named_parameters():
        if _matches(name, prefixes):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


def optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, Any]:
    """Return the optimizer's state_dict with what it was made for: its class, hyperparameters and parameters."""
    names = {id(p): name for name, p in model.named_parameters()}
    groups = [[names.get(id(p), "?") for p in group["params"]] for group in optimizer.param_groups]
    shapes = [[list(p.shape) for p in group["params"]] for group in optimizer.param_groups]
    return {"class": type(optimizer).__qualname__, "hyperparameters": _hyperparameters(optimizer),
            "parameters": groups, "shapes": shapes, "state_dict": optimizer.state_dict()}


def _hyperparameters(optimizer: torch.optim.Optimizer) -> dict:
    """Return the settings the optimizer was built with (its defaults; a scheduler changes only the groups' lr)."""
    return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in optimizer.defaults.items()}


def load_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module, saved: Mapping[str, Any], *,
                         keep_new_hyperparameters: bool = False) -> None:
    """Load state saved by `optimizer_state`, refusing another optimizer class, other parameters or settings.

    With keep_new_hyperparameters=True, the moments are loaded but the optimizer keeps the settings it was built
    with (for example a lower learning rate for fine-tuning) instead of taking the saved ones.
    """
    if not isinstance(saved, Mapping) or "state_dict" not in saved or "class" not in saved:
        raise OptimizerMismatchError("this is a bare optimizer.state_dict(): it does not record the optimizer class or "
                                     "its parameters, so it cannot be checked. Fix: save optimizer_state(optimizer, "
                                     "model) instead")
    if saved["class"] != type(optimizer).__qualname__:
        raise OptimizerMismatchError(f"the saved state is from {saved['class']}, this optimizer is "
                                     f"{type(optimizer).__qualname__}: their state means different things. Fix: build "
                                     f"the optimizer as torch.optim.{saved['class']}, or start the new optimizer fresh "
                                     "(do not load the state)")
    current = optimizer_state(optimizer, model)
    if current["shapes"] != saved["shapes"] or current["parameters"] != saved["parameters"]:
        raise OptimizerMismatchError(f"the saved state was made for other parameters "
                                     f"({_parameter_changes(saved, current)}): the model, or the set of parameters "
                                     "being trained (frozen ones are left out), changed. Fix: start the optimizer "
                                     "fresh for the changed model")
    if not keep_new_hyperparameters and current["hyperparameters"] != saved["hyperparameters"]:
        old, new = saved["hyperparameters"], current["hyperparameters"]
        changed = [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in sorted(old.keys() | new.keys())
                   if old.get(k) != new.get(k)]
        raise OptimizerMismatchError(f"the optimizer was built with other settings ({', '.join(changed)}) than the "
                                     "saved one, and loading would silently replace them with the saved values. Fix: "
                                     "build it with the saved settings, or pass keep_new_hyperparameters=True")
    settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(saved["state_dict"])
    if keep_new_hyperparameters:
        for group, setting in zip(optimizer.param_groups, settings):
            group.update(setting)


def _parameter_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Describe how the optimized parameters differ: left out, added, or reshaped."""
    def shapes(record):
        return {name: shape for names, group in zip(record["parameters"], record["shapes"])
                for name, shape in zip(names, group)}

    old, new = shapes(saved), shapes(current)
    parts = []
    if gone := [n for n in old if n not in new]:
        parts.append(f"no longer optimized: {_short(gone)}")
    if added := [n for n in new if n not in old]:
        parts.append(f"new: {_short(added)}")
    if reshaped := [f"{n} {old[n]} → {new[n]}" for n in old if n in new and old[n] != new[n]]:
        parts.append(f"other shape: {_short(reshaped)}")
    return "; ".join(parts) or "the same parameters in another order or grouping"
