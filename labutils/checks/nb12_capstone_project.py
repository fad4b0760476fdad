"""Checks for the steps of notebook 12 (the capstone): solutions in notebooks/solutions/ex12_*.py.

Each check tests one step on its own, with small data and, where a step needs the others, the lab's own version
of them (_runs.py, written to the contract the notebook states), so that a mistake in step 1 does not show up as
a failure of step 4.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import torch

from ..models import BatchNormNet
from ._core import _check, _equal_states, _expect, _expect_atomic, _watching_renames_and_fsyncs, _Wrong  # noqa: F401
from ._runs import _batches, _data, _reference_run, _reference_save, _reference_train, _same_optimizer_state


__all__ = ["ex12_1", "ex12_2", "ex12_3", "ex12_4", "ex12_5"]

CHECKPOINT_KEYS = {"model", "optimizer", "scheduler", "step", "best_acc", "rng"}
RUN_KEYS = {"model", "optimizer", "scheduler", "step", "best_acc"}


def _is_run(run: object, what: str) -> dict:
    _expect(isinstance(run, dict), f"{what} returned {type(run).__name__}: return the run, a dict.")
    missing = RUN_KEYS - run.keys()
    _expect(not missing, f"the run {what} returned has no {sorted(missing)}: a run is a dict with the keys "
                         f"{sorted(RUN_KEYS)}.")
    return run


@_check
def ex12_1(functions: tuple[Callable, Callable]) -> str:
    """(make_run(seed, total_steps, lr) -> run, train(run, batch, until_step, on_step=None))."""
    make_run, train = functions
    run = _is_run(make_run(3, 40, 0.05), "make_run")
    model, optimizer, scheduler = run["model"], run["optimizer"], run["scheduler"]
    _expect(isinstance(model, BatchNormNet), f"run['model'] is a {type(model).__name__}: build a "
                                             "labutils.BatchNormNet().")
    _expect(run["step"] == 0 and run["best_acc"] == 0.0, "a new run starts at step 0 with best_acc 0.0.")
    _expect(isinstance(optimizer, torch.optim.SGD) and optimizer.defaults.get("momentum") == 0.9,
            "run['optimizer'] must be torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9).")
    given = {id(p) for group in optimizer.param_groups for p in group["params"]}
    _expect(given == {id(p) for p in model.parameters()}, "the optimizer must get every parameter of this very "
                                                          "model: SGD(model.parameters(), ...).")
    _expect(isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) and scheduler.total_steps == 40
            and scheduler.optimizer is optimizer,
            "run['scheduler'] must be OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps): one schedule "
            "step per training step.")
    again = make_run(3, 40, 0.05)["model"].state_dict()
    _expect(_equal_states(model.state_dict(), again), "two runs made with the same seed start from different "
                                                      "weights: call torch.manual_seed(seed) before building the "
                                                      "model.")
    _expect(not _equal_states(model.state_dict(), make_run(4, 40, 0.05)["model"].state_dict()),
            "make_run(4, ...) gives the same weights as make_run(3, ...): seed torch with `seed`.")

    batch = _batches(*_data())
    asked, seen = [], []

    def recording(step: int):
        asked.append(step)
        return batch(step)

    def on_step(r: dict) -> None:  # as the notebook's checkpointing does: evaluate, which leaves eval mode on
        seen.append(r["step"])
        r["model"].eval()

    model.eval()  # as after an evaluation
    torch.manual_seed(7)
    _expect(train(run, recording, 4, on_step) is None, "train returns nothing: it changes the run in place.")
    _expect(run["step"] == 4, f"after train(run, batch, 4) run['step'] is {run['step']}, expected 4.")
    _expect(asked == [0, 1, 2, 3], f"train asked batch() for the steps {asked}: ask for batch(run['step']) once "
                                   "per step, from 0 to 3 here.")
    _expect(seen == [1, 2, 3, 4], f"on_step saw run['step'] = {seen}: call on_step(run) after each step, once "
                                  "run['step'] counts it.")
    torch.manual_seed(8)
    asked.clear()
    train(run, recording, 10, on_step)
    _expect(asked[:1] == [4], f"the second call, train(run, batch, 10) with run['step'] = 4, began at step "
                              f"{asked[0] if asked else None}: go on from run['step'], not from 0.")
    _expect(asked == list(range(4, 10)) and run["step"] == 10,
            f"train(run, batch, 10) from step 4 asked for the steps {asked}: expected 4 to 9.")
    tracked = int(model.bn1.num_batches_tracked)
    _expect(tracked == 10, f"BatchNorm learned from {tracked} of the 10 batches: on_step left the model in eval "
                           "mode; call model.train() at the start of every step.")
    _expect(scheduler.last_epoch == 10, f"the schedule made {scheduler.last_epoch} steps in 10 training steps: "
                                        "call scheduler.step() once per step, after optimizer.step().")

    reference = _reference_run(3, 40)
    torch.manual_seed(7)
    _reference_train(reference, batch, 4)
    torch.manual_seed(8)
    _reference_train(reference, batch, 10)
    _expect(_equal_states(model.state_dict(), reference["model"].state_dict()),
            "after 10 steps the weights differ from those of the lab's loop: each step is model.train(), "
            "images, labels = batch(step), F.cross_entropy(model(images), labels), optimizer.zero_grad(), "
            "loss.backward(), optimizer.step(), scheduler.step().")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(run, recording, 10, on_step)
    _expect(run["step"] == 10 and _equal_states(model.state_dict(), before),
            "train(run, batch, until_step) with run['step'] already at until_step must do nothing.")
    return "a seeded run with SGD and a one-cycle schedule; train goes on from run['step'], in train mode."


@_check
def ex12_2(save: Callable[[dict, Path], None]) -> str:
    """save(run, path) -> None: atomic, with a sha256 sidecar, loadable with weights_only=True."""
    run = _reference_run(2, 10)
    _reference_train(run, _batches(*_data()), 2)
    run["best_acc"] = 0.5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "step-00000002.pt"
        sidecar = folder / "step-00000002.pt.sha256"
        torch.manual_seed(11)
        rng = torch.get_rng_state()
        with _watching_renames_and_fsyncs(folder) as events:
            save(run, path)
        _expect(path.exists(), "nothing was written at `path`.")
        _expect_atomic(events, path)
        try:
            saved = torch.load(path, weights_only=True)
        except Exception as err:  # whatever it is, the learner sees it
            raise _Wrong(f"torch.load(path, weights_only=True) fails: {type(err).__name__}: {err}") from None
        _expect(isinstance(saved, dict) and CHECKPOINT_KEYS <= saved.keys(),
                f"the checkpoint holds {sorted(saved) if isinstance(saved, dict) else type(saved).__name__}; it "
                f"needs {sorted(CHECKPOINT_KEYS)}.")
        _expect(_equal_states(saved["model"], run["model"].state_dict()),
                "saved['model'] is not the model's state_dict (its buffers included).")
        _expect(saved["optimizer"]["state"].keys() == run["optimizer"].state_dict()["state"].keys() and all(
            _equal_states(saved["optimizer"]["state"][i], state)
            for i, state in run["optimizer"].state_dict()["state"].items()),
            "saved['optimizer'] is not the optimizer's state_dict: SGD's momentum buffers are missing or differ.")
        _expect(saved["scheduler"] == run["scheduler"].state_dict(), "saved['scheduler'] is not the scheduler's "
                                                                     "state_dict.")
        _expect(saved["step"] == 2 and saved["best_acc"] == 0.5, "save run['step'] and run['best_acc'] as they are.")
        _expect(isinstance(saved["rng"], torch.Tensor) and torch.equal(saved["rng"], rng),
                "saved['rng'] must be torch.get_rng_state() at the time of the save: Dropout draws from it.")
        _expect(sidecar.is_file(), f"no {sidecar.name} beside the checkpoint: write the file's sha256 into "
                                   "path.with_name(path.name + '.sha256').")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        written = sidecar.read_text()
        _expect(re.fullmatch(r"[0-9a-f]{64}  \S.*\n?", written) is not None,
                f"{sidecar.name} holds {written[:90]!r}: write one line as sha256sum does, '<sha256>  <name>', "
                "the digest in lower-case hex, two spaces, the file's name.")
        _expect(written.split("  ")[0] == digest, f"{sidecar.name} gives another sha256 than the file's: hash the "
                                                  "bytes on disk, after the save.")
        _expect(written.rstrip("\n").split("  ", 1)[1] == path.name,
                f"{sidecar.name} names {written.rstrip().split('  ', 1)[1]!r}: name the file as it is in its "
                f"folder ({path.name}), so that `sha256sum -c` works wherever the folder is copied.")
        _expect(any(event[0] == "rename" and event[2] == sidecar for event in events),
                f"{sidecar.name} was written in place: a crash while writing it leaves it empty or half written, "
                "and the good checkpoint beside it then fails verification. Write it as you wrote the checkpoint: "
                "a temporary file, fsync, os.replace.")
        good, good_sidecar = path.read_bytes(), sidecar.read_bytes()

        def disk_full(obj, f, *args, **kwargs):
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")

        raised = False
        run["step"] = 3
        try:
            with mock.patch("torch.save", disk_full):
                save(run, path)
        except OSError:
            raised = True
        _expect(raised, "a save that fails (here: the disk is full) must raise: let the error through.")
        _expect(path.read_bytes() == good and sidecar.read_bytes() == good_sidecar,
                "the failed save changed the good checkpoint or its sidecar: write to a temporary file, and only "
                "replace `path` once the save succeeded.")
        left = sorted(p.name for p in folder.iterdir())
        _expect(left == [path.name, sidecar.name], f"the failed save left {left}: delete the temporary.")
    return ("atomic (temporary beside it, fsync, rename, fsync of the folder), a sha256sum sidecar, weights only; a "
            "failed save left the good file and its sidecar intact.")


def _fake_checkpoint(path: Path, step: int) -> None:
    torch.save({"step": step}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


@_check
def ex12_3(functions: tuple[Callable, Callable]) -> str:
    """(keep(folder, keep_last) -> None, newest_good(folder) -> the newest step-*.pt whose sidecar matches)."""
    keep, newest_good = functions
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        got = newest_good(folder)
        _expect(got is None, f"an empty folder has no checkpoint: return None, not {got!r}.")
        steps = (5, 10, 15, 20, 100)
        for age, step in enumerate(reversed(steps)):  # step 5 is the file changed last
            path = folder / f"step-{step:08d}.pt"
            _fake_checkpoint(path, step)
            os.utime(path, (1_000_000 + age, 1_000_000 + age))
        _fake_checkpoint(folder / "best-00000010.pt", 10)
        (folder / ".step-00000105.pt.tmp-4242").write_bytes(b"PK\x03\x04 a save in progress")
        (folder / "notes.txt").write_text("the learner's own file")

        def newest() -> str | None:
            got = newest_good(folder)
            return None if got is None else Path(got).name

        _expect(newest() is not None, "newest_good returned None, but every checkpoint in the folder is intact.")
        _expect(newest() != "step-00000005.pt", "you picked the newest by modification time; order by the step in "
                                                "the name (a copy or a restore changes the time).")
        _expect(newest() == "step-00000100.pt", f"expected step-00000100.pt, got {newest()}.")
        with open(folder / "step-00000100.pt", "r+b") as f:
            f.truncate(60)  # as a crash in the middle of writing it would leave it, sidecar and all
        _expect(newest() != "step-00000100.pt", "step-00000100.pt is truncated: compare each file's sha256 with its "
                                                "sidecar and skip those that differ.")
        _expect(newest() == "step-00000020.pt", f"expected step-00000020.pt once step 100 is damaged, got "
                                                f"{newest()}.")
        (folder / "step-00000020.pt.sha256").unlink()
        _expect(newest() == "step-00000015.pt", "a checkpoint without its sidecar cannot be verified: skip it (here "
                                                f"step-00000020.pt); expected step-00000015.pt, got {newest()}.")
        _fake_checkpoint(folder / "step-00000020.pt", 20)

        keep(folder, 2)
        left = sorted(p.name for p in folder.iterdir())
        expected = sorted([".step-00000105.pt.tmp-4242", "best-00000010.pt", "best-00000010.pt.sha256", "notes.txt",
                           "step-00000020.pt", "step-00000020.pt.sha256", "step-00000100.pt",
                           "step-00000100.pt.sha256"])
        _expect("best-00000010.pt" in left, "keep deleted best-00000010.pt: keep the best checkpoint whatever its "
                                            "age; touch only step-*.pt files.")
        _expect("notes.txt" in left and ".step-00000105.pt.tmp-4242" in left,
                "keep deleted files that are not step checkpoints: touch only step-*.pt and their sidecars.")
        _expect(left != sorted(expected[:4] + ["step-00000005.pt", "step-00000005.pt.sha256", "step-00000100.pt",
                                               "step-00000100.pt.sha256"]),
                "keep kept the two files changed last; keep the two highest steps.")
        extra = sorted(set(left) - set(expected))
        _expect(not [n for n in extra if n.endswith(".pt")], f"keep(folder, 2) left {extra}: keep only the "
                                                             "last 2 steps.")
        _expect(not extra, f"keep left the sidecars {extra} of the checkpoints it deleted: delete them too.")
        _expect(left == expected, f"after keep(folder, 2) the folder holds {left}, expected {expected}.")
        for path in folder.glob("step-*.pt"):
            path.write_bytes(b"")
        _expect(newest_good(folder) is None, "when no checkpoint verifies, return None: the run starts afresh.")
    return "the last k steps and the best kept; the newest checkpoint whose sha256 matches, by step, or None."


@contextlib.contextmanager
def _recording_loads() -> Iterator[list]:
    calls = []
    real_load = torch.load

    def load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    with mock.patch("torch.load", load):
        yield calls


@_check
def ex12_4(resume: Callable[[Path, dict], dict]) -> str:
    """resume(path, run) -> the run, with every piece of state loaded from the checkpoint at `path`."""
    batch = _batches(*_data(64, seed=4), size=16)
    straight = _reference_run(5, 12)
    _reference_train(straight, batch, 12)

    interrupted = _reference_run(5, 12)
    _reference_train(interrupted, batch, 7)
    interrupted["best_acc"] = 0.25
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step-00000007.pt"
        _reference_save(interrupted, path)
        saved = torch.load(path, weights_only=True)
        fresh = _reference_run(6, 12)  # other weights, as in a new process that has not loaded anything yet
        torch.manual_seed(1234)  # and another random state
        with _recording_loads() as loads:
            run = resume(path, fresh)
    run = _is_run(run, "resume")
    _expect(loads, "resume did not call torch.load: load the checkpoint at `path`.")
    _expect(False not in loads, "torch.load(..., weights_only=False) would run any code a tampered checkpoint "
                                "holds: this checkpoint is tensors and numbers, so load it with weights_only=True.")
    _expect(_equal_states(run["model"].state_dict(), saved["model"]), "the model's weights are not those of the "
                                                                      "checkpoint: model.load_state_dict(...).")
    _expect(_same_optimizer_state(run["optimizer"], interrupted["optimizer"]),
            "the optimizer's momentum buffers were not restored: optimizer.load_state_dict(checkpoint['optimizer']).")
    _expect(run["scheduler"].last_epoch == 7, f"the schedule stands at step {run['scheduler'].last_epoch}, not 7: "
                                              "scheduler.load_state_dict(checkpoint['scheduler']).")
    _expect(run["step"] == 7, f"run['step'] is {run['step']}: set it from the checkpoint, or training starts "
                              "the data over.")
    _expect(run["best_acc"] == 0.25, "run['best_acc'] was not restored: the next evaluation would save a "
                                     "worse model as the best.")
    _expect(torch.equal(torch.get_rng_state(), saved["rng"]),
            "torch's random state was not restored: Dropout would draw other masks from here on. Call "
            "torch.set_rng_state(checkpoint['rng']).")
    _reference_train(run, batch, 12)
    _expect(_equal_states(run["model"].state_dict(), straight["model"].state_dict())
            and _same_optimizer_state(run["optimizer"], straight["optimizer"]),
            "the resumed run ends with other weights than the run never interrupted.")
    return "weights only; model, optimizer, schedule, step, best_acc and random state: the same run, bit for bit."


@_check
def ex12_5(export: Callable[[torch.nn.Module, Path, float], None]) -> str:
    """export(model, folder, test_acc) -> None: model.onnx, model.safetensors, model.py, config.json, README.md,
    SHA256SUMS."""
    import copy
    import importlib.util
    import sys

    import onnx
    import onnxruntime
    import safetensors.torch

    from .. import sha256sums
    from ..data import MEAN, STD

    torch.manual_seed(10)
    model = BatchNormNet()
    with torch.no_grad():
        for _ in range(3):  # running averages of its own, far from the initial 0 and 1
            model(torch.randn(32, 1, 28, 28) * 2 + 1)
    model.train()  # as after training: export must switch to eval itself
    expected_state = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = copy.deepcopy(model).eval()(images)
    names = ["README.md", "SHA256SUMS", "config.json", "model.onnx", "model.py", "model.safetensors"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shared"
        export(model, folder, 0.9876)
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        missing = [n for n in names if n not in found]
        _expect(not missing, f"the folder has no {', '.join(missing)}." if found else
                f"export wrote nothing: {folder.name}/ should hold {', '.join(names)}.")

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        _expect([i.name for i in session.get_inputs()] == ["images"]
                and [o.name for o in session.get_outputs()] == ["logits"],
                "name the ONNX input 'images' and its output 'logits' (input_names=..., output_names=...).")
        try:
            one = session.run(None, {"images": images[:1].numpy()})[0]
            five = session.run(None, {"images": images.numpy()})[0]
        except Exception as err:  # onnxruntime raises its own types
            raise _Wrong(f"model.onnx refuses a batch of another size ({str(err)[:120]}): export with "
                         "dynamic_shapes={'x': {0: torch.export.Dim('batch')}}.") from None
        difference = max((torch.from_numpy(five) - expected).abs().max().item(),
                         (torch.from_numpy(one) - expected[:1]).abs().max().item())
        _expect(difference < 1e-4, f"onnxruntime's logits differ from the model's in eval mode by {difference:.2g}.")
        operators = {node.op_type for node in onnx.load(folder / "model.onnx").graph.node}
        _expect("Dropout" not in operators, "model.onnx has a Dropout node: it was exported in training mode (torch "
                                            "warned about it). Call model.eval() before exporting, so that the "
                                            "graph is the one of inference.")

        loaded = safetensors.torch.load_file(folder / "model.safetensors")
        _expect(_equal_states(loaded, expected_state), "model.safetensors is not the model's state_dict (buffers "
                                                       "included).")
        spec = importlib.util.spec_from_file_location("shared_model_py", folder / "model.py")
        code = importlib.util.module_from_spec(spec)
        with mock.patch.dict(sys.modules, {"labutils": None}):  # as on a machine without the lab
            try:
                spec.loader.exec_module(code)
            except Exception as err:
                raise _Wrong(f"model.py does not run on its own: {type(err).__name__}: {err}") from None
        _expect(hasattr(code, "BatchNormNet"), "model.py defines no BatchNormNet: copy the file that defines it "
                                               "(labutils.models.__file__).")
        rebuilt = code.BatchNormNet()
        rebuilt.load_state_dict(loaded)
        with torch.no_grad():
            _expect(torch.equal(rebuilt.eval()(images), expected), "model.py's BatchNormNet with the saved weights "
                                                                   "gives other logits.")

        try:
            config = json.loads((folder / "config.json").read_text())
        except json.JSONDecodeError as err:
            raise _Wrong(f"config.json is not JSON: {err}") from None
        _expect(isinstance(config, dict) and {"architecture", "mean", "std"} <= config.keys(),
                "config.json must say what the input needs: at least 'architecture', 'mean' and 'std'.")
        _expect(config["mean"] == MEAN and config["std"] == STD, f"config.json's mean and std must be the ones the "
                                                                 f"model was trained with: {MEAN} and {STD}.")
        card = (folder / "README.md").read_text()
        _expect("98.76%" in card, "the model card must give the test accuracy passed in, as f'{test_acc:.2%}' "
                                  "writes it (98.76% here).")
        _expect(len(re.findall(r"^## ", card, re.M)) >= 3, "the model card needs sections (lines starting "
                                                            "'## '): what the model does and its results, how to "
                                                            "use it, its limits.")
        try:
            listing = sha256sums.parse((folder / "SHA256SUMS").read_text())
        except sha256sums.FormatError as err:
            raise _Wrong(f"SHA256SUMS: {err}") from None
        listed = sorted(name for _, name in listing)
        _expect(listed == [n for n in names if n != "SHA256SUMS"],
                f"SHA256SUMS lists {listed}: list every other file of the folder, and only them.")
        wrong = [name for digest, name in listing if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest]
        _expect(not wrong, f"SHA256SUMS gives wrong digests for {wrong}: write it last, after every other file.")
    return "ONNX that onnxruntime runs at any batch size, safetensors with the class beside them, config, card, sums."
