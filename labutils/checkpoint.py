"""Safe checkpoints: atomic saves with a sha256 sidecar, verified weights-only loads, inspection and diagnosis."""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import struct
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ._io import TMP_MARK, atomic_write, atomic_write_bytes, sha256_file
from .paths import display_path

FORMAT = "save-load-lab/1"
SIDECAR_SUFFIX = ".sha256"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_OPCODE = 0x80  # the first byte of torch's legacy (pre-1.6) format

# The leaf types torch.load(weights_only=True) rebuilds without help (containers: dict, list, tuple). Exact
# types: a subclass of str or float (torch.__version__, numpy.float64) is pickled with its class, and refused.
_PLAIN = {int, float, bool, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size}


# --- the errors ---------------------------------------------------------------------------------------------

class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message names the file, the problem and the fix."""

    def __init__(self, path: os.PathLike | str, problem: str, fix: str):
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{display_path(self.path)}: {problem}. Fix: {fix}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """There is no checkpoint file at the path (nothing there, or a directory)."""


class CheckpointCorruptError(CheckpointError):
    """The file is not a complete checkpoint: empty, truncated, damaged, or not a checkpoint at all."""


class ChecksumMismatchError(CheckpointCorruptError):
    """The file's sha256 differs from the one recorded when it was saved."""


class ChecksumMissingError(CheckpointError):
    """The file has no sha256 sidecar to verify it against."""


class UnsafeCheckpointError(CheckpointError):
    """The file needs code beyond tensors and plain values to load (or would, if saved)."""


class CheckpointWriteError(CheckpointError, OSError):
    """The checkpoint could not be written (permissions, a full disk); the old file is untouched."""


# --- saving -------------------------------------------------------------------------------------------------

def sidecar_path(path: os.PathLike | str) -> Path:
    """Return the sha256 sidecar of a checkpoint: `net.pt` -> `net.pt.sha256` (the format of `sha256sum`)."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def save_checkpoint(path: os.PathLike | str, state: Mapping[str, Any], *, metadata: dict | None = None) -> Path:
    """Save `state` atomically with a sha256 sidecar: the file is the old one or the complete new one, never a mix.

    `.safetensors` paths take a flat dict of tensors and keep `metadata` in the file's header; any other path
    is written with torch.save, with `metadata` stored under the key "metadata".
    """
    path = Path(path)
    if not isinstance(state, Mapping):
        raise TypeError(f"save_checkpoint needs a dict of what to save, e.g. {{'model': model.state_dict()}}, "
                        f"not {type(state).__name__}")
    if path.is_dir():
        raise CheckpointWriteError(path, "is a directory", "give the path of a file inside it, e.g. folder / 'net.pt'")
    meta = {"format": FORMAT, "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(metadata or {})}
    _check_plain(meta, "metadata", path)
    safetensors = path.suffix == ".safetensors"
    if safetensors:
        payload = _safetensors_payload(state, meta, path)
    else:
        if "metadata" in state:
            raise ValueError(f"{display_path(path)}: the state already has a key 'metadata'; pass it as "
                             "save_checkpoint(..., metadata=...) instead")
        _check_plain(state, "state", path)
        payload = {**state, "metadata": meta}

    digest = {}

    def write(file) -> None:
        writer = _HashingWriter(file)
        if safetensors:
            writer.write(payload)
        else:
            torch.save(payload, writer)
        digest["new"] = writer.hexdigest()

    def accept_both() -> None:
        # While the rename happens the sidecar accepts the old and the new file, so a crash at any moment
        # leaves a file that verifies; afterwards it names only the new one.
        _write_sidecar(path, [digest["new"], *[d for d in _current_digests(path) if d != digest["new"]]])

    replaced = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        atomic_write(path, write, before_replace=accept_both)
        replaced = True
        _write_sidecar(path, [digest["new"]])
    except BaseException as err:
        cause = _os_error(err)
        if cause is None:
            raise
        state_now = "the new file is in place and verifies" if replaced else "the previous file, if any, is unchanged"
        raise CheckpointWriteError(path, f"writing failed ({cause.strerror or cause}); {state_now}",
                                   "free disk space or fix the folder's permissions, then save again") from err
    return path


def _current_digests(path: Path) -> list[str]:
    """Return the digests under which the file now at `path` verifies (hashing it if it has no usable sidecar)."""
    if not path.is_file():
        return []
    try:
        recorded = _recorded_digests(path)
    except CheckpointCorruptError:
        recorded = []
    return recorded or [sha256_file(path)]


def _os_error(err: BaseException | None) -> OSError | None:
    """Return the OSError behind an error (torch's zip writer replaces a failed write with a RuntimeError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


class _HashingWriter:
    """A file wrapper that hashes every byte on its way to disk, so a save is never read back to be hashed."""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def _write_sidecar(path: Path, digests: list[str]) -> None:
    """Write the sidecar in `sha256sum` format (one line per accepted digest)."""
    atomic_write_bytes(sidecar_path(path), "".join(f"{d}  {path.name}\n" for d in digests).encode())


def _recorded_digests(path: Path) -> list[str]:
    """Return the digests the sidecar accepts ([] when there is no sidecar); raise if it is unreadable."""
    sidecar = sidecar_path(path)
    try:
        text = sidecar.read_text()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointCorruptError(sidecar, f"the checksum file cannot be read ({err})",
                                     "delete it and save the checkpoint again") from err
    digests = []
    for line in text.splitlines():
        # Only the digest counts: a checkpoint copied under another name, with its sidecar, still verifies.
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if not match:
            raise CheckpointCorruptError(sidecar, f"the checksum file has a line that is not '<sha256>  "
                                         f"{path.name}': {line[:80]!r}",
                                         "restore it, or delete it and save the checkpoint again")
        digests.append(match.group(1))
    if not digests:
        raise CheckpointCorruptError(sidecar, "the checksum file is empty", "delete it and save the checkpoint again")
    return digests


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of `path` and of its sidecar left by a save whose process died (a live one's are kept)."""
    remove_stale_temporaries(path.parent, path.name)
    remove_stale_temporaries(path.parent, sidecar_path(path).name)


def remove_stale_temporaries(folder: os.PathLike | str, name: str | None = None) -> list[str]:
    """Delete the temporaries that killed saves left in `folder` (of `name` only, if given); return their names."""
    removed = []
    pattern = f".{glob_escape(name)}{TMP_MARK}*" if name else f".*{TMP_MARK}*"
    for tmp in Path(folder).glob(pattern):
        match = re.fullmatch(rf"\.(.+){re.escape(TMP_MARK)}(\d+)-.*", tmp.name)
        if match is None:
            continue  # not a temporary of the lab's atomic writes
        pid = int(match.group(2))
        if pid != os.getpid() and _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    return removed


def glob_escape(name: str) -> str:
    """Escape the characters glob treats specially."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_plain(value: Any, where: str, path: Path) -> None:
    """Refuse, before anything is written, what torch.load(weights_only=True) would refuse to load."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise UnsafeCheckpointError(path, f"{where} has a key of type {type(key).__name__} ({key!r})",
                                            "use str or int keys")
            _check_plain(item, f"{where}[{key!r}]", path)
    elif isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", path)
    elif not isinstance(value, torch.Tensor) and type(value) not in _PLAIN:
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        fix = ("store value.item() (a Python number) or torch.as_tensor(value)" if type(value).__module__ == "numpy"
               else "store its state as plain values (e.g. its state_dict() or dataclasses.asdict(...)) and rebuild "
                    "it when loading")
        raise UnsafeCheckpointError(path, f"{where} is a {kind}, which torch.load(weights_only=True) refuses to load",
                                    fix)


def _safetensors_payload(state: Mapping[str, Any], meta: dict, path: Path) -> bytes:
    """Serialise a flat dict of tensors to safetensors bytes, with the metadata as JSON strings in the header."""
    import safetensors.torch

    wrong = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if wrong:
        raise TypeError(f"{display_path(path)}: safetensors holds tensors only, but {', '.join(f'{k!r} is a {t}' for k, t in wrong.items())}; "
                        "save a state_dict, and put plain values in metadata=...")
    header = {key: value if isinstance(value, str) else json.dumps(value) for key, value in meta.items()}
    return safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata=header)


# --- loading ------------------------------------------------------------------------------------------------

def load_checkpoint(path: os.PathLike | str, *, map_location: Any = "cpu", verify: bool = True) -> dict:
    """Load a checkpoint with weights_only=True after checking its sha256; never run code from the file."""
    path = Path(path)
    _require_file(path)
    if verify:
        verify_checksum(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return _load_safetensors(path, map_location)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise _unsafe(path, err) from err
        raise CheckpointCorruptError(path, f"its pickle is damaged ({_first_line(err)})", _RESTORE) from err
    except RuntimeError as err:
        if "CUDA" in str(err) or "device" in str(err):
            raise CheckpointError(path, f"its tensors were saved on a device this machine lacks ({_first_line(err)})",
                                  "load with map_location='cpu' (load_checkpoint's default)") from err
        raise CheckpointCorruptError(path, f"torch cannot read it ({_first_line(err)})", _RESTORE) from err
    except (EOFError, OSError, KeyError, ValueError, IndexError, struct.error) as err:
        raise CheckpointCorruptError(path, f"torch cannot read it ({type(err).__name__}: {_first_line(err)})",
                                     _RESTORE) from err


_RESTORE = "the file is incomplete or damaged: restore it from a copy, or save it again from the model"


def verify_checksum(path: os.PathLike | str) -> str:
    """Check a file against its sha256 sidecar; return the digest, or raise naming both digests."""
    path = Path(path)
    _require_file(path)
    recorded = _recorded_digests(path)
    if not recorded:
        raise ChecksumMissingError(path, f"there is no checksum file {sidecar_path(path).name} to verify it against",
                                   "if you trust the file, load it with verify=False (it still loads with "
                                   "weights_only=True), or save it again with save_checkpoint")
    actual = sha256_file(path)
    if actual not in recorded:
        raise ChecksumMismatchError(path, f"its sha256 is {actual[:16]}…, but {sidecar_path(path).name} expects "
                                    f"{recorded[0][:16]}… (the bytes changed after saving: a copy, a disk or a "
                                    "download damaged them)", _RESTORE)
    return actual


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise CheckpointNotFoundError(path, "is a directory, not a checkpoint file",
                                      "give the path of the file inside it (a sharded or distributed checkpoint "
                                      "has its own loader)")
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.is_file() and not p.name.startswith("."))[:6] \
            if path.parent.is_dir() else []
        hint = f"; the folder holds {', '.join(nearby)}" if nearby else ""
        raise CheckpointNotFoundError(path, f"no such file{hint}",
                                      "check the name, or run the notebook that saves it first")


def _sniff(path: Path) -> str:
    """Tell the format from the first bytes: 'zip' (torch.save), 'legacy' (old torch.save), 'safetensors'."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if size == 0:
        raise CheckpointCorruptError(path, "it is empty (0 bytes): the save that wrote it did not finish", _RESTORE)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        (header_length,) = struct.unpack("<Q", head[:8])
        if 8 + header_length > size:
            raise CheckpointCorruptError(path, f"its safetensors header claims {header_length:,} bytes, but the file "
                                         f"has {size:,}: it is truncated or damaged", _RESTORE)
        return "safetensors"
    if head[0] == PICKLE_PROTOCOL_OPCODE:
        return "legacy"
    printable = all(32 <= b < 127 or b in b"\r\n\t" for b in head)
    found = f"text ({head.decode('ascii', 'replace')[:16]!r}…)" if printable else f"bytes {head[:8].hex(' ')}"
    raise CheckpointCorruptError(path, f"it is not a checkpoint: it starts with {found}, not with the signature "
                                 "of torch.save (PK, a zip archive) or of safetensors",
                                 "check that you opened the right file")


def _load_safetensors(path: Path, map_location: Any) -> dict:
    import safetensors
    import safetensors.torch

    try:
        tensors = safetensors.torch.load_file(path, device="cpu")
    except safetensors.SafetensorError as err:
        raise CheckpointCorruptError(path, f"safetensors cannot read it ({err})", _RESTORE) from err
    if map_location not in (None, "cpu", torch.device("cpu")):
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return tensors


def _unsafe_globals(path: Path, err: Exception) -> list[str]:
    """Return the globals (classes, functions) a file needs beyond what weights_only allows, without running any."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # the error text names at least the first one
        return re.findall(r"Unsupported global: GLOBAL (\S+)", str(err))


# Modules whose functions let a pickle run arbitrary code: never to be allowed, whoever sent the file.
_RUNS_CODE = {"builtins", "os", "posix", "nt", "subprocess", "sys", "runpy", "importlib", "shutil", "socket",
              "pickle", "marshal", "ctypes", "code", "codeop", "pty", "webbrowser"}


def _unsafe(path: Path, err: Exception) -> UnsafeCheckpointError:
    """Name the globals a file needs, and how to allow them when (and only when) the file is trusted."""
    names = _unsafe_globals(path, err)
    numpy = [n for n in names if n.startswith("numpy")]
    dangerous = [n for n in names if n.split(".")[0] in _RUNS_CODE]
    if dangerous:
        fix = (f"do not load it: {', '.join(dangerous)} can run any code on your machine, and no checkpoint needs "
               "it; delete the file, or ask its author for a state_dict or a .safetensors file")
    elif numpy:
        fix = ("it holds NumPy values: store Python numbers (value.item()) or tensors (torch.as_tensor(value)) "
               "in the checkpoint, then save it again")
    else:
        fix = ("if, and only if, you trust the file and the code of these classes, load it inside "
               f"`with torch.serialization.safe_globals([{', '.join(n.rsplit('.', 1)[-1] for n in names)}]):`; "
               "otherwise ask for a state_dict or a .safetensors file")
    return UnsafeCheckpointError(path, f"loading it would need {', '.join(names) or 'code'} besides tensors and plain "
                                 "values, so weights_only=True refused it and nothing in it ran", fix)


def _first_line(err: BaseException) -> str:
    """Return the first sentence of an error's message: the part that says what happened."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line.split(". ")[0] if len(line) > 120 else line


# --- inspecting -------------------------------------------------------------------------------------------

@dataclass(repr=False)
class CheckpointSummary:
    """What a checkpoint holds, read without running any code from it."""

    path: Path
    format: str
    bytes: int
    table: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    checksum: str = "not checked"
    unsafe_globals: list[str] = field(default_factory=list)

    @property
    def tensor_bytes(self) -> int:
        """Return the bytes of tensor data (the rest of the file is structure)."""
        return int(self.table["bytes"].sum()) if len(self.table) else 0

    def __str__(self) -> str:
        lines = [f"{display_path(self.path)}: {self.format}, {self.bytes:,} bytes "
                 f"({self.tensor_bytes:,} in {int((self.table['kind'] == 'tensor').sum()) if len(self.table) else 0} tensors)",
                 f"checksum: {self.checksum}"]
        if self.unsafe_globals:
            lines.append(f"NOT SAFE to load: it needs {', '.join(self.unsafe_globals)}")
        if self.metadata:
            lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in self.metadata.items()))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return "<pre>" + str(self) + "</pre>" + self.table.to_html(index=False)


def inspect_checkpoint(path: os.PathLike | str) -> CheckpointSummary:
    """Summarise a .pt or .safetensors file (keys, shapes, dtypes, bytes, metadata) without running code from it."""
    path = Path(path)
    _require_file(path)
    kind = _sniff(path)
    try:
        checksum = f"ok (sha256 {verify_checksum(path)[:16]}…)"
    except ChecksumMissingError:
        checksum = "no sidecar"
    except CheckpointCorruptError as err:
        checksum = f"MISMATCH: {err.problem}"
    if kind == "safetensors":
        rows, metadata, unsafe = _safetensors_rows(path), _safetensors_metadata(path), []
        fmt = "safetensors"
    else:
        fmt = "torch.save zip archive" if kind == "zip" else "torch.save legacy pickle"
        unsafe = []
        try:
            # meta tensors: shapes and dtypes without reading (or allocating) the data
            obj = torch.load(path, map_location="meta", weights_only=True)
        except pickle.UnpicklingError as err:
            if "Unsupported global" not in str(err):
                raise CheckpointCorruptError(path, f"its pickle is damaged ({_first_line(err)})", _RESTORE) from err
            obj = {}
            unsafe = _unsafe_globals(path, err)
        except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
            raise CheckpointCorruptError(path, f"torch cannot read it ({_first_line(err)})", _RESTORE) from err
        metadata = obj.pop("metadata", {}) if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) else {}
        rows = list(_rows(obj))
    table = pd.DataFrame(rows, columns=["key", "kind", "dtype", "shape", "elements", "bytes", "value"])
    return CheckpointSummary(path, fmt, path.stat().st_size, table, metadata, checksum, unsafe)


def _rows(obj: Any, prefix: str = ""):
    """Flatten nested dicts and lists into one row per leaf: tensors with shape and bytes, plain values as is."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _rows(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple, torch.Tensor)) for v in obj):
        for i, value in enumerate(obj):
            yield from _rows(value, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(obj, torch.Tensor):
        yield (prefix, "tensor", str(obj.dtype).removeprefix("torch."), tuple(obj.shape), obj.numel(),
               obj.numel() * obj.element_size(), "")
    else:
        yield prefix, type(obj).__name__, "", "", "", 0, repr(obj)[:60]


_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                       "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _safetensors_rows(path: Path) -> list[tuple]:
    from safetensors import SafetensorError, safe_open

    rows = []
    try:
        with safe_open(path, framework="pt") as f:
            for key in f.keys():
                piece = f.get_slice(key)
                shape = tuple(piece.get_shape())
                dtype = _SAFETENSORS_DTYPES.get(piece.get_dtype(), piece.get_dtype())
                elements = math.prod(shape)
                rows.append((key, "tensor", dtype, shape, elements,
                             elements * torch.empty(0, dtype=getattr(torch, dtype, torch.uint8)).element_size(), ""))
    except SafetensorError as err:
        raise CheckpointCorruptError(path, f"safetensors cannot read it ({err})", _RESTORE) from err
    return rows


def _safetensors_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        header = f.metadata() or {}
    metadata = {}
    for key, value in sorted(header.items()):  # the header's order is not kept
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    return metadata


# --- diagnosing -------------------------------------------------------------------------------------------

PREFIXES = {
    "module.": "saved from nn.DataParallel or DistributedDataParallel",
    "_orig_mod.": "saved from a torch.compile'd model",
    "model.": "saved from a wrapper module (Lightning-style `model.` attribute)",
}


def diagnose(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> pd.DataFrame:
    """Return a table of the keys that keep `state_dict` from loading into `model`, with the likely cause and fix."""
    expected = model.state_dict()
    columns = ["key", "problem", "in the model", "in the file", "likely cause", "fix"]
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"diagnose needs a state_dict (a dict of tensors), not {type(state_dict).__name__}")
    nested = [k for k, v in state_dict.items() if isinstance(v, Mapping)]
    if nested and not any(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return pd.DataFrame([("(whole file)", "not a state_dict", f"{len(expected)} tensors",
                              f"keys {', '.join(map(str, state_dict))}", "this is a full checkpoint, with the "
                              "state_dict inside it", f"pass checkpoint[{nested[0]!r}]")], columns=columns)
    rows = []
    found = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]

    prefix_cause = _prefix_cause(list(expected), list(found))
    for key in missing:
        rows.append((key, "missing", _shape(expected[key]), "—", *(prefix_cause or _missing_cause(key, unexpected))))
    for key in unexpected:
        rows.append((key, "unexpected", "—", _shape(found[key]), *(prefix_cause or _unexpected_cause(key, missing))))
    head = _head_keys(model)
    for key in expected:
        if key in found and found[key].shape != expected[key].shape:
            if key in head:
                cause = (f"a different head: the file's has {found[key].shape[0]} outputs, the model's "
                         f"{expected[key].shape[0]}",
                         "drop the head's keys from the state_dict and load the rest with strict=False "
                         "(then train the new head)")
            else:
                cause = ("a different architecture (layer sizes changed)",
                         "build the model with the constructor arguments the file was saved with")
            rows.append((key, "wrong shape", _shape(expected[key]), _shape(found[key]), *cause))
        elif key in found and found[key].dtype != expected[key].dtype:
            rows.append((key, "different dtype", str(expected[key].dtype), str(found[key].dtype),
                         "saved in another precision", "none needed: load_state_dict converts the values "
                                                        "(precision lost when saving stays lost)"))
    return pd.DataFrame(rows, columns=columns)


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))


def _prefix_cause(expected: list[str], found: list[str]) -> tuple[str, str] | None:
    """Explain a key mismatch that adding or removing one prefix would fix."""
    for prefix in _candidate_prefixes(found):
        if sorted(k.removeprefix(prefix) for k in found) == sorted(expected):
            cause = PREFIXES.get(prefix, f"saved from a model wrapped in another module (every key starts with {prefix!r})")
            return (cause, f"torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, {prefix!r}) "
                           "(or save the unwrapped model: model.module / model._orig_mod)")
    for prefix in _candidate_prefixes(expected):
        if sorted(k.removeprefix(prefix) for k in expected) == sorted(found):
            return (f"the model is wrapped (its keys start with {prefix!r}) but the file is not",
                    "load into the inner model (e.g. model.module.load_state_dict(...))")
    return None


def _candidate_prefixes(keys: list[str]) -> list[str]:
    """Return prefixes shared by every key: the known ones first, then the common first component(s)."""
    found = [p for p in PREFIXES if keys and all(k.startswith(p) for k in keys)]
    first = {k.split(".", 1)[0] + "." for k in keys if "." in k}
    if len(first) == 1 and all("." in k for k in keys):
        found += [p for p in first if p not in found]
    return found


def _missing_cause(key: str, unexpected: list[str]) -> tuple[str, str]:
    layer = key.rsplit(".", 1)[0]
    if any(u.rsplit(".", 1)[0] == layer for u in unexpected):
        return ("the layer is in both, under different parameter names", "check the layer types match")
    if unexpected:
        return ("a different architecture: the file has other layers (renamed or another model class)",
                "build the model class the file was saved from, or rename the keys to match")
    return ("the model has a layer the file lacks (e.g. BatchNorm added to the code after saving)",
            "build the model the file was saved from; or, if the new layer should start fresh, load with "
            "strict=False and check that only these keys are missing")


def _unexpected_cause(key: str, missing: list[str]) -> tuple[str, str]:
    if missing:
        return ("a different architecture: the model has other layers (renamed or another model class)",
                "build the model class the file was saved from, or rename the keys to match")
    return ("the file has a layer the model lacks (removed from the code, or a bigger model)",
            "build the model the file was saved from; or drop these keys if you removed the layer on purpose")


def _head_keys(model: torch.nn.Module) -> set[str]:
    """Return the state_dict keys of the model's last Linear layer: its classification head."""
    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    if not linear:
        return set()
    return {f"{linear[-1]}.{p}" for p, _ in model.get_submodule(linear[-1]).named_parameters(recurse=False)}


def zip_members(path: os.PathLike | str) -> pd.DataFrame:
    """List the members of a torch.save zip archive with their sizes (the archive's own table of contents)."""
    with zipfile.ZipFile(path) as archive:
        return pd.DataFrame([(info.filename, info.file_size) for info in archive.infolist()],
                            columns=["member", "bytes"])
