"""labutils.formats and `python -m labutils inspect`: files other projects made are named, never called damaged.

Each file is made here, by the library that makes it (torch.jit.save, torch.export.save, onnx.helper,
save_pretrained's layout, torch.distributed.checkpoint.save), once per module: torch.export costs seconds.
"""
from __future__ import annotations

import ast
import json
import pickle
import runpy
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from labutils import formats
from labutils.checkpoint import (
    CheckpointCorruptError, CheckpointNotFoundError, NotACheckpointError, inspect_checkpoint, load_checkpoint,
    save_checkpoint, sha256_file, sidecar_path,
)
from labutils.describe import main

DAMAGE_WORDS = ("damaged", "incomplete", "truncated", "restore it")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x).relu()


def _onnx_model(path: Path) -> None:
    """A valid ModelProto written by the onnx package (pinned for notebook 07): torch.onnx.export runs offline too,
    but takes seconds; its output is recognised the same way (ir_version, producer, graph)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 3), dtype=np.float32), "fc.weight")
    graph = helper.make_graph([helper.make_node("Transpose", ["fc.weight"], ["fc.weight.T"]),
                               helper.make_node("MatMul", ["x", "fc.weight.T"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])
    model = helper.make_model(graph, producer_name="pytorch", producer_version="2.14.1",
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One file (or folder) of each format, keyed by labutils.formats' key."""
    folder = tmp_path_factory.mktemp("formats")
    torch.manual_seed(0)
    model = Tiny()
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit and DCP's deprecation and no-process-group warnings
        files["torchscript"] = folder / "scripted.pt"
        torch.jit.save(torch.jit.script(model), files["torchscript"])
        files["pt2"] = folder / "exported.pt2"
        torch.export.save(torch.export.export(model, (torch.randn(1, 3),)), files["pt2"])
        import torch.distributed.checkpoint as dcp

        files["dcp"] = folder / "dcp"
        dcp.save({"fc.weight": model.fc.weight.detach()}, checkpoint_id=files["dcp"])
    files["onnx"] = folder / "model.onnx"
    _onnx_model(files["onnx"])
    files["lightning"] = folder / "trained.ckpt"
    torch.save({"epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.5.0",
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "callbacks": {},
                "optimizer_states": [], "lr_schedulers": []}, files["lightning"])
    hf = files["hf-folder"] = folder / "hf-model"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["TinyModel"], "model_type": "tiny"}))
    weights = {k: v.detach() for k, v in model.state_dict().items()}
    safetensors.torch.save_file({"fc.weight": weights["fc.weight"]}, hf / "model-00001-of-00002.safetensors")
    safetensors.torch.save_file({"fc.bias": weights["fc.bias"]}, hf / "model-00002-of-00002.safetensors")
    files["hf-index"] = hf / "model.safetensors.index.json"
    files["hf-index"].write_text(json.dumps({"metadata": {"total_size": 32}, "weight_map": {
        "fc.weight": "model-00001-of-00002.safetensors", "fc.bias": "model-00002-of-00002.safetensors"}}))
    files["pickle"] = folder / "whole_model.pkl"
    files["pickle"].write_bytes(pickle.dumps({"note": "pickled without torch.save", "sizes": [3, 2]}))
    files["numpy"] = folder / "arrays.npz"
    np.savez(files["numpy"], weight=np.ones((2, 3), dtype=np.float32))
    files["gguf"] = folder / "model.gguf"  # the header llama.cpp writes: magic, version 3, 0 tensors, 0 keys
    files["gguf"].write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    files["lfs-pointer"] = folder / "lfs.pt"  # what a clone without git lfs leaves (notebook 09, case 14)
    files["lfs-pointer"].write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{'0' * 64}\nsize 246824\n")
    files["web-page"] = folder / "page.safetensors"  # a download that saved the page, not the file
    files["web-page"].write_text("<!DOCTYPE html>\n<html><head><title>model.safetensors</title></head></html>\n")
    return files


# What each refusal must name: the format, and the call that opens it
NAMES = {
    "torchscript": ("TorchScript archive", "torch.jit.load(path"),
    "pt2": ("torch.export program", "torch.export.load(path)"),
    "onnx": ("ONNX model", "onnxruntime.InferenceSession(path"),
    "hf-index": ("Hugging Face shard index", "from_pretrained(folder)"),
    "pickle": ("plain Python pickle", "pickle.load(f)"),
    "numpy": ("NumPy file", "numpy.load(path)"),
    "gguf": ("GGUF model file", "gguf.GGUFReader(path)"),
    "lfs-pointer": ("Git LFS pointer", "git lfs pull"),
    "web-page": ("web page", "download the file itself"),
}
FOLDERS = {
    "hf-folder": ("Hugging Face model folder", "AutoModel.from_pretrained(folder)"),
    "dcp": ("torch.distributed.checkpoint (DCP) folder", "torch.distributed.checkpoint.load("),
}


def _with_sidecar(path: Path, tmp_path: Path) -> Path:
    """A copy of `path` with a sha256 sidecar: load_checkpoint then reads it, as it would a lab checkpoint."""
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    sidecar_path(copy).write_text(f"{sha256_file(copy)}  {copy.name}\n")
    return copy


def _refused(call) -> NotACheckpointError:
    """Run `call`, which must raise NotACheckpointError with no warning at all; return the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(NotACheckpointError) as raised:
            call()
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]
    return raised.value


@pytest.mark.parametrize("key", NAMES)
def test_a_file_of_another_format_is_named_with_the_call_that_opens_it(made, tmp_path, key):
    fmt_name, opens = NAMES[key]
    checked = _with_sidecar(made[key], tmp_path)  # torch.load (or the sniff) meets it, as with a lab checkpoint
    for call in (lambda: load_checkpoint(made[key]),  # no sidecar: named before the sidecar is asked for
                 lambda: load_checkpoint(made[key], verify=False),
                 lambda: load_checkpoint(checked),
                 lambda: load_checkpoint(checked, mmap=True),
                 lambda: inspect_checkpoint(made[key])):
        err = _refused(call)
        assert fmt_name in err.problem and opens in err.fix, err
        assert isinstance(err, CheckpointCorruptError), "except clauses written before it still catch it"
        assert not any(word in str(err) for word in DAMAGE_WORDS), err
    assert formats.identify(made[key]).key == key


def test_the_lab_silences_torchs_torchscript_warning_only_around_its_own_load(made):
    with pytest.warns(UserWarning, match="looks like a TorchScript archive"), pytest.raises(RuntimeError):
        torch.load(made["torchscript"], weights_only=True)  # torch alone warns, then refuses
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError):
        warnings.simplefilter("always")
        with formats.quiet_format_warnings():
            warnings.warn("any other warning", UserWarning)  # still shown: only torch's TorchScript one is silenced
            torch.load(made["torchscript"], weights_only=True)
    assert [str(w.message) for w in caught] == ["any other warning"]
    with pytest.warns(UserWarning, match="looks like a TorchScript archive"), pytest.raises(RuntimeError):
        torch.load(made["torchscript"], weights_only=True)  # the filter was scoped: it is gone again


@pytest.mark.parametrize("key", FOLDERS)
def test_a_model_folder_says_what_it_is(made, key):
    fmt_name, opens = FOLDERS[key]
    for call in (load_checkpoint, inspect_checkpoint):
        with pytest.raises(CheckpointNotFoundError) as raised:  # a folder stays a CheckpointNotFoundError
            call(made[key])
        assert fmt_name in raised.value.problem and opens in raised.value.fix, raised.value
        assert "is a directory" not in str(raised.value)


def test_a_plain_folder_is_still_just_a_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # config.json alone, no weights: not a model folder
    with pytest.raises(CheckpointNotFoundError, match="is a directory, not a checkpoint file"):
        load_checkpoint(tmp_path)


def test_a_lightning_checkpoint_loads_and_is_told_from_a_plain_one(made, tmp_path):
    state = load_checkpoint(made["lightning"], verify=False)  # a torch.save dict: load_checkpoint reads it
    assert torch.equal(state["state_dict"]["model.fc.bias"],
                       torch.load(made["lightning"], weights_only=True)["state_dict"]["model.fc.bias"])
    assert formats.identify(made["lightning"], deep=True).key == "lightning"
    assert formats.identify(made["lightning"]).key == "torch.save", "the pickle is read only when asked"
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": state["state_dict"], "epoch": 3, "callbacks": {}}, plain)
    assert formats.identify(plain, deep=True).key == "torch.save"


@pytest.mark.parametrize("how", ["truncated", "half"])
@pytest.mark.parametrize("key", ["torch.save", "torchscript", "onnx"])
def test_a_damaged_file_is_still_called_damaged(made, tmp_path, key, how):
    if key == "torch.save":
        source = save_checkpoint({"w": torch.ones(64, 64)}, tmp_path / "lab.pt")
    else:
        source = made[key]
    data = source.read_bytes()
    path = tmp_path / f"{how}-{source.name}"
    path.write_bytes(data[:-40] if how == "truncated" else data[:len(data) // 2])
    assert formats.identify(path) is None
    with pytest.raises(CheckpointCorruptError) as raised:
        load_checkpoint(path, verify=False)
    assert not isinstance(raised.value, NotACheckpointError), raised.value
    if key != "onnx":  # a cut zip: torch cannot read it; a cut ONNX file is bytes of no known format
        assert "damaged" in str(raised.value)


def test_a_lab_checkpoint_still_loads_and_inspects(tmp_path):
    path = save_checkpoint({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "net.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(load_checkpoint(path)["w"], torch.arange(6.0).reshape(2, 3))
        assert inspect_checkpoint(path).format == "torch.save zip archive"
    assert formats.identify(path).checkpoint


@pytest.mark.parametrize("data", [b"", b"\x08", b"\x08\x07", b"\x08\x09\x12\x07pytorch",  # ir_version, no graph
                                  b"\x12\x03abc:\x00", b"epoch,loss\n1,0.25\n", bytes(range(7, 256)) * 4,
                                  b"PK\x03\x04" + b"\x00" * 40, b'{"weights": {}}', b"version 3\n",
                                  b"<tensor>1</tensor>"])
def test_bytes_of_no_known_format_are_not_named(tmp_path, data):
    path = tmp_path / "unknown.bin"
    path.write_bytes(data)
    assert formats.identify(path) is None
    with pytest.raises(CheckpointCorruptError) as raised:
        load_checkpoint(path, verify=False)
    assert not isinstance(raised.value, NotACheckpointError), raised.value


class _Canary:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")  # unpickling this creates a file


def test_nothing_in_a_file_runs_while_it_is_named_or_described(tmp_path, capsys):
    canary = tmp_path / "canary"
    path = tmp_path / "exploit.pkl"
    path.write_bytes(pickle.dumps({"x": _Canary(str(canary))}))
    assert "io.open" in formats.pickle_globals(path.read_bytes())
    with pytest.raises(NotACheckpointError, match="plain Python pickle"):
        load_checkpoint(path, verify=False)
    assert main([str(path)]) == 0
    assert "io.open" in capsys.readouterr().out
    assert not canary.exists()


def test_an_error_names_the_file_and_pickles_whole(made):
    err = _refused(lambda: load_checkpoint(made["onnx"], verify=False))
    assert str(err).startswith(str(made["onnx"])) and "ir_version" in err.problem and "opset 18" in err.problem
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is NotACheckpointError and str(back) == str(err)


# --- python -m labutils inspect ----------------------------------------------------------------------------

# Besides the four lines, what each description must show it read: tensor names, shapes, globals, members
HOLDS = {
    "torchscript": ["data/0", "__torch__.torch.nn.modules.linear.Linear"],
    "pt2": ["fc.weight", "float32", "(2, 3)"],
    "onnx": ["fc.weight", "float32", "(2, 3)"],
    "lightning": ["state_dict.model.fc.weight", "(2, 3)", "pytorch-lightning_version"],
    "hf-folder": ["TinyModel", "fc.weight", "fc.bias", "model-00002-of-00002.safetensors"],
    "hf-index": ["model-00001-of-00002.safetensors"],
    "dcp": ["__0_0.distcp", "torch.distributed.checkpoint.metadata.Metadata"],
    "pickle": ["unpickling it would import"],
    "numpy": ["weight.npy", "float32", "(2, 3)"],
    "gguf": ["0 tensors"],
}


@pytest.mark.parametrize("key", HOLDS)
def test_inspect_prints_what_it_is_holds_whether_it_runs_code_and_the_safe_line(made, capsys, key):
    assert main([str(made[key])]) == 0
    out = capsys.readouterr().out
    fmt = formats.FORMATS[key]
    for line in (f"what it is: {fmt.name.rstrip(')')}", "what it holds:", f"runs code when loaded? {fmt.runs_code}",
                 f"load it safely: {fmt.safe}"):
        assert line in out, out
    for shown in HOLDS[key]:
        assert shown in out, out
    assert "..." not in out, "nothing cut off"


def test_inspect_on_a_safetensors_file_shows_inspect_checkpoints_table(tmp_path, capsys):
    path = save_checkpoint({"fc.weight": torch.ones(2, 3)}, tmp_path / "w.safetensors")
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "what it is: a safetensors file" in out and "checksum: ok" in out
    assert "fc.weight  tensor  float32  (2, 3)" in out and "runs code when loaded? no" in out


def test_inspect_names_the_globals_an_unsafe_torch_save_file_needs(tmp_path, capsys):
    path = tmp_path / "exec.pt"
    torch.save({"run": exec}, path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "NOT SAFE to load: it needs builtins.exec" in out
    assert "opens with: torch.load(path, weights_only=True)" in out
    assert "load it safely: do not load it: builtins.exec can run any code" in out, out


def test_inspect_of_a_whole_model_gives_the_allow_list_that_loads_it(tmp_path, capsys):
    """weights_only=True refuses a pickled nn.Module: the safe line is the allow-list, not the refused call."""
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "load it safely: if, and only if, you trust the file" in out and "safe_globals([Sequential, Linear])" in out


def test_inspect_of_a_missing_path_fails_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["python -m labutils", "inspect", str(tmp_path / "nope.pt")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("labutils", run_name="__main__")  # as `python -m labutils inspect PATH` runs it
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "nope.pt: no such file" in out, out


def test_inspect_of_a_damaged_file_fails_and_says_damaged(tmp_path, capsys):
    path = save_checkpoint({"w": torch.ones(64, 64)}, tmp_path / "net.pt")
    path.write_bytes(path.read_bytes()[:1000])
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "damaged" in out, out


def test_formats_reads_no_checkpoint_module():
    """labutils.checkpoint imports labutils.formats; the other way round would be a cycle."""
    imported = set()  # every module a statement could import: `from . import checkpoint` names it as an alias
    for node in ast.walk(ast.parse(Path(formats.__file__).read_text())):
        if isinstance(node, ast.ImportFrom):
            imported |= {node.module or "."} | {f"{node.module or ''}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not [name for name in imported if "checkpoint" in name.split(".")], imported


def test_a_zip_of_another_kind_is_not_called_damaged(tmp_path):
    path = tmp_path / "photos.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday/beach.jpg", b"\xff\xd8\xff")
    err = _refused(lambda: load_checkpoint(path, verify=False))
    assert "not one torch.save wrote" in err.problem and "holiday/beach.jpg" in err.problem
