"""Checks for the exercises of notebook 04 (loading): solutions in notebooks/solutions/ex04_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Net
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

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
def ex04_3(audit: Callable) -> str:
    """audit(folder) -> {name: sorted unsafe globals, or None if unreadable} for each .pt and .pth, running nothing."""
    import tempfile
    from pathlib import Path

    import numpy as np

    class _Exploit:
        def __init__(self, canary: Path):
            self.canary = canary

        def __reduce__(self):
            return exec, (f"open({str(self.canary)!r}, 'w').write('ran')",)

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
                                     "weights_only=False. Read the pickle without running it: "
                                     "torch.serialization.get_unsafe_globals_in_checkpoint.")
        if isinstance(got, Exception):
            raise _Wrong(f"your code raised {type(got).__name__}: {str(got).splitlines()[0][:90]}. A file that "
                         "get_unsafe_globals_in_checkpoint cannot read? Map such a file to None.") from None
        _expect(got is not None, "audit returned None: return a dict from each file's name to its list of globals.")
        _expect(isinstance(got, dict), f"return a dict from file name to list, not {type(got).__name__}.")
        got = {getattr(name, "name", name): value for name, value in got.items()}
        _expect("README.md" not in got, "README.md is not a checkpoint: audit only the .pt and .pth files.")
        _expect("scores.pth" in got, "you left out scores.pth: .pth is the same format as .pt, under another name.")
        expected = {"weights.pt": [], "evil.pt": ["builtins.exec"],
                    "scores.pth": sorted(torch.serialization.get_unsafe_globals_in_checkpoint(folder / "scores.pth")),
                    "old.pt": None, "half.pt": None}
        _expect(set(got) == set(expected), f"you returned {sorted(got)}; the checkpoints are {sorted(expected)}.")
        for name in ("old.pt", "half.pt"):
            _expect(got[name] is None, f"{name} cannot be read by get_unsafe_globals_in_checkpoint (it is in the old "
                                       "format, or cut short), so nothing vouches for it: return None for it, not "
                                       f"{got[name]!r}.")
        for name in ("weights.pt", "evil.pt", "scores.pth"):
            _expect(isinstance(got[name], (list, tuple)) and list(got[name]) == expected[name],
                    f"{name} needs {expected[name]} (sorted); you returned {got[name]!r}.")
    return ("five checkpoints judged without running one: one safe as it is, one that needs NumPy allowed, one that "
            "runs code, and two that nothing vouches for.")
