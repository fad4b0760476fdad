"""What a model file is, told from its bytes and zip member names alone: nothing in it is run or unpickled.

identify(path) names the formats a learner meets beside torch.save checkpoints: TorchScript, torch.export's .pt2,
ONNX, a plain pickle, NumPy, GGUF, a Hugging Face model folder or its shard index, a DCP folder, and tells a
PyTorch Lightning .ckpt from a plain torch.save file. Each Format says what the file is, the call that opens it,
whether that call can run code from the file, and the line that loads it safely. labutils.checkpoint refuses the
ones that are not checkpoints with NotACheckpointError (refuse, error), whose fix is that call.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickletools
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import CheckpointNotFoundError, NotACheckpointError
from .i18n import N_

TORCH_LEGACY_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")  # torch.save's pre-1.6 magic number, pickled as a long
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Format:
    """One kind of model file: what it is, how it opens, and whether opening it can run code from it."""

    key: str
    name: str  # "a TorchScript archive (torch.jit.save)"
    what: str  # one sentence: what the file is
    opens: str  # the call that opens it
    runs_code: str  # "yes: ...", "no: ..." or "can: ...": whether that call can run code from the file
    safe: str  # the line that loads it safely (or what to do when there is none)
    caution: str = ""  # for the error's fix, after the call: when to use it
    checkpoint: bool = False  # load_checkpoint reads it (torch.save, safetensors)
    detail: str = ""  # what this file says of itself: "ir_version 10, made by pytorch 2.14.1"

    @property
    def title(self) -> str:
        """Return the name with this file's details: "an ONNX model (ir_version 10, made by pytorch 2.14.1)"."""
        if not self.detail:
            return self.name
        return f"{self.name[:-1]}; {self.detail})" if self.name.endswith(")") else f"{self.name} ({self.detail})"


_PICKLE = ("no with weights_only=True (the default since 2.6); yes with weights_only=False, which calls any "
           "function the file names")
_TRUSTED = N_("so only if you trust its source; otherwise ask for its state_dict as a .safetensors file")
FORMATS = {f.key: f for f in [
    Format("torch.save", "a torch.save zip archive", "tensors and plain values pickled by torch.save (PyTorch 1.6+)",
           "torch.load(path, weights_only=True)", _PICKLE, "torch.load(path, weights_only=True)", checkpoint=True),
    Format("legacy", "a torch.save legacy pickle", "tensors and plain values pickled by torch.save before PyTorch 1.6",
           "torch.load(path, weights_only=True)", _PICKLE, "torch.load(path, weights_only=True)", checkpoint=True),
    Format("safetensors", "a safetensors file", "tensors and a JSON header, nothing else",
           "safetensors.torch.load_file(path)", "no: it holds tensors and text only",
           "safetensors.torch.load_file(path)", checkpoint=True),
    Format("lightning", "a PyTorch Lightning checkpoint (.ckpt)",
           "a torch.save dict from Lightning's Trainer, with the weights under 'state_dict' beside the optimizer's, "
           "the loops' and the callbacks' states", "MyLightningModule.load_from_checkpoint(path)", _PICKLE,
           'torch.load(path, weights_only=True)["state_dict"] (its keys start with the LightningModule\'s attribute, '
           'e.g. "model.")', checkpoint=True),
    Format("torchscript", "a TorchScript archive (torch.jit.save)",
           "a compiled model, its TorchScript code and its weights in one zip, runnable without the Python class",
           'torch.jit.load(path, map_location="cpu")',
           "yes: the archive's own TorchScript code runs (its __setstate__ while loading, forward when you call the "
           "model); not any Python, but code you have not read",
           'if you trust its source, model = torch.jit.load(path, map_location="cpu"); no call loads it without '
           "running its code", f"which runs the archive's TorchScript code, {_TRUSTED}"),
    Format("pt2", "a torch.export program (.pt2, torch.export.save)",
           "an exported graph of aten operators (JSON) with its weights, runnable without the Python class",
           "torch.export.load(path).module()",
           "can: torch.export.load unpickles parts of the archive with weights_only=False (sample inputs, pickled "
           "weights and constants); the graph itself is data",
           "if you trust its source, program = torch.export.load(path); no call loads it without unpickling",
           f"which unpickles parts of the archive, {_TRUSTED}"),
    Format("aoti", "an AOTInductor package (.pt2)", "a model compiled ahead of time to a shared library, with weights",
           "torch._inductor.aoti_load_package(path)", "yes: loading it runs the compiled machine code inside",
           "only a package you built or fully trust: torch._inductor.aoti_load_package(path)",
           "which runs the machine code inside, so only a package you built or fully trust"),
    Format("onnx", "an ONNX model", "a graph of standard operators with its weights (a protobuf ModelProto), for "
           "onnxruntime and other runtimes", 'onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])',
           "no: a runtime runs the graph's operators, never Python code from the file",
           "onnx.load(path) reads it; onnxruntime.InferenceSession(path) runs it", "or read it with onnx.load(path)"),
    Format("pickle", "a plain Python pickle (pickle.dump)", "Python objects pickled without torch.save, often a "
           "whole model", "pickle.load(f)", "yes: pickle.load calls any function the file names, before you see "
           "anything", "none: never unpickle a file you did not make; ask for a state_dict or a .safetensors file",
           "only if you made it yourself, as it calls any function it names; otherwise ask for a state_dict or a "
           ".safetensors file"),
    Format("numpy", "a NumPy file (.npy / .npz)", "arrays saved by numpy.save or numpy.savez", "numpy.load(path)",
           "no with allow_pickle=False (numpy.load's default); yes with allow_pickle=True",
           "numpy.load(path) (allow_pickle=False), then torch.from_numpy(array)", "and keep allow_pickle=False"),
    Format("gguf", "a GGUF model file", "llama.cpp's format, a language model's tensors (often quantized) and "
           "key-value metadata", "gguf.GGUFReader(path), or llama.cpp", "no: tensors and metadata only",
           "gguf.GGUFReader(path) (pip install gguf) reads its tensors"),
    Format("zip", "a zip archive, but not one torch.save wrote", "a zip without torch.save's data.pkl",
           "zipfile.ZipFile(path)", "no: zipfile only lists and extracts",
           "zipfile.ZipFile(path).namelist() shows what it holds", "and check that you opened the right file"),
    Format("hf-folder", "a Hugging Face model folder (save_pretrained)",
           "a config.json with the weights in safetensors or pytorch_model.bin files, sharded with an index when large",
           "transformers.AutoModel.from_pretrained(folder) (or from_pretrained of the class that saved it)",
           "no with trust_remote_code=False (the default): safetensors runs nothing and transformers loads .bin files "
           "with weights_only=True; trust_remote_code=True runs the folder's .py files",
           'AutoModel.from_pretrained(folder, use_safetensors=True), or safetensors.torch.load_file(folder / '
           '"model.safetensors")', "keeping trust_remote_code=False"),
    Format("peft-folder", "a PEFT adapter folder", "LoRA (or other adapter) weights and adapter_config.json, "
           "to be put on a base model", "peft.PeftModel.from_pretrained(base_model, folder)",
           "no: the adapter is safetensors and JSON", "peft.PeftModel.from_pretrained(base_model, folder)"),
    Format("hf-index", "a Hugging Face shard index", "JSON naming the shard file that holds each tensor of a model "
           "too big for one file", "transformers.AutoModel.from_pretrained(folder) on the folder that holds it and "
           "its shards", "no for safetensors shards; .bin shards load with weights_only=True",
           "safetensors.torch.load_file(folder / shard) for each shard it names, or "
           "huggingface_hub.load_torch_model(model, folder)", "or load each shard it names on its own"),
    Format("lfs-pointer", "a Git LFS pointer",
           "a short text file that Git LFS keeps in git in place of a large file: a version line, the content's "
           "sha256 (oid) and its size", "the file it points to (git lfs pull in the clone fetches it)",
           "no: it is three lines of text", "git lfs install, then git lfs pull; compare the file's sha256 with "
           "the pointer's oid"),
    Format("web-page", "a web page (HTML)", "HTML saved where a model file should be: the download "
           "fetched the page that links to the file", "the file the page links to (download the file itself, "
           "e.g. with huggingface_hub.hf_hub_download)", "no: it is text", "download the file itself and load that"),
    Format("dcp", "a torch.distributed.checkpoint (DCP) folder", "each process's shards (.distcp files) and a "
           ".metadata file that says which piece of which tensor is where",
           "torch.distributed.checkpoint.load(state_dict, checkpoint_id=folder)",
           "can: its .metadata is a plain pickle, read with pickle.load",
           "only a folder you or your own job wrote: dcp.load(model.state_dict(), checkpoint_id=folder)",
           "which unpickles its .metadata, so only a folder you or your own job wrote"),
]}


def _format(key: str, detail: str = "") -> Format:
    return dataclasses.replace(FORMATS[key], detail=detail)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --- telling a file from its bytes ---------------------------------------------------------------------------

def identify(path: os.PathLike | str, *, deep: bool = False) -> Format | None:
    """Return what the file or folder at `path` is, or None when it is none of the formats above.

    deep=True also reads a torch.save file's pickle (without running it) to tell a Lightning checkpoint.
    """
    path = Path(path)
    try:
        if path.is_dir():
            return _identify_folder(path)
        with open(path, "rb") as f:
            return identify_file(f, path, deep=deep)
    except OSError:
        return None


def identify_file(f: BinaryIO, path: os.PathLike | str | None = None, *, deep: bool = False) -> Format | None:
    """Return what the open binary file is (the name in `path` helps for DCP's pieces); f's position is kept."""
    start = f.tell()
    try:
        return _identify_open(f, Path(path) if path is not None else None, deep)
    except (OSError, ValueError, EOFError, struct.error, zipfile.BadZipFile, KeyError, RuntimeError):
        return None  # unreadable as that format: damaged, which is for the caller to say
    finally:
        f.seek(start)


def _identify_open(f: BinaryIO, path: Path | None, deep: bool) -> Format | None:
    f.seek(0)
    head = f.read(32)
    size = f.seek(0, os.SEEK_END)
    if path is not None and (path.name == ".metadata" or path.suffix == ".distcp") and _is_dcp(path.parent):
        return _format("dcp", f"{path.name} is one of its files: give the folder")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _identify_zip(f, deep)
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] + 8 <= size:
        return _format("safetensors")
    if head.startswith(b"\x80"):
        return _format("legacy") if TORCH_LEGACY_MAGIC in head else _format("pickle")
    if head.startswith(b"\x93NUMPY"):
        return _format("numpy")
    if head.startswith(b"GGUF") and len(head) >= 8:
        return _format("gguf", f"version {struct.unpack('<I', head[4:8])[0]}")
    if head.startswith(b"version https://git-lfs"):
        return _format("lfs-pointer")
    if head.lstrip()[:1] == b"<" and head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return _format("web-page")
    if head.lstrip()[:1] == b"{" and size < 64 * 2**20:
        f.seek(0)
        index = json.loads(f.read())
        if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
            tensors, shards = len(index["weight_map"]), len(set(index["weight_map"].values()))
            return _format("hf-index", f"{_count(tensors, 'tensor')} in {_count(shards, 'shard')}")
        return None
    onnx = onnx_summary(f, size)
    if onnx is not None:
        return _format("onnx", onnx)
    return None


def _identify_zip(f: BinaryIO, deep: bool) -> Format:
    f.seek(0)
    with zipfile.ZipFile(f) as archive:
        names = archive.namelist()
        inner = {name.partition("/")[2] for name in names}  # torch writes every member under one folder
        if "constants.pkl" in inner:  # torch.serialization._is_torchscript_zip's own test
            return _format("torchscript")
        if "archive_format" in inner or "serialized_exported_program.json" in inner:
            if any("/data/aotinductor/" in name for name in names):
                return _format("aoti")
            return _format("pt2")
        if "data.pkl" in inner:
            pickled = next(name for name in names if name.partition("/")[2] == "data.pkl")
            if deep and _is_lightning(archive.read(pickled)):
                return _format("lightning")
            return _format("torch.save")
        if names and all(name.endswith(".npy") for name in names):
            return _format("numpy", _count(len(names), "array"))
        listed = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        return _format("zip", f"it holds {listed}" if names else "an empty one")


def _is_lightning(pickled: bytes) -> bool:
    """True when a torch.save pickle holds Lightning's version key (read as opcodes, never unpickled)."""
    return "pytorch-lightning_version" in pickle_strings(pickled)


def _identify_folder(path: Path) -> Format | None:
    names = {p.name for p in path.iterdir()}
    if _is_dcp(path):
        return _format("dcp", _count(sum(n.endswith(".distcp") for n in names), ".distcp file"))
    if "adapter_config.json" in names:
        return _format("peft-folder")
    if "config.json" in names and (names & set(HF_WEIGHTS) or any(n.endswith(".safetensors") for n in names)):
        details = []
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            details += [", ".join(config.get("architectures") or [])] if isinstance(config, dict) else []
        except (OSError, ValueError):
            pass
        if "trainer_state.json" in names:
            details.append("a Trainer checkpoint: resume with trainer.train(resume_from_checkpoint=folder)")
        if any(n.endswith(".py") for n in names):
            details.append("it ships .py files, which only trust_remote_code=True would run")
        return _format("hf-folder", "; ".join(d for d in details if d))
    return None


def _is_dcp(folder: Path) -> bool:
    try:
        return (folder / ".metadata").is_file() and any(p.suffix == ".distcp" for p in folder.iterdir())
    except OSError:
        return False


# --- ONNX: a protobuf ModelProto, read field by field --------------------------------------------------------

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
# ModelProto's fields (onnx.proto): number -> wire type. 1 ir_version, 2 producer_name, 3 producer_version,
# 4 domain, 5 model_version, 6 doc_string, 7 graph, 8 opset_import, 14 metadata_props, 20 training_info,
# 25 functions, 26 configuration
_MODEL_FIELDS = {1: _VARINT, 2: _LEN, 3: _LEN, 4: _LEN, 5: _VARINT, 6: _LEN, 7: _LEN, 8: _LEN, 14: _LEN, 20: _LEN,
                 25: _LEN, 26: _LEN}
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
               9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
               16: "bfloat16"}


def _varint(data: bytes | BinaryIO, pos: int = 0) -> tuple[int, int]:
    """Read a protobuf varint at `pos` of bytes (or at the file's position); return it and the position after it."""
    value = shift = 0
    while True:
        byte = data[pos] if isinstance(data, bytes) else (data.read(1) or b"\xff\xff")[0]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


def _fields(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a protobuf message: ints for varints, bytes for the rest."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            value, pos = data[pos:pos + width], pos + width
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("a field runs past the end")
        yield number, wire, value


def onnx_summary(f: BinaryIO, size: int) -> str | None:
    """Return "ir_version 10, made by pytorch 2.14.1, opset 18" when the file is an ONNX ModelProto, else None.

    The whole file must parse as ModelProto's top-level fields (each number with its own wire type), beginning
    with ir_version and holding a graph: random bytes, text and other protobufs fail that test.
    """
    f.seek(0)
    pos, seen, strings, opsets = 0, {}, {}, []
    while pos < size:
        key, pos = _varint(f, pos)
        number, wire = key >> 3, key & 7
        if _MODEL_FIELDS.get(number) != wire or (not seen and number != 1):
            return None
        value, pos = _varint(f, pos)
        seen[number] = value
        if wire == _LEN:
            if pos + value > size:
                return None
            if number in (2, 3) or (number == 8 and value < 256):
                raw = f.read(value)
                if number == 8:
                    opset = dict((n, v) for n, _w, v in _fields(raw))
                    if not opset.get(1):  # the default domain, ai.onnx
                        opsets.append(opset.get(2, 0))
                else:
                    strings[number] = raw.decode("utf-8", "replace")
            f.seek(pos + value)
            pos += value
    if not 1 <= seen.get(1, 0) <= 64 or 7 not in seen:
        return None
    made_by = " ".join(strings[n] for n in (2, 3) if strings.get(n))
    return ", ".join([f"ir_version {seen[1]}"] + ([f"made by {made_by}"] if made_by else []) +
                     [f"opset {v}" for v in opsets])


def onnx_initializers(data: bytes) -> list[tuple]:
    """Return (name, dtype, shape, elements, bytes) for each weight stored in an ONNX model's graph."""
    rows = []
    for number, _wire, graph in _fields(data):
        if number != 7:
            continue
        for g_number, _w, tensor in _fields(graph):
            if g_number != 5:  # GraphProto.initializer: TensorProto
                continue
            dims, dtype, name, stored = [], 0, "", 0
            for t_number, t_wire, value in _fields(tensor):
                if t_number == 1:  # dims: one varint each, or packed
                    dims += [value] if t_wire == _VARINT else _packed(value)
                elif t_number == 2:
                    dtype = value
                elif t_number == 8:
                    name = value.decode("utf-8", "replace")
                elif t_number in (4, 5, 7, 9, 10, 11):  # the data, raw or typed
                    stored += len(value)
            elements = 1
            for d in dims:
                elements *= d
            rows.append((name, ONNX_DTYPES.get(dtype, f"type {dtype}"), tuple(dims), elements, stored))
    return rows


def _packed(data: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(value)
    return values


# --- pickles, read as opcodes ----------------------------------------------------------------------------------

def pickle_strings(data: bytes) -> set[str]:
    """Return the strings a pickle holds, from its opcodes: nothing is unpickled, so nothing runs."""
    return {arg for _op, arg, _pos in _opcodes(data) if isinstance(arg, str)}


def pickle_globals(data: bytes) -> list[str]:
    """Return the globals ("module.name") a pickle would import, read from its opcodes without running it."""
    found, recent, memo = set(), [], {}
    for op, arg, _pos in _opcodes(data):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(recent) >= 2:
            found.add(f"{recent[-2]}.{recent[-1]}")
        if isinstance(arg, str) and ("UNICODE" in op.name or op.name.endswith("STRING")):
            recent.append(arg)
        elif op.name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT") and recent:
            memo[len(memo) if op.name == "MEMOIZE" else arg] = recent[-1]
        elif op.name in ("GET", "BINGET", "LONG_BINGET") and arg in memo:
            recent.append(memo[arg])
    return sorted(found)


def _opcodes(data: bytes) -> Iterator:
    try:
        yield from pickletools.genops(data)
    except (ValueError, EOFError):  # a damaged or second pickle: what was read so far counts
        return


# --- what labutils.checkpoint does with them ----------------------------------------------------------------

def error(path: os.PathLike | str, fmt: Format) -> NotACheckpointError | CheckpointNotFoundError:
    """Return the error that says what the file is and how to open it (a folder's is a CheckpointNotFoundError)."""
    # " — " before the caution: the call that opens it may hold ", " itself, and the translation must find its end
    fix = N_(f"open it with {fmt.opens} — {fmt.caution}") if fmt.caution else N_(f"open it with {fmt.opens}")
    if Path(path).is_dir():
        return CheckpointNotFoundError(path, f"it is {fmt.title}, not a checkpoint file: {fmt.what}", fix)
    return NotACheckpointError(path, f"it is {fmt.title}, not a checkpoint: {fmt.what}", fix)


def refuse(path: os.PathLike | str, f: BinaryIO | None = None) -> None:
    """Raise the error of `error` when the file (or the open file `f`) is a known format that is not a checkpoint."""
    fmt = identify(path) if f is None else identify_file(f, path)
    if fmt is not None and not fmt.checkpoint:
        raise error(path, fmt)


@contextlib.contextmanager
def quiet_format_warnings() -> Iterator[None]:
    """Silence, for this block only, torch.load's warnings that it got a TorchScript archive or a pickle protocol
    above 2 (the lab's own error says what the file is and what to do)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive", category=UserWarning)
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        yield
