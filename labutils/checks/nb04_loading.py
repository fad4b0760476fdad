"""Checks for the exercises of notebook 04 (loading): solutions in notebooks/solutions/ex04_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Net
from ._core import _check, _equal_states, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex04_1", "ex04_2", "ex04_3"]


@_check
def ex04_1(strip_prefix: Callable) -> str:
    """strip_prefix(state_dict, prefix) -> a new dict whose keys lose `prefix` where they start with it."""
    tensors = [torch.zeros(1) + i for i in range(4)]
    original = {"module.conv1.weight": tensors[0], "module.fc1.bias": tensors[1], "head.module.scale": tensors[2],
                "step": tensors[3]}
    keys_before = list(original)
    got = strip_prefix(original, "module.")
    _expect(got is not None, "strip_prefix returned None: return the new dict.")
    _expect(list(original) == keys_before, "the input dict changed: build a new dict instead.")
    _expect(isinstance(got, dict), f"return a dict, not {type(got).__name__}.")
    _expect("head.scale" not in got, "'head.module.scale' became 'head.scale': remove the prefix only at the start "
                                     "of a key (key.removeprefix(prefix)), not wherever it occurs.")
    expected = ["conv1.weight", "fc1.bias", "head.module.scale", "step"]
    _expect(list(got) == expected, f"got the keys {list(got)}, expected {expected} (in the same order).")
    _expect(all(got[new] is original[old] for new, old in zip(expected, keys_before)),
            "keep each key's tensor itself, not a copy: a copy doubles the memory a large state_dict takes.")
    model = Net()
    wrapped = torch.nn.DataParallel(model).state_dict()
    result = Net().load_state_dict(strip_prefix(wrapped, "module."))
    _expect(not result.missing_keys and not result.unexpected_keys, "a DataParallel state_dict still does not load.")
    return "only leading prefixes removed, order and tensors kept: a DataParallel state_dict loads into Net."


@_check
def ex04_2(load_for_inference: Callable) -> str:
    """load_for_inference(path) -> a Net on the CPU, in eval mode, from a state_dict a wrapped model saved on a GPU."""
    import tempfile
    from pathlib import Path

    from ..notebook import save_as_from_gpu

    torch.manual_seed(4)
    saved = Net()
    # what a model wrapped by torch.compile and by nn.DataParallel give for state_dict() (notebook 04, section 5)
    wrapped = {"torch.compile": {f"_orig_mod.{k}": v for k, v in saved.state_dict().items()},
               "nn.DataParallel": torch.nn.DataParallel(saved).state_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        for wrapper, state_dict in wrapped.items():
            name = "compiled_on_gpu.pt" if wrapper == "torch.compile" else "parallel_on_gpu.pt"
            torch.save(state_dict, Path(tmp) / "on_cpu.pt")
            save_as_from_gpu(Path(tmp) / "on_cpu.pt", Path(tmp) / name)
            try:
                got = load_for_inference(Path(tmp) / name)
            except RuntimeError as err:
                if "CUDA" in str(err):
                    _expect(False, "the file's tensors were saved on cuda:0: pass map_location='cpu' to torch.load.")
                if "Missing key(s)" in str(err) or "Unexpected key(s)" in str(err):
                    _expect(False, f"{name} was saved from a model wrapped in {wrapper}: its keys carry the prefix "
                                   "the wrapper adds. Remove it before load_state_dict (section 5).")
                raise
            _expect(got is not None, "load_for_inference returned None: return the loaded Net.")
            _expect(isinstance(got, Net), f"return a labutils.Net, not {type(got).__name__}.")
            _expect(all(t.device.type == "cpu" for t in got.state_dict().values()), "the model must be on the CPU.")
            _expect(_equal_states(saved.state_dict(), got.state_dict()),
                    f"the weights differ from those in {name}: if you passed strict=False, look at what "
                    "load_state_dict returned (section 5).")
            _expect(not got.training, "the model is in training mode: call model.eval() before returning it.")
    return ("map_location='cpu', the wrapper's prefix removed, eval(): GPU checkpoints from torch.compile and "
            "DataParallel ready to predict on a CPU.")


def _imported(name: str) -> object:
    """The object a global's name ("numpy.dtype") stands for."""
    import importlib

    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _loads_with(path, names: list[str]) -> bool:
    """True when torch.load(weights_only=True) reads `path` with exactly `names` allowed (and nothing process-wide)."""
    import pickle

    with torch.serialization.safe_globals([_imported(name) for name in names]):
        try:
            torch.load(path, weights_only=True)
        except pickle.UnpicklingError:
            return False
    return True


@_check
def ex04_3(audit: Callable) -> str:
    """audit(folder) -> {name: sorted globals it needs, or None if unreadable} for each .pt and .pth; nothing runs."""
    import tempfile
    from pathlib import Path

    import numpy as np

    class _Exploit:
        def __init__(self, canary: Path):
            self.canary = canary

        def __reduce__(self):
            return exec, (f"open({str(self.canary)!r}, 'w').write('ran')",)

    process_wide = torch.serialization.get_safe_globals()  # what add_safe_globals allowed would hide what is needed
    torch.serialization.clear_safe_globals()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "downloads"
            folder.mkdir()
            canary = Path(tmp) / "canary.txt"
            torch.save(Net().state_dict(), folder / "weights.pt")
            torch.save({"model": Net().state_dict(), "x": _Exploit(canary)}, folder / "evil.pt")
            torch.save({"best": np.float64(0.99)}, folder / "scores.pth")
            torch.save(Net().state_dict(), folder / "old.pt", _use_new_zipfile_serialization=False)
            whole = (folder / "weights.pt").read_bytes()
            (folder / "half.pt").write_bytes(whole[: len(whole) // 2])
            (folder / "README.md").write_text("Weights from the workshop.\n")
            try:
                got = audit(folder)
            except (ValueError, RuntimeError) as err:
                got = err
            _expect(not canary.exists(), "the malicious file's code RAN: never load an untrusted file with "
                                         "weights_only=False, and never allow a global that runs code (builtins.exec). "
                                         "Read the pickle without running it: "
                                         "torch.serialization.get_unsafe_globals_in_checkpoint.")
            if isinstance(got, Exception):
                raise _Wrong(f"your code raised {type(got).__name__}: {str(got).splitlines()[0][:90]}. A file that "
                             "get_unsafe_globals_in_checkpoint cannot read? Map such a file to None.") from None
            _expect(got is not None, "audit returned None: return a dict from each file's name to its list of globals.")
            _expect(isinstance(got, dict), f"return a dict from file name to list, not {type(got).__name__}.")
            got = {getattr(name, "name", name): value for name, value in got.items()}
            _expect("README.md" not in got, "README.md is not a checkpoint: audit only the .pt and .pth files.")
            _expect("scores.pth" in got, "you left out scores.pth: .pth is the same format as .pt, under another name.")
            checkpoints = ["evil.pt", "half.pt", "old.pt", "scores.pth", "weights.pt"]
            _expect(sorted(got) == checkpoints, f"you returned {sorted(got)}; the checkpoints are {checkpoints}.")
            for name in ("old.pt", "half.pt"):
                _expect(got[name] is None, f"{name} cannot be read by get_unsafe_globals_in_checkpoint (it is in the "
                                           "old format, or cut short), so nothing vouches for it: return None for "
                                           f"it, not {got[name]!r}.")
            for name in checkpoints[:1] + checkpoints[3:]:
                value = got[name]
                _expect(isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
                        f"{name}: return a list of the globals' names (strings such as 'numpy.dtype'), not {value!r}.")
                _expect(list(value) == sorted(value), f"{name}: sort the list.")
            _expect(list(got["weights.pt"]) == [],
                    f"weights.pt loads with weights_only=True as it is: it needs nothing, not {got['weights.pt']!r}.")
            listed = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(folder / "evil.pt"))
            _expect(list(got["evil.pt"]) == listed, f"evil.pt: return the globals its pickle names beyond the "
                                                    f"allow-list (get_unsafe_globals_in_checkpoint), not "
                                                    f"{got['evil.pt']!r}; never load it to find more.")
            scores, path = list(got["scores.pth"]), folder / "scores.pth"
            for name in scores:
                try:
                    _imported(name)
                except (ImportError, AttributeError, ValueError):
                    raise _Wrong(f"scores.pth: {name!r} is not the name of anything Python can import.") from None
            if not _loads_with(path, scores):
                named = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
                _expect(scores != named, "scores.pth: with exactly the globals get_unsafe_globals_in_checkpoint "
                                         "names allowed, torch.load(weights_only=True) still refuses it: that listing "
                                         "reads the pickle without building anything, and a file can need more. "
                                         "Section 4 (the NumPy number) shows how to find the rest.")
                raise _Wrong("scores.pth: with exactly your list allowed, torch.load(weights_only=True) still refuses "
                             "it. Allow what each refusal names until it loads (section 4).")
            for name in scores:
                _expect(not _loads_with(path, [n for n in scores if n != name]),
                        f"scores.pth loads without {name}: list only what it needs.")
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(process_wide)
    return ("five checkpoints judged without running one: one safe as it is, one that needs NumPy's pieces "
            "allowed (proven by loading it with exactly those), one that runs code, and two that nothing vouches for.")
