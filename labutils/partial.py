"""Loading part of a model: selecting keys, checked non-strict loads, freezing, and optimizer state that must fit."""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .i18n import N_, language, translate

if TYPE_CHECKING:  # pandas is imported where a table is made
    import pandas as pd


class _Translated:
    """An error whose message (kept in English in `args`) is shown in the lab's language."""

    def __str__(self) -> str:
        return translate(super().__str__())


class KeyMismatchError(_Translated, RuntimeError):
    """A non-strict load left keys missing or unused that the caller did not allow."""


class ShapeMismatchError(KeyMismatchError):
    """A key is in both the model and the state_dict, with different shapes."""


class OptimizerMismatchError(_Translated, ValueError):
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
        more = N_(f" (and {len(others)} more: {_short(others)})") if others else ""
        raise ShapeMismatchError(N_(
            f"{key} has shape {in_file} in the state_dict but {in_model} in the model{more}; nothing was loaded. "
            "Fix: leave these keys out (select_keys, or allow_missing for them after dropping them), or build the "
            "model with the sizes the weights were saved with."))
    missing_all = [k for k in expected if k not in found]
    unexpected_all = [k for k in found if k not in expected]
    missing = [k for k in missing_all if not _matches(k, allow_missing)]
    unexpected = [k for k in unexpected_all if not _matches(k, allow_unexpected)]
    if missing or unexpected:
        loadable = len(expected) - len(missing_all)
        causes = sorted(set(diagnose(model, state_dict)["likely cause"]))
        if missing and unexpected:
            refused = N_(f"missing {_short(missing)}; unexpected {_short(unexpected)}")
        else:
            refused = N_(f"missing {_short(missing)}") if missing else N_(f"unexpected {_short(unexpected)}")
        start = N_(f"strict=False would load {loadable} of {len(expected)} entries; nothing was loaded, because these "
                   f"are not allowed: {refused}")
        fix = N_("rename the keys to match the model, or allow these keys if leaving them out is intended")
        raise KeyMismatchError(N_(f"{start}. Likely cause: {'; '.join(causes)}. Fix: {fix}.") if causes else
                               N_(f"{start}. Fix: {fix}."))
    return model.load_state_dict(state_dict, strict=False)


def _short(keys: list[str], shown: int = 4) -> str:
    listed = ", ".join(keys[:shown])
    return N_(f"{listed} and {len(keys) - shown} more") if len(keys) > shown else listed


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
    """Return the optimizer's state_dict with what it was made for: its class, each group's settings and parameters."""
    names = {id(p): name for name, p in model.named_parameters()}
    groups = [[names.get(id(p), "?") for p in group["params"]] for group in optimizer.param_groups]
    shapes = [[list(p.shape) for p in group["params"]] for group in optimizer.param_groups]
    settings = [_settings(group) for group in optimizer.param_groups]
    return {"class": type(optimizer).__qualname__, "settings": settings, "parameters": groups, "shapes": shapes,
            "state_dict": optimizer.state_dict()}


# what an lr scheduler adds to a group or moves there on its own; a resumed run should take the saved values
_SCHEDULED = ("initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum")


def _settings(group: Mapping[str, Any]) -> dict[str, Any]:
    """Return a param group's settings (lr, betas, weight_decay, ...), without its parameters; where a scheduler
    drives the group, its lr is the one the group was built with (initial_lr) and the momentum it cycles is left out."""
    settings = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in group.items()
                if k not in ("params", "param_names", *_SCHEDULED)}
    if "initial_lr" in group:
        initial = group["initial_lr"]
        settings["lr"] = initial.item() if isinstance(initial, torch.Tensor) else initial
    if "base_momentum" in group:  # OneCycleLR, CyclicLR with cycle_momentum
        settings.pop("betas" if "betas" in settings else "momentum", None)
    return settings


def _changed_settings(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Describe, group by group, the settings that differ ("lr 0.001 → 0.0001 in group 1 (fc3.weight, fc3.bias)")."""
    # records made before the groups' settings were recorded: the saved state_dict holds each group's settings
    old_groups = saved.get("settings") or [_settings(group) for group in saved["state_dict"]["param_groups"]]
    changes = []
    for i, (old, new, names) in enumerate(zip(old_groups, current["settings"], current["parameters"])):
        cycled = (old.keys() ^ new.keys()) & {"betas", "momentum"}  # left out on the side a scheduler cycles it
        changed = [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in sorted((old.keys() | new.keys()) - cycled)
                   if old.get(k) != new.get(k)]
        if changed:
            changes.append(f"{', '.join(changed)} in group {i} ({_short(names, 2)})")
    return changes


def load_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module, saved: Mapping[str, Any], *,
                         keep_new_hyperparameters: bool = False) -> None:
    """Load state saved by `optimizer_state`, refusing another optimizer class, other parameters or settings.

    The settings are compared group by group, because optimizer.load_state_dict replaces every group's settings
    with the saved group's. With keep_new_hyperparameters=True, the moments are loaded but every group keeps the
    settings it was built with (for example a lower learning rate for fine-tuning) instead of taking the saved ones.
    """
    if not isinstance(saved, Mapping) or "state_dict" not in saved or "class" not in saved:
        raise OptimizerMismatchError(N_("this is a bare optimizer.state_dict(): it does not record the optimizer "
                                        "class or its parameters, so it cannot be checked. Fix: save "
                                        "optimizer_state(optimizer, model) instead"))
    if saved["class"] != type(optimizer).__qualname__:
        raise OptimizerMismatchError(N_(f"the saved state is from {saved['class']}, this optimizer is "
                                     f"{type(optimizer).__qualname__}: their state means different things. Fix: build "
                                     f"the optimizer as torch.optim.{saved['class']}, or start the new optimizer fresh "
                                     "(do not load the state)"))
    current = optimizer_state(optimizer, model)
    if current["shapes"] != saved["shapes"] or current["parameters"] != saved["parameters"]:
        raise OptimizerMismatchError(N_(f"the saved state was made for other parameters "
                                     f"({_parameter_changes(saved, current)}): the model, or the set of parameters "
                                     "being trained (frozen ones are left out), changed. Fix: start the optimizer "
                                     "fresh for the changed model"))
    if not keep_new_hyperparameters and (changed := _changed_settings(saved, current)):
        raise OptimizerMismatchError(N_(f"the optimizer was built with other settings than the saved one: "
                                     f"{'; '.join(changed)}. Loading would silently replace them with the saved "
                                     "values. Fix: build it with the saved settings, or pass "
                                     "keep_new_hyperparameters=True"))
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


# --- diagnosing a state_dict against a model ---------------------------------------------------------------

PREFIXES = {
    "module.": N_("saved from nn.DataParallel or DistributedDataParallel"),
    "_orig_mod.": N_("saved from a torch.compile'd model"),
    "model.": N_("saved from a wrapper module (Lightning-style `model.` attribute)"),
}
# the table's columns, in English in the DataFrame (code reads table["likely cause"]) and shown translated
COLUMNS = [N_("key"), N_("problem"), N_("in the model"), N_("in the file"), N_("likely cause"), N_("fix")]


def diagnose(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> pd.DataFrame:
    """Return a table of the keys that keep `state_dict` from loading into `model`, with the likely cause and fix."""

    expected = model.state_dict()
    columns = COLUMNS
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"diagnose needs a state_dict (a dict of tensors), not {type(state_dict).__name__}")
    nested = [k for k, v in state_dict.items() if isinstance(v, Mapping)]
    if nested and not any(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return _whole_table()([(N_("(whole file)"), N_("not a state_dict"), N_(f"{len(expected)} tensors"),
                              N_(f"keys {', '.join(map(str, state_dict))}"),
                              N_("this is a full checkpoint, with the state_dict inside it"),
                              N_(f"pass checkpoint[{nested[0]!r}]"))], columns=columns)
    rows = []
    found = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]

    prefix_cause = _prefix_cause(list(expected), list(found))
    for key in missing:
        rows.append((key, N_("missing"), _shape(expected[key]), "—",
                     *(prefix_cause or _missing_cause(key, unexpected))))
    for key in unexpected:
        rows.append((key, N_("unexpected"), "—", _shape(found[key]),
                     *(prefix_cause or _unexpected_cause(key, missing))))
    head = _head_keys(model)
    for key in expected:
        if key in found and found[key].shape != expected[key].shape:
            if key in head:
                cause = (N_(f"a different head: the file's has {found[key].shape[0]} outputs, the model's "
                            f"{expected[key].shape[0]}"),
                         N_("drop the head's keys from the state_dict and load the rest with strict=False "
                            "(then train the new head)"))
            else:
                cause = (N_("a different architecture (layer sizes changed)"),
                         N_("build the model with the constructor arguments the file was saved with"))
            rows.append((key, N_("wrong shape"), _shape(expected[key]), _shape(found[key]), *cause))
        elif key in found and found[key].dtype != expected[key].dtype:
            rows.append((key, N_("different dtype"), str(expected[key].dtype), str(found[key].dtype),
                         N_("saved in another precision"), N_("none needed: load_state_dict converts the values "
                                                              "(precision lost when saving stays lost)")))
    return _whole_table()(rows, columns=columns)


@functools.cache
def _whole_table() -> type:
    """A DataFrame that shows every cause and fix in full, as text and in HTML (pandas cuts cells at 50 characters).
    Made on first use: pandas is imported only where a table is made."""
    import pandas as pd

    class DiagnosisTable(pd.DataFrame):
        @property
        def _constructor(self):  # .head(), a filter or a sort keep showing it whole
            return DiagnosisTable

        def __repr__(self) -> str:
            with pd.option_context("display.max_colwidth", None, "display.width", None,
                                   "display.max_columns", None):
                return pd.DataFrame.__repr__(self._shown())

        def _repr_html_(self) -> str:
            with pd.option_context("display.max_colwidth", None, "display.max_columns", None):
                return pd.DataFrame._repr_html_(self._shown())

        def _shown(self) -> pd.DataFrame:
            """The table as the learner reads it: its headers and texts in the lab's language (the keys, shapes
            and code in it stay as they are; the table itself keeps English, for code that reads its columns)."""
            if language() == "en":
                return pd.DataFrame(self)
            shown = pd.DataFrame(self).rename(columns=translate)
            words = list(shown.columns[1:])  # every column but the keys
            shown[words] = shown[words].map(lambda value: translate(value) if isinstance(value, str) else value)
            return shown

    return DiagnosisTable


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))


def _prefix_cause(expected: list[str], found: list[str]) -> tuple[str, str] | None:
    """Explain a key mismatch that adding or removing one prefix would fix."""
    for prefix in _candidate_prefixes(found):
        if sorted(k.removeprefix(prefix) for k in found) == sorted(expected):
            cause = PREFIXES.get(prefix, N_(
                f"saved from a model wrapped in another module (every key starts with {prefix!r})"))
            return (cause, N_(f"torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, {prefix!r}) "
                              "(or save the unwrapped model: model.module / model._orig_mod)"))
    for prefix in _candidate_prefixes(expected):
        if sorted(k.removeprefix(prefix) for k in expected) == sorted(found):
            return (N_(f"the model is wrapped (its keys start with {prefix!r}) but the file is not"),
                    N_("load into the inner model (e.g. model.module.load_state_dict(...))"))
    return None


def _candidate_prefixes(keys: list[str]) -> list[str]:
    """Return prefixes shared by every key: the known ones first, then the common first component(s)."""
    found = [p for p in PREFIXES if keys and all(k.startswith(p) for k in keys)]
    first = {k.split(".", 1)[0] + "." for k in keys if "." in k}
    if len(first) == 1 and all("." in k for k in keys):
        found += [p for p in first if p not in found]
    return found


def _missing_cause(key: str, unexpected: list[str]) -> tuple[str, str]:
    layer = key.rsplit(".", 1)[0]
    if any(u.rsplit(".", 1)[0] == layer for u in unexpected):
        return (N_("the layer is in both, under different parameter names"), N_("check the layer types match"))
    if unexpected:
        return (N_("a different architecture: the file has other layers (renamed or another model class)"),
                N_("build the model class the file was saved from, or rename the keys to match"))
    return (N_("the model has a layer the file lacks (e.g. BatchNorm added to the code after saving)"),
            N_("build the model the file was saved from; or, if the new layer should start fresh, load with "
               "strict=False and check that only these keys are missing"))


def _unexpected_cause(key: str, missing: list[str]) -> tuple[str, str]:
    if missing:
        return (N_("a different architecture: the model has other layers (renamed or another model class)"),
                N_("build the model class the file was saved from, or rename the keys to match"))
    return (N_("the file has a layer the model lacks (removed from the code, or a bigger model)"),
            N_("build the model the file was saved from; or drop these keys if you removed the layer on purpose"))


def _head_keys(model: torch.nn.Module) -> set[str]:
    """Return the state_dict keys of the model's last Linear layer: its classification head."""
    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    if not linear:
        return set()
    return {f"{linear[-1]}.{p}" for p, _ in model.get_submodule(linear[-1]).named_parameters(recurse=False)}
