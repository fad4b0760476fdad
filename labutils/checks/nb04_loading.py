"""Checks for the exercises of notebook 04 (loading): solutions in notebooks/solutions/ex04_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex04_1", "ex04_2", "ex04_3"]


@_check
def ex04_1(strip_prefix: Callable) -> str:
    """strip_prefix(state_dict, prefix) -> a new dict whose keys lose `prefix` where they start with it."""
    from ..models import Net

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
    _expect(all(got[new] is original[old] for new, old in zip(expected, keys_before)), "keep each key's tensor.")
    model = Net()
    wrapped = torch.nn.DataParallel(model).state_dict()
    result = Net().load_state_dict(strip_prefix(wrapped, "module."))
    _expect(not result.missing_keys and not result.unexpected_keys, "a DataParallel state_dict still does not load.")
    return "only leading prefixes removed, order and tensors kept: a DataParallel state_dict loads into Net."


@_check
def ex04_2(load_for_inference: Callable) -> str:
    """load_for_inference(path) -> a Net on the CPU, in eval mode, with the weights of a (GPU) state_dict file."""
    import tempfile
    from pathlib import Path

    from ..models import Net
    from ..notebook import save_as_from_gpu

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net_cuda.pt"
        torch.manual_seed(4)
        saved = Net()
        torch.save(saved.state_dict(), Path(tmp) / "net_cpu.pt")
        save_as_from_gpu(Path(tmp) / "net_cpu.pt", path)
        try:
            got = load_for_inference(path)
        except RuntimeError as err:
            if "CUDA" in str(err):
                _expect(False, "the file's tensors were saved on cuda:0: pass map_location='cpu' to torch.load.")
            raise
    _expect(got is not None, "load_for_inference returned None: return the loaded Net.")
    _expect(isinstance(got, Net), f"return a labutils.Net, not {type(got).__name__}.")
    _expect(all(t.device.type == "cpu" for t in got.state_dict().values()), "the model must be on the CPU.")
    _expect(all(torch.equal(v, got.state_dict()[k]) for k, v in saved.state_dict().items()),
            "the weights differ from the file's: load them with load_state_dict.")
    _expect(not got.training, "the model is in training mode: call model.eval() before returning it.")
    return "map_location='cpu', load_state_dict, eval(): a GPU checkpoint ready to predict on a CPU."


@_check
def ex04_3(unsafe_globals: Callable) -> str:
    """unsafe_globals(path) -> sorted names of the globals a .pt file needs beyond weights_only, without running it."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..models import Net

    class _Exploit:
        def __init__(self, canary: Path):
            self.canary = canary

        def __reduce__(self):
            return exec, (f"open({str(self.canary)!r}, 'w').write('ran')",)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        canary = folder / "canary.txt"
        torch.save(Net().state_dict(), folder / "safe.pt")
        torch.save({"model": Net().state_dict(), "x": _Exploit(canary)}, folder / "evil.pt")
        torch.save({"best": np.float64(0.99)}, folder / "numpy.pt")
        got = unsafe_globals(folder / "safe.pt")
        _expect(got is not None, "unsafe_globals returned None: return a list of names (empty for a safe file).")
        _expect(list(got) == [], f"a plain state_dict needs nothing unsafe, but you returned {got!r}.")
        evil = unsafe_globals(folder / "evil.pt")
        _expect(not canary.exists(), "the malicious file's code RAN: never load an untrusted file with "
                                     "weights_only=False. Read the pickle without running it: "
                                     "torch.serialization.get_unsafe_globals_in_checkpoint.")
        _expect(list(evil) == ["builtins.exec"], f"the malicious file needs builtins.exec; you returned {evil!r}.")
        numpy = unsafe_globals(folder / "numpy.pt")
        expected = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(folder / "numpy.pt"))
        _expect(list(numpy) == expected, f"for a NumPy scalar you returned {numpy!r}, expected {expected} (sorted).")
    return "names found without running the pickle; the canary never appeared."
