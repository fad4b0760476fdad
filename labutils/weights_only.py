"""What torch.load(weights_only=True) accepts, asked of torch itself: before a save, and after a refusal.

check_loadable refuses, before a byte is written, a state that weights_only would refuse to load, naming the key
path and the type. After a refusal, unsafe_globals names what a file needs beyond tensors and plain values, read
from its pickle without running it, and unsafe_error says what to do: allow-list a class of your own code only if
you trust the file; never a function that can run code; otherwise ask for a state_dict or a .safetensors file.
"""
from __future__ import annotations

import collections
import io
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import UnsafeCheckpointError
from .i18n import N_


def check_loadable(value: Any, path: os.PathLike | str, where: str = "state") -> None:
    """Refuse, naming the key path and the type, what torch.load(weights_only=True) would refuse to load.

    The rule is torch's own, not a copy of it: the value (with every plain tensor replaced by None, so that this
    costs little) is pickled by torch.save into memory and read back by torch.load(weights_only=True). Only when
    that fails is the structure searched for the first part that fails on its own.
    """
    if _loads_weights_only(_skeleton(value)):
        return
    where, culprit = _culprit(value, where)
    name = f"{type(culprit).__module__}.{type(culprit).__qualname__}"
    if isinstance(culprit, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        what, fix = f"a function ({name})", "store data, not code: keep the function's name or settings as plain values"
    elif type(culprit).__module__ == "numpy":
        what, fix = f"a {name}", "store value.item() (a Python number) or torch.as_tensor(value)"
    else:
        what, fix = f"a {name}", ("store it as plain values (dict, list, str, numbers, tensors), e.g. dict(value), "
                                  "sorted(value), its state_dict() or dataclasses.asdict(value), and rebuild it when "
                                  "loading")
    raise UnsafeCheckpointError(path, f"{where} is {what}, which torch.load(weights_only=True) refuses to load", fix)


def _skeleton(value: Any) -> Any:
    """Return `value` with plain tensors replaced by None, keeping every container's exact type.

    A tensor that carries Python attributes (t.note = ...) is pickled with them: it becomes an empty tensor with
    the same attributes, so that the trial judges them too.
    """
    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        state = torch._utils._get_obj_state(value)
        if not state:
            return None
        stub = kind(torch.empty(0)) if kind is torch.nn.Parameter else torch.empty(0)
        torch._utils._set_obj_state(stub, state)
        return stub
    if kind in (dict, collections.OrderedDict):
        return kind((k, _skeleton(v)) for k, v in value.items())
    if kind in (list, tuple):
        return kind(_skeleton(v) for v in value)
    return value


_TORCH_SAVE, _TORCH_LOAD = torch.save, torch.load  # the trial below uses torch's own, even where a test patches them


def _loads_weights_only(value: Any) -> bool:
    """True when torch.save(value) reads back with torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    try:
        _TORCH_SAVE(value, buffer)
        buffer.seek(0)
        _TORCH_LOAD(buffer, weights_only=True, mmap=False)  # whatever torch.utils.serialization.config says
    except Exception:
        return False
    return True


def _culprit(value: Any, where: str) -> tuple[str, Any]:
    """Return the key path and value of the first part of `value` that torch.load(weights_only=True) refuses."""
    if isinstance(value, Mapping):
        children = []
        for key, item in value.items():
            children += [(f"{where}: the key {key!r}", key), (f"{where}[{key!r}]", item)]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        children = [(f"{where}[{i}]", item) for i, item in enumerate(items)]
    elif isinstance(value, torch.Tensor):  # a tensor's Python attributes
        children = [(f"{where}.{name}", item) for name, item in vars(value).items()]
    else:
        children = []
    for child_where, child in children:
        if not _loads_weights_only(_skeleton(child)):
            return _culprit(child, child_where)
    return where, value


def unsafe_globals(file: os.PathLike | str | BinaryIO, err: BaseException | None = None) -> list[str]:
    """Return the globals (classes, functions) a torch.save file or buffer needs beyond what weights_only allows.

    torch reads them from the file's pickle without running it. A legacy (pre-1.6) file cannot be read that way:
    then the names come from the error torch.load(weights_only=True) raised, if one is given.
    """
    try:
        if hasattr(file, "seek"):
            file.seek(0)
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(file))
    except Exception:
        return sorted(set(re.findall(r"GLOBAL (\S+)", str(err or ""))))


# Modules whose callables let a pickle run any code (a call, an attribute lookup, a module loaded by name).
_RUNS_CODE = {"builtins", "os", "posix", "nt", "subprocess", "sys", "runpy", "importlib", "shutil", "socket",
              "pickle", "marshal", "ctypes", "code", "codeop", "pty", "webbrowser", "functools", "operator",
              "copyreg", "types", "inspect", "io", "pathlib", "tempfile", "threading", "multiprocessing", "torch.hub",
              "torch.jit", "torch.ops", "torch.load", "torch.serialization"}


def _runs_code(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in _RUNS_CODE)


def _your_own_class(name: str) -> bool:
    """True for a class of your own code (a notebook, a project folder, the lab's) or one of torch.nn's layers, already
    imported here: the only globals worth allow-listing. Never a function (an allow-listed function is called by the
    load) and never anything of the standard library or an installed package: their callables do more than build."""
    module_name, _, attribute = name.rpartition(".")
    module = sys.modules.get(module_name)  # imported already: nothing that the file names is imported to find out
    if module is None or not isinstance(getattr(module, attribute, None), type):
        return False
    top = module_name.partition(".")[0]
    if module_name.startswith("torch.nn.modules.") or top in ("__main__", "labutils"):
        return True
    if top in sys.stdlib_module_names:
        return False
    origin = getattr(module, "__file__", None)  # None for a folder of your own without __init__.py
    return origin is None or not any(part in ("site-packages", "dist-packages") for part in Path(origin).parts)


# What NumPy values pickle as: data, which a checkpoint should hold as Python numbers or tensors instead.
_NUMPY_DATA = re.compile(r"numpy\.(dtype|ndarray|dtypes\.\w+|_?core\.multiarray\.(scalar|_reconstruct))")


def unsafe_error(path: os.PathLike | str, names: list[str]) -> UnsafeCheckpointError:
    """Name the globals a file needs, and say how to allow them only where that is safe: your own classes."""
    numpy = [n for n in names if _NUMPY_DATA.fullmatch(n)]
    dangerous = [n for n in names if _runs_code(n)]
    foreign = [n for n in names if not _your_own_class(n) and n not in numpy]
    if dangerous:
        fix = (f"do not load it: {', '.join(dangerous)} can run any code on your machine, and no checkpoint needs "
               "it; delete the file, or ask its author for a state_dict or a .safetensors file")
    elif numpy and not foreign:
        fix = ("it holds NumPy values: store Python numbers (value.item()) or tensors (torch.as_tensor(value)) "
               "in the checkpoint, then save it again")
    elif foreign:
        what = (f"the file names {foreign[0]}, which is not a class" if len(foreign) == 1 else
                f"the file names {', '.join(foreign)}, which are not classes")
        fix = (f"{what} of your own code imported here (the standard library's, an installed package's, or a "
               "function), and allow-listing lets the file call them: ask for a state_dict or a .safetensors file, or "
               "save plain values (dict, list, str, numbers, tensors) instead. A class of your own: import it, then "
               "load again")
    else:
        fix = ("if, and only if, you trust the file and the code of these classes, load it inside "
               f"`with torch.serialization.safe_globals([{', '.join(n.rsplit('.', 1)[-1] for n in names)}]):`; "
               "otherwise ask for a state_dict or a .safetensors file")
    needed = ", ".join(names) or N_("code")
    return UnsafeCheckpointError(path, f"loading it would need {needed} besides tensors and plain values, so "
                                 "weights_only=True refused it and nothing in it ran", fix)
