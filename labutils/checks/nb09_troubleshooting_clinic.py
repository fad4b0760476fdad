"""Checks for the exercises of notebook 09 (troubleshooting clinic): solutions in notebooks/solutions/ex09_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..checkpoint import unsafe_globals
from ..i18n import translate
from ..models import BatchNormNet, Net
from ._core import _check, _equal_states, _expect, _weights_only_round_trip, _Wrong  # noqa: F401
from ._nb09_files import (TinyNet, _drift_cases, _lr_steps, _make_model, _make_optimizer, _make_scheduler,
                          _namespaces_in, _plain, _same, _script_arguments, _two_gpu_checkpoint, write_tiny_pickle,
                          write_two_gpu_checkpoint)

__all__ = ["ex09_1", "ex09_2", "ex09_3", "ex09_4", "ex09_5", "ex09_6", "ex09_7", "ex09_8", "ex09_9", "ex09_10",
           "TinyNet", "write_tiny_pickle", "write_two_gpu_checkpoint"]


@_check
def ex09_1(save_everything: Callable) -> str:
    """save_everything(model, path) -> writes what the model needs to be rebuilt: parameters and buffers."""
    import tempfile
    from pathlib import Path

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
def ex09_2(make_portable: Callable) -> str:
    """make_portable(path, out_path) -> a copy a plain torch.load reads anywhere; returns the bytes per saved device."""
    import pickle
    import tempfile
    from pathlib import Path

    checkpoint, device = _two_gpu_checkpoint()
    held: dict[str, int] = {}
    for tensor in [*checkpoint["model"].values(),
                   *(t for state in checkpoint["optimizer"]["state"].values() for t in state.values())]:
        where = device[tensor.untyped_storage().data_ptr()]
        held[where] = held.get(where, 0) + tensor.untyped_storage().nbytes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_two_gpu_checkpoint(folder / "two_gpus.pt")
        original = (folder / "two_gpus.pt").read_bytes()
        returned = make_portable(folder / "two_gpus.pt", folder / "portable.pt")
        _expect((folder / "two_gpus.pt").read_bytes() == original,
                "you changed two_gpus.pt: leave the original as it is and write the copy to out_path.")
        _expect((folder / "portable.pt").is_file(), "nothing was written at out_path: save the portable copy there.")
        locations: list[str] = []

        def record(storage, location):  # torch.load calls it with each storage and the device the file names
            locations.append(location)
            return storage

        try:
            got = torch.load(folder / "portable.pt", weights_only=True, map_location=record)
        except pickle.UnpicklingError as err:
            needs = ", ".join(unsafe_globals(folder / "portable.pt", err)) or "code"
            raise _Wrong(f"portable.pt does not load with weights_only=True (it needs {needs}): save the checkpoint "
                         "you loaded, not a model or another object.") from None
    places = sorted(set(locations))
    _expect(places == ["cpu"], f"portable.pt still says its tensors live on {places}: a plain torch.load on a "
                               "laptop fails. Case 2's hint says which argument of torch.load decides that.")
    _expect(_same(got, checkpoint), "the copy differs from the original: keep the model, the optimizer's state and "
                                    "the metadata, every value as it was.")
    _expect(returned is not None, "make_portable returned None: also return how many bytes of tensors the file put on "
                                  "each device it names, a dict such as {'cuda:0': ..., ...}.")
    _expect(isinstance(returned, dict), f"make_portable returned a {type(returned).__name__}: return a dict of "
                                        "device -> bytes.")
    returned = {str(k): v for k, v in returned.items()}
    if returned == held:
        report = ", ".join(f"{k} {v:,}" for k, v in sorted(held.items()))
        return (f"the copy names only the CPU, the original is untouched, and you report what each device held: "
                f"{report}.")
    if set(returned) <= {"cpu"}:
        raise _Wrong(f"you report {returned}, but the file names {len(held)} devices. A map_location string "
                     "relabels every storage before you see where it was; the paragraph above the exercise says "
                     "what else map_location can be.")
    if set(returned) != set(held):
        raise _Wrong(f"you report the devices {sorted(returned)}; the file names others. Read each storage's "
                     "device as torch.load reads it; Adam's state holds more than the parameters' moments.")
    counts = {}
    for where in device.values():
        counts[where] = counts.get(where, 0) + 1
    if returned == counts:
        raise _Wrong("you counted tensors: count their bytes (storage.nbytes()).")
    if all(returned[k] * 4 == v for k, v in held.items() if k != "cpu"):
        raise _Wrong("you counted elements: a float32 element takes 4 bytes. Count bytes.")
    raise _Wrong(f"you report {returned}: not the bytes the file put on each device. Count every storage once, "
                 "under the device the file names for it.")


@_check
def ex09_3(predict: Callable) -> str:
    """predict(model, raw_images, metadata) -> classes, as at training time: eval mode, the stored normalisation."""
    from ..data import MEAN, STD, mnist_tensors

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
    """load_any_prefix(model, state_dict) -> the model given, loaded, whichever of the two is wrapped, and how."""
    def inner(model: torch.nn.Module) -> torch.nn.Module:
        while isinstance(model, torch.nn.DataParallel) or hasattr(model, "_orig_mod"):
            model = model.module if isinstance(model, torch.nn.DataParallel) else model._orig_mod
        return model

    wrappers = {"a plain Net": lambda net: net, "DataParallel(Net())": torch.nn.DataParallel,
                "torch.compile(Net())": torch.compile,
                "DataParallel(torch.compile(Net()))": lambda net: torch.nn.DataParallel(torch.compile(net))}
    torch.manual_seed(0)
    state = Net().state_dict()
    for name, wrap in wrappers.items():
        for prefix in ("", "module.", "_orig_mod.", "module._orig_mod."):
            model = wrap(Net())
            try:
                got = load_any_prefix(model, {prefix + k: v for k, v in state.items()})
            except RuntimeError as err:
                raise _Wrong(f"loading keys that start {prefix!r} into {name} failed ({str(err).splitlines()[0]} "
                             "...). A wrapper's own keys carry its prefix: load into the model inside it (.module, "
                             "._orig_mod).") from None
            _expect(got is not None, "load_any_prefix returned None: return the model you were given.")
            _expect(got is model, f"for {name} you returned another object: return the model you were given, "
                                  "wrapper and all, which the rest of the program uses.")
            _expect(_equal_states(inner(model).state_dict(), state),
                    f"keys starting {prefix!r} loaded into {name}: the weights differ.")
    return "keys from a plain, DataParallel, compiled or doubly wrapped model load into any of the four."


@_check
def ex09_5(load_backbone: Callable) -> str:
    """load_backbone(model, state_dict) -> the keys skipped because their shapes differ (the new head)."""
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


@_check
def ex09_6(make_plain: Callable) -> str:
    """make_plain(path, out_path) -> a copy whose script arguments are plain dicts: weights_only needs no allow-list."""
    import argparse
    import pickle
    import re
    import tempfile
    from pathlib import Path

    torch.manual_seed(0)
    state = Net().state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        good, evil, out = Path(tmp) / "run.pt", Path(tmp) / "stranger.pt", Path(tmp) / "plain.pt"
        torch.save({"model": state, "args": _script_arguments(), "epoch": 3}, good)
        torch.save({"model": state, "args": _script_arguments(runs_code=True), "epoch": 3}, evil)
        try:
            make_plain(good, out)
        except pickle.UnpicklingError as err:
            refused = re.search(r"GLOBAL (\S+) was not", str(err))
            name = refused.group(1) if refused else translate("a global")
            raise _Wrong(f"weights_only refused {name} in run.pt, a file you trust. Its error message says how to "
                         "allow exactly that, for one load.") from None
        _expect(out.is_file(), "nothing was written at out_path: write the plain copy there.")
        needs = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(out))
        if needs:
            with torch.serialization.safe_globals([argparse.Namespace]):
                try:
                    still = _namespaces_in(torch.load(out, weights_only=True))
                except pickle.UnpicklingError:
                    still = []
            hint = (f"plain.pt still needs {', '.join(needs)} ({', '.join(still)} is one): whoever loads it must "
                    "allow that again. Keep the arguments as types weights_only loads by itself, at every depth."
                    if still else
                    f"plain.pt still needs {', '.join(needs)}: whoever loads it must allow that again. Keep the "
                    "arguments as types weights_only loads by itself, at every depth.")
            raise _Wrong(hint)
        got = torch.load(out, weights_only=True)
        _expect(isinstance(got, dict) and _equal_states(got.get("model", {}), state) and got.get("epoch") == 3,
                "plain.pt lost or changed the model or the epoch: keep everything but the arguments' type.")
        args = got.get("args")
        _expect(args is not None, "plain.pt has no arguments: keep them, as plain Python values.")
        _expect(isinstance(args, dict), f"the arguments became a {type(args).__name__}: keep each value reachable "
                                        "by its name, args['epochs'], as it was.")
        _expect(args == _plain(_script_arguments()), "the arguments in plain.pt differ from the original's: keep "
                                                     "every name and value, the nested ones too.")
        try:
            make_plain(evil, Path(tmp) / "stranger-plain.pt")
        except Exception:
            pass
        else:
            raise _Wrong("your function also loaded a file whose arguments call os.path.exists() while it loads: any "
                         "code could have run. Keep weights_only=True and allow the one class these files need.")
    return "the arguments are plain dicts now: plain.pt loads with weights_only=True and nothing allowed."


@_check
def ex09_7(file_problem: Callable) -> str:
    """file_problem(path) -> "ok", "missing", "empty", "truncated" or "not a checkpoint"."""
    import io
    import tempfile
    from pathlib import Path

    buffer = io.BytesIO()
    torch.save(Net().state_dict(), buffer)
    data = buffer.getvalue()
    cases = {"ok.pt": (data, "ok"), "empty.pt": (b"", "empty"),
             "truncated.pt": (data[: len(data) * 6 // 10], "truncated"),
             "notes.pt": (b"loss went down, then up\n", "not a checkpoint"), "missing.pt": (None, "missing")}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (content, _) in cases.items():
            if content is not None:
                (Path(tmp) / name).write_bytes(content)
        for name, (_, expected) in cases.items():
            got = file_problem(Path(tmp) / name)
            _expect(got is not None, "file_problem returned None: return one of the five words.")
            size = "no file" if cases[name][0] is None else f"{len(cases[name][0]):,} bytes"
            _expect(got == expected, f"{name} ({size}) is {expected!r}; you said {got!r}.")
    return "ok, missing, empty, truncated and not-a-checkpoint all told apart."


@_check
def ex09_8(resume_all: Callable) -> str:
    """resume_all(checkpoint, make_model, make_optimizer, make_scheduler) -> (model, optimizer, scheduler), resumed."""
    import copy

    model = _make_model()
    optimizer = _make_optimizer(model)
    scheduler = _make_scheduler(optimizer)
    _lr_steps(model, optimizer, scheduler, 12, 0)
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict()})
    next_lr = optimizer.param_groups[0]["lr"]
    expected = _lr_steps(model, optimizer, scheduler, 6, 12)
    got = resume_all(checkpoint, _make_model, _make_optimizer, _make_scheduler)
    _expect(got is not None, "resume_all returned None: return (model, optimizer, scheduler).")
    _expect(isinstance(got, tuple) and len(got) == 3 and isinstance(got[1], torch.optim.Optimizer),
            "return the three objects as a tuple: (model, optimizer, scheduler).")
    resumed_model, resumed_optimizer, resumed_scheduler = got
    lr = resumed_optimizer.param_groups[0]["lr"]
    _expect(lr == next_lr, f"the first step after resuming would use lr {lr:.4f} instead of {next_lr:.4f}. The lr "
                           "lives in the optimizer's state, and creating a scheduler sets it to the start of the "
                           "schedule: create all three objects first, then load the three states.")
    rates = _lr_steps(resumed_model, resumed_optimizer, resumed_scheduler, 6, 12)
    _expect(rates == expected, f"after resuming the learning rate went {rates[0]:.4f}, {rates[1]:.4f}, ... instead of "
            f"{expected[0]:.4f}, {expected[1]:.4f}, ...: load the scheduler's state_dict too.")
    _expect(all(torch.equal(a, b) for a, b in zip(resumed_model.parameters(), model.parameters())),
            "the weights drift from the uninterrupted run: load the optimizer's state (its momentum) as well, into "
            "the optimizer of the model you return.")
    return "built in the right order and restored: the resumed run is the uninterrupted one, step for step."


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


@_check
def ex09_10(judge_drift: Callable) -> str:
    """judge_drift(model, state_dict) -> (harmless, needs_action): the keys a strict load names, judged."""
    for what, model, state, harmless, action in _drift_cases():
        got = judge_drift(model, state)
        _expect(got is not None, "judge_drift returned None: return two lists, (harmless, needs_action).")
        _expect(isinstance(got, (tuple, list)) and len(got) == 2, "return two lists, (harmless, needs_action).")
        said_harmless, said_action = sorted(got[0]), sorted(got[1])
        named = sorted(said_harmless + said_action)
        _expect(named == sorted(harmless + action), f"with {what}, a strict load names {sorted(harmless + action)}; "
                f"you judged {named}. Judge every missing and every unexpected key, once.")
        buffers = dict(model.named_buffers())
        wrong = [key for key in said_harmless if key in action]
        for key in wrong:
            _expect(key in buffers or key not in state, f"{key} is in the file but not in the model at all: its "
                    "weights would be thrown away (a layer renamed?). Only a buffer the model still has can be left "
                    "out safely.")
        for key in wrong:
            _expect(key not in state, f"{key} is a buffer of the model, but the file's {key} differs from the "
                    "model's: loading would silently keep the model's own. Compare the values, not only the names.")
        for key in wrong:
            _expect(key not in buffers, f"{key} is missing from the file: the model keeps the value its __init__ "
                    "gave it, which for running statistics is not what training made (case 1). The file has "
                    "nothing to compare with: that needs action.")
            raise _Wrong(f"{key} is a parameter the file does not have: it would stay as initialised.")
        for key in said_action:
            _expect(key not in harmless, f"{key} needs no action: the model still has it as a buffer, with the very "
                    "value the file holds. A buffer registered with persistent=False is not in state_dict(); "
                    "named_buffers() lists it.")
    return "harmless buffers told apart from the keys that need action, in both files."
