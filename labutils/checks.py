"""Checks for the notebooks' exercises: each prints ✓ or ✗ with a hint, returns True or False, never raises."""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch


class _Wrong(Exception):
    """The answer is wrong; the message is the hint shown to the learner."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _Wrong(hint)


def _check(func: Callable[[object], str]) -> Callable[[object], bool]:
    """Turn a function that raises _Wrong (or returns a success message) into a check that never raises."""

    @functools.wraps(func)
    def check(answer: object) -> bool:
        name = func.__name__
        if answer is None or answer is Ellipsis:
            print(f"✗ {name}: no answer yet: fill in the exercise cell above, run it, then run this cell again.")
            return False
        try:
            message = func(answer)
        except _Wrong as wrong:
            print(f"✗ {name}: {wrong}")
            return False
        except Exception as err:  # the learner's code failed: say how, never raise
            print(f"✗ {name}: your code raised {type(err).__name__}: {err}")
            return False
        print(f"✓ {name}: {message}")
        return True

    return check


def _weights_only_round_trip(obj: object, fix: str) -> object:
    """torch.save `obj` to memory and load it back with weights_only=True; a refusal becomes the hint `fix`."""
    import io
    import pickle

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    try:
        return torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError as err:
        found = str(err).split("GLOBAL ")[-1].split(" ")[0]
        raise _Wrong(f"torch.load(weights_only=True) refuses it (it needs {found}): {fix}") from None


# --- 00_welcome --------------------------------------------------------------------------------------------

@_check
def ex00_1(count_digit: Callable) -> str:
    """count_digit(labels, digit) -> how many labels equal digit."""
    from .data import mnist_tensors

    toy = torch.tensor([3, 1, 3, 3, 0])
    got = count_digit(toy, 3)
    _expect(got is not None, "count_digit returned None: return the count, e.g. with (labels == digit).sum().")
    _expect(int(got) == 3 and float(got) == 3, f"count_digit(tensor([3, 1, 3, 3, 0]), 3) gave {got}, not 3.")
    _expect(int(count_digit(toy, 7)) == 0, "a digit that never occurs must give 0.")
    _, labels = mnist_tensors(train=True)
    expected = torch.bincount(labels, minlength=10)
    for digit in range(10):
        got = int(count_digit(labels, digit))
        _expect(got == expected[digit], f"on the training labels, digit {digit} gave {got}; compare each label "
                                        "with the digit and count the matches.")
    return f"right for all ten digits (the rarest is 5 with {int(expected[5]):,} images, the most common 1 with {int(expected[1]):,})."


@_check
def ex00_2(pixel_mean_std: Callable) -> str:
    """pixel_mean_std(images_uint8) -> (mean, std) of all pixels scaled to [0, 1]."""
    from .data import MEAN, STD, mnist

    toy = torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8)
    got = pixel_mean_std(toy)
    _expect(got is not None, "pixel_mean_std returned None: return the pair (mean, std) as floats.")
    _expect(isinstance(got, (tuple, list)) and len(got) == 2, f"return a pair (mean, std), not {got!r}.")
    mean, std = (float(v) for v in got)
    _expect(abs(mean - 0.5) < 1e-6, f"pixels 0, 255, 255, 0 gave mean {mean}; scale to [0, 1] first (divide by 255).")
    _expect(abs(std - 0.5) < 1e-3 or abs(std - 0.57735) < 1e-3,
            f"pixels 0, 255, 255, 0 gave std {std}; scale to [0, 1] before taking the standard deviation.")
    images = mnist(train=True, transform=None).data
    mean, std = (float(v) for v in pixel_mean_std(images))
    _expect(abs(mean - MEAN) < 5e-5 and abs(std - STD) < 5e-5,
            f"on the training images you got mean {mean:.4f}, std {std:.4f}; expected {MEAN}, {STD}. Convert to "
            "float before dividing, and take the statistics over all pixels of all images.")
    return f"mean {mean:.4f}, std {std:.4f}: the constants in every Normalize((0.1307,), (0.3081,))."


# --- 01_define_net -----------------------------------------------------------------------------------------

@_check
def ex01_1(count_parameters: Callable) -> str:
    """count_parameters(model) -> the number of trainable parameters (buffers and frozen ones excluded)."""
    from .models import BatchNormNet, Net

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
    """snapshot(model) -> a copy of the state_dict that later changes to the model do not touch."""
    from .models import BatchNormNet

    model = BatchNormNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snap = snapshot(model)
    _expect(snap is not None, "snapshot returned None: return a dict from each key to a copy of its tensor.")
    _expect(isinstance(snap, dict), f"return a dict of tensors (an OrderedDict), not {type(snap).__name__}.")
    _expect(list(snap) == list(before), "the snapshot must have the same keys, in the same order, as state_dict().")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 1, 28, 28))  # updates the BatchNorm buffers
    changed = [k for k in before if not torch.equal(snap[k], before[k])]
    _expect(not changed, f"after the model changed, your snapshot changed too ({', '.join(changed[:3])}…): "
                         "state_dict() returns views of the live tensors; clone them.")
    _expect(all(not v.requires_grad for v in snap.values()), "detach the tensors: a snapshot needs no autograd history.")
    return "the snapshot kept the old values while the model's parameters and buffers changed."


# --- 02_train_mnist ----------------------------------------------------------------------------------------

@_check
def ex02_1(accuracy: Callable) -> str:
    """accuracy(logits, labels) -> the fraction of rows whose largest logit is at the label."""
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [9.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    got = accuracy(logits, labels)
    _expect(got is not None, "accuracy returned None: return a float between 0 and 1.")
    _expect(isinstance(got, float), f"return a Python float (use .item()), not {type(got).__name__}.")
    _expect(abs(got - 0.5) < 1e-9, f"for 2 right out of 4 you returned {got}, expected 0.5: compare "
                                   "logits.argmax(dim=1) with the labels.")
    _expect(abs(accuracy(logits[:1], labels[:1]) - 1.0) < 1e-9, "one right out of one must give 1.0.")
    return "argmax over the classes, compared with the labels, averaged."


@_check
def ex02_2(per_class_accuracy: Callable) -> str:
    """per_class_accuracy(counts) -> for each true class, the fraction predicted correctly."""
    counts = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 5, 5]])
    got = per_class_accuracy(counts)
    _expect(got is not None, "per_class_accuracy returned None: return a tensor with one value per class.")
    got = torch.as_tensor(got, dtype=torch.float64)
    _expect(got.shape == (3,), f"return one value per class (shape (3,)), not shape {tuple(got.shape)}.")
    expected = torch.tensor([0.8, 0.75, 0.5], dtype=torch.float64)
    _expect(not torch.allclose(got, torch.tensor([8 / 9, 3 / 10, 5 / 5], dtype=torch.float64)),
            "you divided by the column sums (how often a class was predicted); rows are the true classes.")
    _expect(torch.allclose(got, expected), f"got {got.tolist()}, expected {expected.tolist()}: the diagonal "
                                           "divided by each row's total.")
    return "diagonal over row totals: the recall of each digit."


@_check
def ex02_3(evaluate_properly: Callable) -> str:
    """evaluate_properly(model, images, labels) -> accuracy in eval mode, leaving the model's mode as it was."""
    from .models import BatchNormNet

    generator = torch.Generator().manual_seed(0)
    model = BatchNormNet()
    images = torch.randn(2500, 1, 28, 28, generator=generator)
    model.train()(torch.randn(64, 1, 28, 28, generator=generator) * 3 + 1)  # running statistics unlike the data's
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        labels = model(images).argmax(1)  # the labels are eval mode's own answers: it scores exactly 1.0
    expected = 1.0
    model.train()
    got = evaluate_properly(model, images, labels)
    _expect(got is not None, "evaluate_properly returned None: return the accuracy as a float.")
    _expect(all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()),
            "evaluating changed the BatchNorm running statistics: call model.eval() before the forward pass.")
    _expect(abs(float(got) - expected) < 1e-6, f"you returned {float(got):.4f}, eval mode gives {expected:.4f}: "
                                               "with model.train(), Dropout and BatchNorm behave as in training.")
    _expect(model.training, "the model was in training mode before and must be again after: remember "
                            "model.training and restore it with model.train(was_training).")
    model.eval()
    evaluate_properly(model, images, labels)
    _expect(not model.training, "a model that arrived in eval mode must stay in eval mode.")
    return "eval mode for the forward pass, and the model left in the mode it came in."


# --- 03_saving ---------------------------------------------------------------------------------------------

@_check
def ex03_1(make_checkpoint: Callable) -> str:
    """make_checkpoint(model, optimizer, epoch, loss) -> a dict that resumes training and loads weights-only."""
    import torch.nn.functional as F

    from .models import Net

    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8))
    loss.backward()
    optimizer.step()
    got = make_checkpoint(model, optimizer, 3, loss)
    _expect(got is not None, "make_checkpoint returned None: return a dict with model, optimizer, epoch and loss.")
    _expect(isinstance(got, dict), f"return a dict, not {type(got).__name__}.")
    missing = {"model", "optimizer", "epoch", "loss"} - set(got)
    _expect(not missing, f"the checkpoint lacks {', '.join(sorted(missing))}.")
    loaded = _weights_only_round_trip(got, "save model.state_dict() and optimizer.state_dict(), not the objects.")
    _expect(type(loaded["loss"]) is float, f"the loss is a {type(loaded['loss']).__name__}: store loss.item(), a "
                                           "Python float (a tensor keeps its graph alive, NumPy values need code).")
    _expect(loaded["epoch"] == 3, f"epoch should be 3, the value passed in, not {loaded['epoch']!r}.")
    fresh = Net()
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded["model"])
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    state = optimizer.state_dict()["state"]
    _expect(all(torch.equal(value, fresh_optimizer.state_dict()["state"][i][name])
                for i in state for name, value in state[i].items()), "the optimizer state did not come back.")
    return "model and optimizer state_dicts, the epoch and a float loss: it loads with weights_only=True and resumes."


@_check
def ex03_2(save_atomically: Callable) -> str:
    """save_atomically(obj, path) -> path, written via a temporary in the same folder, fsync and os.replace."""
    import os
    import tempfile
    from pathlib import Path
    from unittest import mock

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        renames, syncs = [], []
        real_replace, real_rename, real_fsync = os.replace, os.rename, os.fsync

        def replace(src, dst, *args, **kwargs):
            renames.append((Path(src), Path(dst)))
            return real_replace(src, dst, *args, **kwargs)

        def rename(src, dst, *args, **kwargs):
            renames.append((Path(src), Path(dst)))
            return real_rename(src, dst, *args, **kwargs)

        with mock.patch("os.replace", replace), mock.patch("os.rename", rename), \
                mock.patch("os.fsync", lambda fd: (syncs.append(fd), real_fsync(fd))[1]):
            got = save_atomically({"epoch": 1, "w": torch.arange(5.0)}, path)
            _expect(got is not None, "save_atomically returned None: return `path` once the file is in place.")
            _expect(path.exists(), "nothing was written at `path`.")
            loaded = torch.load(path, weights_only=True)
            _expect(loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.arange(5.0)), "the saved file does not "
                                                                                         "hold what was passed in.")
            _expect(renames and renames[-1][1] == path, "the file did not arrive by a rename: torch.save into a "
                                                        "temporary, then os.replace(temporary, path).")
            _expect(renames[-1][0].parent == path.parent, f"the temporary was in {renames[-1][0].parent}, not in the "
                                                          "folder of `path`: a rename across disks is a copy, not atomic.")
            _expect(syncs, "call f.flush() and os.fsync(f.fileno()) before the rename, or a power cut can leave an "
                           "empty file under the new name.")
            before = path.read_bytes()
            raised = False
            try:
                save_atomically({"epoch": 2, "schedule": lambda step: 0.5}, path)  # pickling fails half-way
            except Exception:
                raised = True
        _expect(raised, "a save that fails (here: a lambda cannot be pickled) must raise: let the error through.")
        _expect(path.read_bytes() == before, "the failed save damaged the good checkpoint: write to a temporary "
                                             "file, and only replace `path` once the save succeeded.")
        left = sorted(p.name for p in Path(tmp).iterdir())
        _expect(left == ["checkpoint.pt"], f"the failed save left {left}: delete the temporary when the save fails.")
    return "temporary in the same folder, fsync, os.replace; a failed save left the good file byte for byte intact."


@_check
def ex03_3(untie: Callable) -> str:
    """untie(state_dict) -> a dict safetensors accepts: tensors sharing memory with an earlier one are copied."""
    import safetensors.torch

    torch.manual_seed(0)
    shared = torch.randn(10, 16)
    bias = torch.randn(10)
    original = {"embed.weight": shared, "head.weight": shared, "head.bias": bias, "decoder.weight": shared}
    got = untie(original)
    _expect(got is not None, "untie returned None: return a new dict of tensors.")
    _expect(isinstance(got, dict) and list(got) == list(original), "return a dict with the same keys, in order.")
    _expect(all(torch.equal(got[k], v) for k, v in original.items()), "the values changed: copy, do not modify.")
    _expect(original["head.weight"] is shared and original["decoder.weight"] is shared,
            "the input dict changed: build a new one.")
    try:
        safetensors.torch.save(got)
    except RuntimeError:
        _expect(False, "safetensors still refuses: some tensors share memory. Compare "
                       "tensor.untyped_storage().data_ptr() and clone() every repeat.")
    pointers = [got[k].untyped_storage().data_ptr() for k in got]
    _expect(pointers[0] == shared.untyped_storage().data_ptr() and got["head.bias"] is bias,
            "copy only what you must: keep the first tensor of each shared group and every unshared one as they are.")
    return "one copy per repeat, the first and the unshared tensors kept: safetensors saves it."


# --- 04_loading --------------------------------------------------------------------------------------------

@_check
def ex04_1(strip_prefix: Callable) -> str:
    """strip_prefix(state_dict, prefix) -> a new dict whose keys lose `prefix` where they start with it."""
    from .models import Net

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

    from .models import Net
    from .notebook import save_as_from_gpu

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

    from .models import Net

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


# --- 05_partial_loading ------------------------------------------------------------------------------------

def _fc1_and_fc10() -> torch.nn.Module:
    """A model with layers whose names share a prefix: freezing or loading "fc1" must leave "fc10" alone."""
    return torch.nn.ModuleDict({"fc1": torch.nn.Linear(4, 3), "fc10": torch.nn.Linear(3, 2)})


@_check
def ex05_1(freeze_layers: Callable) -> str:
    """freeze_layers(model, layers) -> the number of parameters still trainable after freezing those layers."""
    from .models import Net

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
    from .models import Net

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


# --- 06_resume_training ------------------------------------------------------------------------------------

@_check
def ex06_1(redo_steps: Callable) -> str:
    """redo_steps(crash_step, every, steps_per_epoch) -> steps since the last checkpoint (every N steps, epoch ends)."""
    cases = {(130, 20, 94): 10, (100, 20, 94): 0, (95, 20, 94): 1, (19, 20, 94): 19, (0, 20, 94): 0,
             (230, 50, 60): 30, (190, 50, 60): 10, (188, 20, 94): 0}
    for args, expected in cases.items():
        got = redo_steps(*args)
        _expect(got is not None, "redo_steps returned None: return the number of steps to redo.")
        if args == (95, 20, 94) and int(got) == 15:
            _expect(False, "redo_steps(95, 20, 94) gave 15: the end of each epoch is saved too (step 94 here).")
        _expect(int(got) == expected, f"redo_steps{args} gave {got}, expected {expected}: the last checkpoint is the "
                                      "larger of the last multiple of `every` and the last epoch end.")
    return "the last save is the later of the last multiple of `every` and the last epoch end."


@_check
def ex06_2(capture_rng_state: Callable) -> str:
    """capture_rng_state(numpy_generator) -> python, numpy and torch generator states, loadable weights-only."""
    import random
    from unittest import mock

    import numpy as np

    from .resume import ResumableRun, restore_rng
    from .train import TrainConfig

    generator = np.random.default_rng(5)
    got = capture_rng_state(generator)
    _expect(got is not None, "capture_rng_state returned None: return a dict with python, numpy and torch states.")
    _expect(isinstance(got, dict) and {"python", "numpy", "torch"} <= set(got),
            "return a dict with the keys 'python', 'numpy' and 'torch'.")
    loaded = _weights_only_round_trip(got, "store numpy_generator.bit_generator.state (a dict), not the generator "
                                           "itself.")
    first = (random.random(), generator.random(), torch.rand(3))
    restore_rng(loaded, generator)
    again = (random.random(), generator.random(), torch.rand(3))
    _expect(first[0] == again[0], "Python's random draws differ after restoring: store random.getstate().")
    _expect(first[1] == again[1], "NumPy's draws differ after restoring: store numpy_generator.bit_generator.state.")
    _expect(torch.equal(first[2], again[2]), "torch's draws differ after restoring: store torch.get_rng_state().")

    config = TrainConfig(seed=2, epochs=1, batch_size=100, lr=0.01, train_subset=400)
    from .data import mnist_tensors
    data = mnist_tensors(train=True, subset=400)
    with mock.patch("labutils.resume.capture_rng", capture_rng_state):
        straight = ResumableRun(*data, config)
        straight.train()
        stopped = ResumableRun(*data, config)
        stopped.train(until_step=2)
        state = _weights_only_round_trip(stopped.state_dict(), "the run's state does not load.")
        resumed = ResumableRun(*data, config)  # seeds the process-wide generators: so after state_dict()
        resumed.load_state_dict(state)
        resumed.train()
    _expect(all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in straight.model.state_dict().items()),
            "a run resumed with your states differs from the straight run.")
    return "all three generators restored; a run resumed with your capture equals the straight run bit for bit."


@_check
def ex06_3(newest_good: Callable) -> str:
    """newest_good(folder) -> the newest step-*.pt (by its step) that verifies, or None."""
    import os
    import tempfile
    from pathlib import Path

    from .checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        got = newest_good(folder)
        _expect(got is None, f"an empty folder has no checkpoint: return None, not {got!r}.")
        for step in (4, 8, 12, 120):
            save_checkpoint(folder / f"step-{step:08d}.pt", {"step": step})
        save_checkpoint(folder / "best.pt", {"step": 8})
        (folder / ".step-00000160.pt.tmp-99999-abc").write_bytes(b"PK\x03\x04 partial")
        newest = folder / "step-00000120.pt"
        newest.write_bytes(newest.read_bytes()[:100])  # truncated
        for age, step in enumerate((12, 8, 4, 120)):  # step 4 has the newest modification time
            os.utime(folder / f"step-{step:08d}.pt", (1_000_000 + age, 1_000_000 + age))
        got = newest_good(folder)
        _expect(got is not None, "newest_good returned None, but step-00000012.pt is intact.")
        got = Path(got)
        _expect(got.name != "step-00000120.pt", "step-00000120.pt is truncated: verify each file with "
                                                "verify_checksum and skip those that fail.")
        _expect(got.name != "step-00000004.pt", "you picked the newest by modification time; order by the step in "
                                                "the file name (a copy or a restore changes the time).")
        _expect(got.name == "step-00000012.pt", f"expected step-00000012.pt, got {got.name}.")
        for path in folder.glob("step-*.pt"):
            path.write_bytes(b"")
        _expect(newest_good(folder) is None, "when no checkpoint verifies, return None.")
    return "newest by step, damaged ones skipped, temporaries and best.pt ignored."


# --- 07_deploy_and_share -----------------------------------------------------------------------------------

@_check
def ex07_1(export_dynamic: Callable) -> str:
    """export_dynamic(model) -> an ExportedProgram that takes any batch size."""
    from .models import Net

    torch.manual_seed(0)
    model = Net().eval()
    got = export_dynamic(model)
    _expect(got is not None, "export_dynamic returned None: return torch.export.export(...).")
    _expect(isinstance(got, torch.export.ExportedProgram), f"return an ExportedProgram, not {type(got).__name__}.")
    images = torch.randn(100, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for n in (1, 7, 100):
        try:
            out = got.module()(images[:n])
        except Exception as err:
            raise _Wrong(f"a batch of {n} failed ({type(err).__name__}): pass dynamic_shapes={{'x': {{0: "
                         "torch.export.Dim('batch')}}} and an example batch of at least 2.") from None
        with torch.no_grad():
            _expect(torch.allclose(out, model(images[:n]), atol=1e-6), f"a batch of {n} gave other logits than the model.")
    return "batches of 1, 7 and 100 all run and match the model."


@_check
def ex07_2(changed_files: Callable) -> str:
    """changed_files(folder) -> sorted names listed in SHA256SUMS that are missing or differ."""
    import tempfile
    from pathlib import Path

    from .share import write_checksums

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, content in {"config.json": b"{}", "model.safetensors": b"\x00" * 64, "README.md": b"# card"}.items():
            (folder / name).write_bytes(content)
        write_checksums(folder)
        got = changed_files(folder)
        _expect(got is not None, "changed_files returned None: return a list of names (empty when all is well).")
        _expect(list(got) == [], f"the folder is intact, but you returned {got!r}.")
        (folder / "model.safetensors").write_bytes(b"\x01" * 64)
        (folder / "notes.txt").write_text("not listed in SHA256SUMS: ignore it")
        got = changed_files(folder)
        _expect(list(got) == ["model.safetensors"], f"model.safetensors changed; you returned {got!r}.")
        (folder / "config.json").unlink()
        got = changed_files(folder)
        _expect(list(got) == ["config.json", "model.safetensors"],
                f"config.json is missing and model.safetensors changed; you returned {got!r} (a missing file counts "
                "as changed; sort the names).")
    return "changed and missing files found, unlisted ones ignored."


# --- 08_large_models ---------------------------------------------------------------------------------------

def _adam_bytes(model: torch.nn.Module) -> int:
    """Return the bytes of a model's state_dict plus Adam's moments after one step (step counters left out)."""
    optimizer = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    moments = [t for s in optimizer.state_dict()["state"].values() for k, t in s.items() if k != "step"]
    return sum(t.numel() * t.element_size() for t in [*model.state_dict().values(), *moments])


@_check
def ex08_1(adam_checkpoint_bytes: Callable) -> str:
    """adam_checkpoint_bytes(n_params, dtype) -> bytes of the weights plus Adam's two moments."""
    from .models import Net

    for model, dtype in ((Net(), torch.float32), (Net().to(torch.bfloat16), torch.bfloat16),
                         (torch.nn.Linear(300, 7).double(), torch.float64)):
        n = sum(p.numel() for p in model.parameters())
        real = _adam_bytes(model)
        got = adam_checkpoint_bytes(n, dtype)
        _expect(got is not None, "adam_checkpoint_bytes returned None: return a number of bytes.")
        _expect(got == real, f"for {n:,} parameters of {dtype} you returned {got!r}; a model with Adam holds "
                f"{real:,} bytes." + (" Adam keeps two averages per parameter (exp_avg and exp_avg_sq)."
                                      if got == real // 3 * 2 else "") +
                (" Use dtype.itemsize: not every dtype takes 4 bytes." if dtype != torch.float32 and got == 12 * n
                 else ""))
    return "weights + two moments: 3 x parameters x dtype.itemsize, as real models measure."


@_check
def ex08_2(functions: tuple[Callable, Callable]) -> str:
    """(save_sharded(state_dict, folder), load_sharded(folder) -> state_dict) with shards of at most 1 MB."""
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_file

    save_sharded, load_sharded = functions
    generator = torch.Generator().manual_seed(0)
    state = {f"block{i}.weight": torch.randn(256, 256, generator=generator) for i in range(12)}
    state |= {f"block{i}.bias": torch.randn(256, generator=generator) for i in range(12)}
    state["embedding.weight"] = torch.randn(300, 64, generator=generator).to(torch.bfloat16)
    state["steps"] = torch.tensor([1234], dtype=torch.int64)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        returned = save_sharded({k: v.clone() for k, v in state.items()}, folder)
        files = sorted(folder.glob("*.safetensors"))
        _expect(files or returned is not None, "save_sharded returned None and wrote no .safetensors file in the "
                "folder: save the state_dict there.")
        big = [(f.name, f.stat().st_size) for f in files if f.stat().st_size > 1_000_000]
        _expect(not big, f"{big[0][0] if big else ''} has {big[0][1] if big else 0:,} bytes: every file must stay at "
                "or under 1,000,000 bytes (max_shard_size='1MB').")
        _expect(len(files) > 1, "the state_dict holds 3.2 MB: it needs several shards.")
        _expect((folder / "model.safetensors.index.json").is_file(), "write model.safetensors.index.json, the index "
                "that maps each key to its shard (save_torch_state_dict writes it).")
        save_file({"stray": torch.zeros(3)}, folder / "model-00099-of-00099.safetensors")  # not in the index
        loaded = load_sharded(folder)
        _expect(loaded is not None, "load_sharded returned None: return the state_dict read from the shards.")
        _expect("stray" not in loaded, "you loaded a file the index does not list: read the shards named in the "
                "index's weight_map, not every file in the folder.")
        missing, extra = sorted(set(state) - set(loaded)), sorted(set(loaded) - set(state))
        _expect(not missing and not extra, f"keys missing: {missing[:3]}, keys that should not be there: {extra[:3]}.")
        for key, tensor in state.items():
            _expect(loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor),
                    f"{key} came back different (dtype {loaded[key].dtype}, expected {tensor.dtype}).")
    return f"{len(files)} shards under 1 MB with an index, loaded back equal; a file outside the index ignored."


def _bn_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(128, 128), torch.nn.BatchNorm1d(128), torch.nn.Linear(128, 10))


@_check
def ex08_3(fill_from_shards: Callable) -> str:
    """fill_from_shards(meta_model, folder) -> the model, its tensors the shards' (raises naming missing keys)."""
    import json
    import tempfile
    from pathlib import Path

    from huggingface_hub import save_torch_state_dict

    torch.manual_seed(0)
    source = _bn_model()
    source[1].running_mean.normal_()
    source[1].num_batches_tracked.fill_(7)
    state = source.state_dict()

    def meta_model() -> torch.nn.Module:
        with torch.device("meta"):
            return _bn_model()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_torch_state_dict(state, folder, max_shard_size="30KB")
        model = fill_from_shards(meta_model(), folder)
        _expect(model is not None, "fill_from_shards returned None: return the filled model.")
        on_meta = [k for k, v in model.state_dict().items() if v.is_meta]
        _expect(not on_meta, f"{on_meta[:3]} are still on the meta device: copying into a meta tensor does nothing; "
                "pass assign=True to load_state_dict.")
        for key, tensor in state.items():
            _expect(torch.equal(model.state_dict()[key], tensor), f"{key} differs from the checkpoint.")
        index_path = folder / "model.safetensors.index.json"
        index = json.loads(index_path.read_text())
        lost = sorted(index["weight_map"].values())[-1]
        missing = sorted(k for k, f in index["weight_map"].items() if f == lost)
        index["weight_map"] = {k: f for k, f in index["weight_map"].items() if f != lost}
        index_path.write_text(json.dumps(index))
        (folder / lost).unlink()
        try:
            partial = fill_from_shards(meta_model(), folder)
        except Exception as err:  # the right answer: refuse, naming what is missing
            _expect(any(key in str(err) for key in missing), f"you raised {type(err).__name__}: {err}, but the "
                    f"message should name the missing keys ({', '.join(missing)}).")
        else:
            left = [k for k, v in partial.state_dict().items() if v.is_meta] if partial is not None else missing
            raise _Wrong(f"the shards lack {', '.join(missing)}, but you returned a model (with {left[:2]} on the meta "
                         "device). strict=False hides missing keys: check them yourself and raise.")
    return "the meta model filled shard by shard, and a missing shard refused by name."


# --- 09_troubleshooting_clinic -----------------------------------------------------------------------------

def _equal_states(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@_check
def ex09_1(save_everything: Callable) -> str:
    """save_everything(model, path) -> writes what the model needs to be rebuilt: parameters and buffers."""
    import tempfile
    from pathlib import Path

    from .models import BatchNormNet

    torch.manual_seed(0)
    model = BatchNormNet()
    model(torch.randn(16, 1, 28, 28))  # a training-mode pass moves the running statistics away from their defaults
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        returned = save_everything(model, path)
        _expect(path.exists() or returned is not None, "save_everything returned None and wrote nothing: save the "
                "model to `path`.")
        _expect(path.exists(), f"nothing was written to {path.name}.")
        saved = torch.load(path, weights_only=True)
        _expect(isinstance(saved, dict), f"the file holds a {type(saved).__name__}; save a dict of tensors.")
        missing = sorted(set(model.state_dict()) - set(saved))
        _expect(not missing, f"the file lacks {missing[:3]}: buffers such as running_mean are part of the model but "
                "not of named_parameters(); save model.state_dict().")
        fresh = BatchNormNet().eval()
        fresh.load_state_dict(saved)
        x = torch.randn(4, 1, 28, 28)
        _expect(torch.equal(fresh(x), model(x)), "a model rebuilt from the file computes other outputs.")
    return "parameters and buffers saved: the rebuilt model computes the same outputs."


@_check
def ex09_2(load_on_cpu: Callable) -> str:
    """load_on_cpu(path) -> the state_dict of a checkpoint saved on a GPU, with every tensor on the CPU."""
    import tempfile
    from pathlib import Path

    from .models import Net
    from .notebook import save_as_from_gpu

    torch.manual_seed(0)
    state = Net().state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / "cpu.pt")
        save_as_from_gpu(Path(tmp) / "cpu.pt", Path(tmp) / "gpu.pt")
        got = load_on_cpu(Path(tmp) / "gpu.pt")
    _expect(got is not None, "load_on_cpu returned None: return the loaded state_dict.")
    devices = sorted({str(t.device) for t in got.values()})
    _expect(devices == ["cpu"], f"the tensors are on {devices}: pass map_location='cpu' to torch.load.")
    _expect(_equal_states(got, state), "the loaded tensors differ from the saved ones.")
    return "the GPU checkpoint loads on the CPU, every tensor equal."


@_check
def ex09_3(predict: Callable) -> str:
    """predict(model, raw_images, metadata) -> classes, as at training time: eval mode, the stored normalisation."""
    from .data import MEAN, STD, mnist_tensors
    from .models import BatchNormNet

    images, _ = mnist_tensors(train=False, subset=400)
    raw = ((images * STD + MEAN) * 255).round().to(torch.uint8)
    torch.manual_seed(0)
    model = BatchNormNet()
    for bn in (model.bn1, model.bn2):  # statistics as training would have left them
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    metadata = {"mean": 0.25, "std": 0.4}  # not MNIST's usual values: read them from the metadata

    def classes(x: torch.Tensor, train: bool) -> torch.Tensor:
        model.train(train)
        with torch.no_grad():
            out = model(x).argmax(1)
        model.train()
        return out

    scaled = raw.float() / 255
    expected = classes((scaled - 0.25) / 0.4, train=False)
    mistakes = {
        "use the mean and std stored in `metadata`, not MNIST's usual 0.1307 and 0.3081.":
            classes((scaled - MEAN) / STD, train=False),
        "scale the uint8 pixels to [0, 1] (divide by 255) before normalising.":
            classes((raw.float() - 0.25) / 0.4, train=False),
    }
    model.train()  # as a freshly built model is
    statistics = model.bn1.running_mean.clone()
    got = predict(model, raw, metadata)
    _expect(got is not None, "predict returned None: return the predicted classes.")
    _expect(torch.equal(statistics, model.bn1.running_mean), "the model ran in training mode (BatchNorm updated its "
            "running statistics, Dropout dropped activations): call model.eval() first.")
    got = torch.as_tensor(got).reshape(-1)
    _expect(got.shape == expected.shape, f"predict returned {tuple(got.shape)} classes for {len(raw)} images.")
    if (got == expected).float().mean() >= 0.99:
        return "eval mode and the stored normalisation: the predictions the model was trained to make."
    for hint, wrong in mistakes.items():
        if (got == wrong).float().mean() >= 0.99:
            raise _Wrong(f"your predictions match a known mistake: {hint}")
    raise _Wrong(f"only {(got == expected).float().mean():.0%} of the predictions match: eval mode, x / 255, then "
                 "(x - mean) / std with the metadata's values.")


@_check
def ex09_4(load_any_prefix: Callable) -> str:
    """load_any_prefix(model, state_dict) -> the model, loaded from keys with module. and/or _orig_mod. in front."""
    from .models import Net

    torch.manual_seed(0)
    state = Net().state_dict()
    for prefix in ("", "module.", "_orig_mod.", "module._orig_mod."):
        model = load_any_prefix(Net(), {prefix + k: v for k, v in state.items()})
        _expect(model is not None, "load_any_prefix returned None: return the loaded model.")
        _expect(_equal_states(model.state_dict(), state), f"with keys starting {prefix!r} the weights differ.")
    return "keys from DataParallel (module.), torch.compile (_orig_mod.) and both load."


@_check
def ex09_5(load_backbone: Callable) -> str:
    """load_backbone(model, state_dict) -> the keys skipped because their shapes differ (the new head)."""
    from .models import Net

    torch.manual_seed(0)
    state = Net().state_dict()
    model = Net(num_classes=5)
    head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("fc3.")}
    skipped = load_backbone(model, state)
    _expect(skipped is not None, "load_backbone returned None: return the list of keys you skipped.")
    _expect(sorted(skipped) == ["fc3.bias", "fc3.weight"], f"you skipped {sorted(skipped)}; only the 5-class head "
            "(fc3.weight, fc3.bias) has other shapes.")
    loaded = model.state_dict()
    _expect(all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("fc3.")),
            "the backbone (conv1 ... fc2) was not loaded.")
    _expect(all(torch.equal(loaded[k], v) for k, v in head.items()), "the new head changed: leave it as initialised.")
    return "the backbone loaded, the new head kept, and the skipped keys reported."


class _RunsCode:
    """Pickles as a call to os.path.exists: harmless, but proof that loading ran code."""

    def __reduce__(self):
        import os

        return (os.path.exists, (".",))


@_check
def ex09_6(load_with_numpy: Callable) -> str:
    """load_with_numpy(path) -> a checkpoint holding NumPy scalars, loaded with weights_only=True; code refused."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from .models import Net

    with tempfile.TemporaryDirectory() as tmp:
        good, evil = Path(tmp) / "numpy.pt", Path(tmp) / "evil.pt"
        torch.save({"model": Net().state_dict(), "best_acc": np.float64(0.9911), "epoch": np.int64(3)}, good)
        torch.save({"model": Net().state_dict(), "best_acc": _RunsCode()}, evil)
        got = load_with_numpy(good)
        _expect(got is not None, "load_with_numpy returned None: return the loaded checkpoint.")
        _expect(float(got["best_acc"]) == 0.9911 and int(got["epoch"]) == 3, "best_acc or epoch came back wrong.")
        try:
            load_with_numpy(evil)
        except Exception:
            pass
        else:
            raise _Wrong("your function also loaded a file that calls os.path.exists() while it loads: any code could "
                         "have run. Keep weights_only=True and allow only NumPy's globals (torch.serialization."
                         "safe_globals).")
    return "the NumPy scalars load with weights_only=True, and a file that runs code is still refused."


@_check
def ex09_7(file_problem: Callable) -> str:
    """file_problem(path) -> "ok", "missing", "empty", "truncated" or "not a checkpoint"."""
    import io
    import tempfile
    from pathlib import Path

    from .models import Net

    buffer = io.BytesIO()
    torch.save(Net().state_dict(), buffer)
    data = buffer.getvalue()
    cases = {"ok.pt": (data, "ok"), "empty.pt": (b"", "empty"), "truncated.pt": (data[: len(data) * 6 // 10], "truncated"),
             "notes.pt": (b"loss went down, then up\n", "not a checkpoint"), "missing.pt": (None, "missing")}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (content, _) in cases.items():
            if content is not None:
                (Path(tmp) / name).write_bytes(content)
        for name, (_, expected) in cases.items():
            got = file_problem(Path(tmp) / name)
            _expect(got is not None, "file_problem returned None: return one of the five words.")
            _expect(got == expected, f"{name} ({'no file' if cases[name][0] is None else f'{len(cases[name][0]):,} bytes'})"
                    f" is {expected!r}; you said {got!r}.")
    return "ok, missing, empty, truncated and not-a-checkpoint all told apart."


def _lr_run() -> tuple[torch.nn.Module, torch.optim.Optimizer, object]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=30)


def _lr_steps(model, optimizer, scheduler, steps: int, start: int) -> list[float]:
    rates = []
    for step in range(start, start + steps):
        x = torch.linspace(-1, 1, 8 * 4).reshape(8, 4) * (step % 5 + 1)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


@_check
def ex09_8(resume_all: Callable) -> str:
    """resume_all(checkpoint, model, optimizer, scheduler) -> (model, optimizer, scheduler) continuing the run."""
    import copy

    model, optimizer, scheduler = _lr_run()
    _lr_steps(model, optimizer, scheduler, 12, 0)
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict()})
    expected = _lr_steps(model, optimizer, scheduler, 6, 12)
    got = resume_all(checkpoint, *_lr_run())
    _expect(got is not None, "resume_all returned None: return (model, optimizer, scheduler).")
    resumed_model, resumed_optimizer, resumed_scheduler = got
    rates = _lr_steps(resumed_model, resumed_optimizer, resumed_scheduler, 6, 12)
    _expect(rates == expected, f"after resuming the learning rate went {rates[0]:.4f}, {rates[1]:.4f}, ... instead of "
            f"{expected[0]:.4f}, {expected[1]:.4f}, ...: load the scheduler's state_dict too.")
    _expect(all(torch.equal(a, b) for a, b in zip(resumed_model.parameters(), model.parameters())),
            "the weights drift from the uninterrupted run: load the optimizer's state (its momentum) as well.")
    return "model, optimizer and schedule restored: the resumed run is the uninterrupted one."


_TINYNET = """
import sys, torch
class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
    def forward(self, x):
        return self.fc(x)
torch.manual_seed(0)
model = TinyNet()
torch.save(model, sys.argv[1])                 # the whole model: a pickle that names __main__.TinyNet
torch.save(model.state_dict(), sys.argv[2])    # what the rescue must end up with
"""


class TinyNet(torch.nn.Module):
    """The class a whole-model pickle in notebook 09 names (__main__.TinyNet), as its author wrote it."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def write_tiny_pickle(path, reference) -> None:
    """Save a whole TinyNet from a script (so the pickle names __main__.TinyNet), and its state_dict beside it."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", _TINYNET, str(path), str(reference)], check=True, capture_output=True)


@_check
def ex09_9(rescue_pickle: Callable) -> str:
    """rescue_pickle(path, cls, out_path) -> turn a whole-model pickle into a state_dict file that cls() loads."""
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        pickled, reference, out = Path(tmp) / "tiny.pt", Path(tmp) / "reference.pt", Path(tmp) / "tiny_weights.pt"
        write_tiny_pickle(pickled, reference)
        main = sys.modules["__main__"]
        had = getattr(main, "TinyNet", None)
        if had is not None:
            del main.TinyNet  # start as a new session does: no TinyNet in __main__
        try:
            returned = rescue_pickle(pickled, TinyNet, out)
        finally:
            if had is not None:
                main.TinyNet = had
        _expect(out.exists() or returned is not None, "rescue_pickle returned None and wrote nothing: write the "
                "weights to `out_path`.")
        _expect(out.exists(), f"nothing was written to {out.name}.")
        try:
            state = torch.load(out, weights_only=True)
        except Exception as err:
            raise _Wrong(f"{out.name} does not load with weights_only=True ({type(err).__name__}): save the model's "
                         "state_dict(), not the model.") from None
        model = TinyNet()
        model.load_state_dict(state)
        _expect(_equal_states(model.state_dict(), torch.load(reference, weights_only=True)),
                "the rescued weights differ from the pickled model's.")
    return "the pickle unpickled with its class, and its weights saved as a plain state_dict."
