"""`python -m labutils inspect PATH`: what a model file or folder is, what it holds, and how to load it safely.

For any file or folder labutils.formats knows (torch.save, safetensors, Lightning, TorchScript, .pt2, ONNX, a
plain pickle, NumPy, GGUF, a Hugging Face or DCP folder) it prints four things: what it is; what it holds
(tensors with dtype, shape and bytes, or the globals a pickle needs); whether loading it can run code from it;
and the line that loads it safely. Nothing in the file is run: torch.save files are read as inspect_checkpoint
reads them (unpickled with weights_only=True onto the meta device), the rest from their bytes and zip members.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import zipfile
from pathlib import Path

from . import formats
from .checkpoint import inspect_checkpoint
from .errors import CheckpointError
from .paths import display_path
from .weights_only import unsafe_error

COLUMNS = ["key", "kind", "dtype", "shape", "elements", "bytes"]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def describe(path: os.PathLike | str) -> str:
    """Return what the file or folder at `path` is, what it holds, whether loading it runs code, and the safe line."""
    path = Path(path)
    fmt = formats.identify(path, deep=True)
    if fmt is None:  # missing, empty, damaged or unknown: inspect_checkpoint's error says which, and the fix
        inspect_checkpoint(path)
        fmt = formats.FORMATS["torch.save"]
    lines = [display_path(path), f"  what it is: {fmt.title}: {fmt.what}", "  what it holds:"]
    safe = fmt.safe
    if fmt.checkpoint:
        holdings, needs = _checkpoint_holdings(path)
        if needs:  # weights_only=True refuses it: say what would load it, and when not to
            safe = unsafe_error(path, needs).fix
    else:
        holdings = _holdings(path, fmt)
    lines += ["    " + line for line in holdings.splitlines()]
    lines += [f"  runs code when loaded? {fmt.runs_code}", f"  opens with: {fmt.opens}", f"  load it safely: {safe}"]
    return "\n".join(lines)


def _table(rows: list[tuple], columns: list[str] = COLUMNS) -> str:
    """Return rows as plain text columns: text to the left, numbers to the right, nothing cut off."""
    if not rows:
        return "(nothing)"
    cells = [list(columns)] + [["" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                               for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    numeric = [all(isinstance(row[i], int) or row[i] in ("", None) for row in rows) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric))
                     .rstrip() for row in cells)


def _checkpoint_holdings(path: Path) -> tuple[str, list[str]]:
    """Return inspect_checkpoint's summary and table of a torch.save or safetensors file, and the globals it needs."""
    summary = inspect_checkpoint(path)  # weights_only=True onto the meta device: shapes, no data, no code
    rows = [tuple(row) for row in summary.table.itertuples(index=False)]
    return f"{summary}\n{_table(rows, list(summary.table.columns))}", summary.unsafe_globals


def _holdings(path: Path, fmt: formats.Format) -> str:
    """Return what a file that is not a checkpoint holds, as a table or a list, read without running anything."""
    if fmt.key in ("hf-folder", "peft-folder", "dcp") and path.is_dir():
        return _folder(path, fmt)
    if fmt.key == "onnx":
        return _table([(name, "tensor", dtype, shape, elements, stored)
                       for name, dtype, shape, elements, stored in formats.onnx_initializers(path.read_bytes())])
    if fmt.key == "pickle" or (fmt.key == "dcp" and path.name == ".metadata"):
        return "unpickling it would import: " + (", ".join(formats.pickle_globals(path.read_bytes())) or "nothing")
    if fmt.key == "hf-index":
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
        return _table([(shard, "shard", "", "", sum(v == shard for v in weight_map.values()), "") for shard in shards])
    if fmt.key == "gguf":
        with open(path, "rb") as f:
            header = f.read(24)
        tensors, keys = struct.unpack("<QQ", header[8:24]) if len(header) == 24 else (0, 0)
        return f"{tensors:,} tensors and {keys:,} metadata keys (gguf.GGUFReader lists them)"
    if zipfile.is_zipfile(path):
        return _zip(path, fmt)
    if fmt.key == "numpy":
        return _table([_npy_row(path.name, path.read_bytes())])
    return f"{path.stat().st_size:,} bytes"


def _zip(path: Path, fmt: formats.Format) -> str:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if fmt.key == "pt2":
            return _pt2(archive)
        if fmt.key == "numpy":
            return _table([_npy_row(info.filename, archive.read(info)) for info in infos])
        rows = [(info.filename.partition("/")[2] or info.filename, _member_kind(info.filename), "", "", "",
                 info.file_size) for info in infos]
        text = _table(rows)
        if fmt.key == "torchscript":  # the classes whose TorchScript code it carries, from its pickle's opcodes
            pickled = [info for info in infos if info.filename.endswith("data.pkl")]
            classes = [g for g in formats.pickle_globals(archive.read(pickled[0])) if g.startswith("__torch__.")] \
                if pickled else []
            text += "\nits code defines: " + (", ".join(classes) or "no classes")
        return text


def _member_kind(name: str) -> str:
    inner = name.partition("/")[2]
    if inner.startswith("data/") and inner[5:].isdigit():
        return "storage"
    return "code" if inner.startswith("code/") else ""


def _pt2(archive: zipfile.ZipFile) -> str:
    """The weights a .pt2 archive holds, from its JSON weights config (names, dtypes, shapes) and member sizes."""
    try:
        from torch._export.serde.schema import ScalarType
        from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

        def dtype_name(code: int) -> str:
            return str(_SERIALIZE_TO_TORCH_DTYPE[ScalarType(code)]).removeprefix("torch.")
    except (ImportError, KeyError, ValueError):  # torch's private names moved: the enum's number will do

        def dtype_name(code: int) -> str:
            return f"dtype {code}"

    sizes = {info.filename: info.file_size for info in archive.infolist()}
    rows = []
    for name in sizes:
        if not name.endswith(("/model_weights_config.json", "/model_constants_config.json")):
            continue
        folder = name.rsplit("/", 1)[0]
        for key, entry in json.loads(archive.read(name))["config"].items():
            meta = entry.get("tensor_meta") or {}
            shape = tuple(s.get("as_int") for s in meta.get("sizes", []))
            elements = 1
            for s in shape:
                elements *= s or 0
            rows.append((key, "parameter" if entry.get("is_param") else "tensor",
                         dtype_name(meta["dtype"]) if "dtype" in meta else "", shape, elements,
                         sizes.get(f"{folder}/{entry['path_name']}", "")))
    return _table(rows)


def _npy_row(name: str, data: bytes) -> tuple:
    import io

    import numpy.lib.format as npy

    f = io.BytesIO(data)
    version = npy.read_magic(f)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _fortran, dtype = read(f)  # the header only: a dict literal, parsed, never run
    elements = 1
    for s in shape:
        elements *= s
    return name, "array", str(dtype), tuple(shape), elements, elements * dtype.itemsize


def _folder(path: Path, fmt: formats.Format) -> str:
    """A model folder's files with their sizes, then each weight file's tensors (as inspect_checkpoint reads them)."""
    files = sorted(p for p in path.iterdir() if p.is_file())
    parts = [_table([(p.name, "file", "", "", "", p.stat().st_size) for p in files])]
    if fmt.key == "dcp":
        metadata = (path / ".metadata").read_bytes()
        parts.append("its .metadata, unpickled, would import: " + ", ".join(formats.pickle_globals(metadata)))
        return "\n".join(parts)
    for weights in (p for p in files if p.name.endswith(WEIGHT_SUFFIXES)):
        inner = formats.identify(weights)
        if inner is not None and inner.checkpoint:
            parts.append(_checkpoint_holdings(weights)[0])
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Describe each PATH; return 0 when every one could be described."""
    parser = argparse.ArgumentParser(prog="python -m labutils inspect", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a model file or folder")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            text = describe(path)
        except (CheckpointError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            print(f"python -m labutils inspect: {err}")
            status = 1
            continue
        except Exception as err:  # a file that no reader here expected: one line, never a traceback
            print(f"python -m labutils inspect: {display_path(path)}: it could not be described "
                  f"({type(err).__name__}: {err}); nothing in it was run")
            status = 1
            continue
        print(text)
    return status
