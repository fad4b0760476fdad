"""Safe checkpoints: atomic saves with a sha256 sidecar, verified weights-only loads, and inspection.

Read from the top: saving (a temporary file, fsync, rename, the sidecar), loading (the sha256 checked on the open
file, then torch.load(weights_only=True) of that file), and inspecting a file without loading it. The errors they
raise are in labutils.errors, importable from here.
What makes a save keep up with the disk is in labutils._tuning; diagnose (a state_dict against a model) is in
labutils.partial and importable from here, as the notebooks do.
"""
from __future__ import annotations

import errno as errno_codes
import json
import math
import os
import pickle
import struct
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from . import formats, sha256sums
from ._tuning import HashingWriter, without_crc32
from ._io import atomic_write, atomic_write_bytes, locked, sha256_file
from .i18n import N_
from .errors import (  # noqa: F401  (the family, importable from here as the notebooks do)
    CheckpointCorruptError, CheckpointDeviceError, CheckpointError, CheckpointNotFoundError, CheckpointWriteError,
    ChecksumMismatchError, ChecksumMissingError, NotACheckpointError, UnsafeCheckpointError,
)
from .partial import PREFIXES, diagnose  # noqa: F401  (notebooks import diagnose from here: it moved to partial)
from .paths import display_path
from .weights_only import check_loadable, unsafe_error, unsafe_globals  # noqa: F401

if TYPE_CHECKING:  # pandas is imported where a table is made: a process that only saves and loads skips it
    import pandas as pd

FORMAT = "save-load-lab/1"
SIDECAR_SUFFIX = ".sha256"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_OPCODE = 0x80  # the first byte of torch's legacy (pre-1.6) format


# --- saving -------------------------------------------------------------------------------------------------

def sidecar_path(path: os.PathLike | str) -> Path:
    """Return the sha256 sidecar of a checkpoint: `net.pt` -> `net.pt.sha256` (the format of `sha256sum`)."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def save_checkpoint(state: Mapping[str, Any], path: os.PathLike | str, *, metadata: dict | None = None) -> Path:
    """Save `state` to `path` atomically with a sha256 sidecar: the old file or the complete new one, never a mix.

    The arguments come in torch.save's order: what to save, then where. `.safetensors` paths take a flat dict
    of tensors and keep `metadata` in the file's header (as JSON, so "3" stays a string); any other path is
    written with torch.save, with `metadata` stored under the key "metadata". Either way load_checkpoint
    returns the state with its metadata under "metadata". Anything torch.load(weights_only=True) would refuse
    is refused here, before a byte is written. Two saves to one path, from threads or processes, run one
    after the other (see labutils._io), so the file and its sidecar always agree.
    """
    if _is_path(state) and not _is_path(path):
        raise TypeError(f"save_checkpoint takes what to save first and the path second, as torch.save(obj, f) "
                        f"does: save_checkpoint(state, {display_path(state)!r}), "
                        f"not save_checkpoint({display_path(state)!r}, state)")
    if not isinstance(state, Mapping):
        raise TypeError(f"save_checkpoint needs a dict of what to save, e.g. {{'model': model.state_dict()}}, "
                        f"not {type(state).__name__}")
    if not _is_path(path):
        raise TypeError(f"save_checkpoint needs a file path as its second argument, not {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise CheckpointWriteError(path, "is a directory", "give the path of a file inside it, e.g. folder / 'net.pt'",
                                   code=errno_codes.EISDIR)
    meta = {"format": FORMAT, "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(metadata or {})}
    if "metadata" in state:
        raise ValueError(f"{display_path(path)}: the state already has a key 'metadata'; pass it as "
                         "save_checkpoint(..., metadata=...) instead")
    safetensors = path.suffix == ".safetensors"
    if safetensors:
        payload = _safetensors_payload(state, meta, path)
    else:
        check_loadable(meta, path, "metadata")
        check_loadable(state, path, "state")
        payload = {**state, "metadata": meta}

    digest = {}

    def write(file) -> None:
        writer = HashingWriter(file)
        try:
            if safetensors:
                writer.write(payload)
            else:
                with without_crc32():
                    torch.save(payload, writer)
        finally:
            writer.close()
        digest["new"] = writer.hexdigest()

    def accept_both() -> None:
        # While the rename happens the sidecar accepts the old and the new file, so a crash at any moment
        # leaves a file that verifies; afterwards it names only the new one.
        _write_sidecar(path, [digest["new"], *[d for d in _current_digests(path) if d != digest["new"]]])

    replaced = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(path):  # another save into this folder waits here until the file and its sidecar agree
            atomic_write(path, write, before_replace=accept_both)
            replaced = True
            _write_sidecar(path, [digest["new"]])
    except Exception as err:  # Ctrl-C and exits pass through as they are, even while an OSError is handled
        cause = _os_error(err)
        if cause is None:
            raise
        state_now = "the new file is in place and verifies" if replaced else "the previous file, if any, is unchanged"
        raise CheckpointWriteError(path, f"writing failed ({cause.strerror or cause}); {state_now}",
                                   "free disk space or fix the folder's permissions, then save again",
                                   code=cause.errno) from err
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


def _write_sidecar(path: Path, digests: list[str]) -> None:
    """Write the sidecar in `sha256sum` format (one line per accepted digest)."""
    atomic_write_bytes("".join(sha256sums.line(d, path.name) for d in digests).encode(), sidecar_path(path))


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
    try:
        entries = sha256sums.parse(text)
    except sha256sums.FormatError as err:
        raise CheckpointCorruptError(sidecar, f"the checksum file is not in the format '<sha256>  {path.name}': {err}",
                                     "restore it, or delete it and save the checkpoint again") from err
    if not entries:
        raise CheckpointCorruptError(sidecar, "the checksum file is empty", "delete it and save the checkpoint again")
    # Only the digest counts: a checkpoint copied under another name, with its sidecar, still verifies.
    return [digest for digest, _name in entries]


def _safetensors_payload(state: Mapping[str, Any], meta: dict, path: Path) -> bytes:
    """Serialise a flat dict of tensors to safetensors bytes, with each metadata value as JSON text in the header."""
    import safetensors.torch

    wrong = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if wrong:
        found = ", ".join(f"{k!r} is a {t}" for k, t in wrong.items())
        raise TypeError(f"{display_path(path)}: safetensors holds tensors only, but {found}; "
                        "save a state_dict, and put plain values in metadata=...")
    header = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise UnsafeCheckpointError(path, f"metadata: the key {key!r} is a {type(key).__name__}",
                                        "safetensors metadata keys are strings: use str keys")
        try:
            text = json.dumps(value, allow_nan=False)
            back = json.loads(text)
        except (TypeError, ValueError):
            back = text = None
        if text is None or not _same_json(back, value):
            raise UnsafeCheckpointError(path, f"metadata[{key!r}] is {value!r} ({type(value).__name__}), which "
                                        "a safetensors header, JSON text, cannot keep as it is",
                                        "store str, int, float, bool, None, or lists and str-keyed dicts of them; "
                                        "or save to a .pt file")
        header[key] = text
    return safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata=header)


def _same_json(a: Any, b: Any) -> bool:
    """True when `a` (read back from JSON) equals `b` in value and in type, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return a == b


def _decode_header(header: dict[str, str]) -> dict:
    """Return a safetensors header's metadata: JSON-decoded if the lab wrote it, else the strings as they are."""
    if header.get("format") != json.dumps(FORMAT):
        return dict(sorted(header.items()))  # written by another tool: its values are plain strings
    return {key: json.loads(value) for key, value in sorted(header.items())}  # the header keeps no order


# --- loading ------------------------------------------------------------------------------------------------

def load_checkpoint(path: os.PathLike | str, *, map_location: Any = "cpu", verify: bool = True,
                    mmap: bool = False) -> dict:
    """Load a checkpoint with weights_only=True after checking its sha256; never run code from the file.

    The file is opened, and its sha256 checked on that open file before torch reads any of it; torch then
    reads that same open file, so the bytes loaded are the bytes checked, even if a save replaces the file
    meanwhile. The check reads the file from the disk once; the load finds its pages in memory and copies them
    into tensors of their own. If another program writes into the file while it loads (torch.save to the same
    path does), the load raises CheckpointCorruptError and returns nothing: a write that cuts the file short makes
    torch's read fail, and any write changes the file's size or modification time, to the kernel's clock tick. A
    valid file of another format (TorchScript, .pt2, ONNX, a model folder: labutils.formats) raises
    NotACheckpointError, naming the call that opens it.

    mmap=True maps the file instead, as torch.load(mmap=True) does: the tensors are the file's pages, read when first
    used, so with a model built on the meta device and load_state_dict(..., assign=True) loading costs no memory
    beyond them. The price: if the file is rewritten in place after the load, those tensors change, and reading
    one whose page was cut off kills the process (SIGBUS; in Jupyter, a kernel that dies without a message).
    save_checkpoint never rewrites a file in place (it writes a new one and renames it).
    """
    path = Path(path)
    if not isinstance(mmap, bool):
        raise TypeError(f"mmap must be True or False, not {mmap!r}")
    _require_file(path)
    if not sidecar_path(path).exists():  # made elsewhere: a TorchScript or ONNX file is named before its sidecar
        formats.refuse(path)
    verified = _VerifiedFile(path, verify)
    with verified as f:
        try:
            kind = _sniff(f, path)
        except CheckpointCorruptError:
            _still_the_same(f, path, verified.opened)  # rewritten while it was read: say so
            raise
        if kind == "safetensors":
            if mmap:
                raise ValueError(f"{display_path(path)}: mmap=True maps torch.save files; for a .safetensors file "
                                 "use safetensors.safe_open, which maps the file and reads only the tensors asked for")
            return _load_safetensors(f, path, map_location)
        if mmap and kind == "legacy":
            raise ValueError(f"{display_path(path)}: it was saved in torch's format from before 1.6, which cannot be "
                             "mapped: load it with mmap=False, then save it again with save_checkpoint")
        try:
            with formats.quiet_format_warnings():  # the error below says it is TorchScript, and how to open it
                if mmap and not _is_meta(map_location):  # tensors that are the file's pages, read when first used
                    state = torch.load(_same_file(f, path), weights_only=True, mmap=True, map_location=map_location)
                else:  # read through the open file that was checked: a rewrite is a short read, never a crash
                    state = torch.load(f, map_location=map_location, weights_only=True, mmap=False)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError,
                struct.error) as err:
            _still_the_same(f, path, verified.opened)  # rewritten during the load: say so, not that it is damaged
            raise _load_error(f, path, map_location, err) from err
        _still_the_same(f, path, verified.opened, by_name=mmap)
        return state


_RESTORE = N_("the file is incomplete or damaged: restore it from a copy, or save it again from the model")


def _load_error(f: BinaryIO, path: Path, map_location: Any, err: Exception) -> CheckpointError:
    """Explain why torch.load refused a file that did not change meanwhile: another format, unsafe, a missing
    device, or damage."""
    found = formats.identify_file(f, path)
    if found is not None and not found.checkpoint:  # a valid TorchScript or .pt2 archive, not a damaged checkpoint
        return formats.error(path, found)
    if isinstance(err, pickle.UnpicklingError):
        names = unsafe_globals(f, err)
        if names:
            return unsafe_error(path, names)
        return _unreadable_pickle(f, path, err)
    if isinstance(err, RuntimeError):
        device_error = _device_problem(f, path, map_location)
        if device_error is not None:
            return device_error
        return CheckpointCorruptError(path, f"torch cannot read it ({_first_line(err)})", _RESTORE)
    return CheckpointCorruptError(path, f"torch cannot read it ({type(err).__name__}: {_first_line(err)})", _RESTORE)


def _unreadable_pickle(f: BinaryIO, path: Path, err: Exception) -> CheckpointError:
    """Explain a pickle that weights_only refused without naming a global: a newer protocol, or damage."""
    protocol = _pickle_protocol(f)
    if protocol is not None and protocol >= 4:  # FRAME and the other opcodes the weights_only reader lacks
        return UnsafeCheckpointError(
            path, f"its pickle uses protocol {protocol} (torch.save(..., pickle_protocol={protocol}) wrote it), "
            "which torch.load(weights_only=True) cannot read; nothing in it ran",
            "if, and only if, you trust the file, load it once with torch.load(path, weights_only=False) and save "
            "it again with save_checkpoint; otherwise ask for a state_dict or a .safetensors file")
    return CheckpointCorruptError(path, f"its pickle is damaged ({_first_line(err)})", _RESTORE)


def _pickle_protocol(f: BinaryIO) -> int | None:
    """Return the pickle protocol of a torch.save zip archive's data.pkl (its first two bytes), or None."""
    try:
        f.seek(0)
        with zipfile.ZipFile(f) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            with archive.open(name) as pkl:
                head = pkl.read(2)
    except (zipfile.BadZipFile, StopIteration, OSError, ValueError):
        return None
    return head[1] if len(head) == 2 and head[0] == PICKLE_PROTOCOL_OPCODE else None


def _same_file(f: BinaryIO, path: Path) -> str:
    """Return a name that opens the very file `f` has open: /proc/self/fd/N (Linux), /dev/fd/N, or else the path.

    torch.load(mmap=True) takes a name, not an open file; a name through the descriptor cannot reach a file that a
    save renamed onto the path meanwhile. Where neither exists, _still_the_same checks the path afterwards.
    """
    opened = os.fstat(f.fileno())
    for name in (f"/proc/self/fd/{f.fileno()}", f"/dev/fd/{f.fileno()}"):
        try:
            found = os.stat(name)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino):
            return name
    return str(path)


def _still_the_same(f: BinaryIO, path: Path, opened: os.stat_result, by_name: bool = False) -> None:
    """Raise unless the open file is as it was when opened (its size and modification time: a write changes the
    time, to the kernel's clock tick), and, if torch opened it by name (`by_name`), unless it is still at `path`."""
    now = os.fstat(f.fileno())
    if (now.st_size, now.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
        raise CheckpointCorruptError(path, "it was written to while it was being loaded (another program saved to "
                                     "the same file in place, as torch.save does)",
                                     "wait until that program has finished, then load it again; save with "
                                     "save_checkpoint, which never writes into the file being read")
    if by_name and _same_file(f, path) == str(path) and _inode(path) != now.st_ino:
        raise CheckpointCorruptError(path, "it was replaced while it was being loaded", "load it again")


def _is_meta(map_location: Any) -> bool:
    try:
        return isinstance(map_location, (str, torch.device)) and torch.device(map_location).type == "meta"
    except RuntimeError:
        return False


class _VerifiedFile:
    """Open a checkpoint and, if asked, check the open file against its sidecar (retrying past a concurrent save)."""

    def __init__(self, path: Path, verify: bool):
        self.path, self.verify = path, verify
        self.file: BinaryIO | None = None
        self.digest: str | None = None
        self.opened: os.stat_result | None = None  # the file as it was when opened, before it was checked

    def __enter__(self) -> BinaryIO:
        try:
            return self._open_and_check()
        except BaseException:
            self.__exit__()  # __exit__ does not run when __enter__ raises: the file must not stay open
            raise

    def _open_and_check(self) -> BinaryIO:
        for attempt in range(3):
            recorded = _recorded_digests(self.path) if self.verify else []
            if self.verify and not recorded:
                raise _missing_sidecar(self.path)
            try:
                self.file = open(self.path, "rb")
            except FileNotFoundError as err:  # deleted (or renamed away) since the caller found it
                raise CheckpointNotFoundError(self.path, "it was deleted or moved while it was being opened",
                                              "check that no other program removes it (a rotation of old "
                                              "checkpoints, a cleanup), then load it again") from err
            self.opened = os.fstat(self.file.fileno())
            if not self.verify:
                return self.file
            try:
                actual = sha256sums.file_digest(self.file)
            except OSError as err:  # the disk or a network folder failed under the read
                raise CheckpointCorruptError(self.path, f"it cannot be read ({err.strerror or err})",
                                             "check the disk or the network folder, then copy the file again") from err
            if actual in recorded:
                self.digest = actual
                self.file.seek(0)
                return self.file
            _still_the_same(self.file, self.path, self.opened)  # written to in place while it was hashed
            self.file.close()
            self.file = None
            if attempt < 2 and (_recorded_digests(self.path) != recorded or _inode(self.path) != self.opened.st_ino):
                continue  # another save replaced the file or its sidecar meanwhile: check the new pair
            raise _mismatch(self.path, actual, recorded)
        raise AssertionError("unreachable")

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _missing_sidecar(path: Path) -> ChecksumMissingError:
    return ChecksumMissingError(path, f"there is no checksum file {sidecar_path(path).name} to verify it against",
                                "if you trust the file, load it with verify=False (it still loads with "
                                "weights_only=True), or save it again with save_checkpoint")


def _mismatch(path: Path, actual: str, recorded: list[str]) -> ChecksumMismatchError:
    return ChecksumMismatchError(path, f"its sha256 is {actual[:16]}…, but {sidecar_path(path).name} expects "
                                 f"{recorded[0][:16]}… (the bytes changed after saving: a copy, a disk or a "
                                 "download damaged them)", _RESTORE)


def verify_checksum(path: os.PathLike | str) -> str:
    """Check a file against its sha256 sidecar; return the digest, or raise naming both digests."""
    path = Path(path)
    _require_file(path)
    opened = _VerifiedFile(path, verify=True)
    with opened:
        return opened.digest


def _require_file(path: Path) -> None:
    if path.is_dir():
        formats.refuse(path)  # a Hugging Face or DCP folder: say so, and what opens it
        raise CheckpointNotFoundError(path, "is a directory, not a checkpoint file",
                                      "give the path of the file inside it (a sharded or distributed checkpoint "
                                      "has its own loader)")
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.is_file() and not p.name.startswith("."))[:6] \
            if path.parent.is_dir() else []
        problem = N_(f"no such file; the folder holds {', '.join(nearby)}") if nearby else N_("no such file")
        raise CheckpointNotFoundError(path, problem,
                                      "check the name, or run the notebook that saves it first")


def _sniff(f: BinaryIO, path: Path) -> str:
    """Tell the format from the first bytes: 'zip' (torch.save), 'legacy' (old torch.save), 'safetensors'."""
    start = f.tell()
    head = f.read(16)
    size = os.fstat(f.fileno()).st_size
    f.seek(start)
    if not head:
        raise CheckpointCorruptError(path, "it is empty (0 bytes): the save that wrote it did not finish", _RESTORE)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        (header_length,) = struct.unpack("<Q", head[:8])
        if 8 + header_length > size:
            raise CheckpointCorruptError(path, f"its safetensors header claims {header_length:,} bytes, but the file "
                                         f"has {size:,}: it is truncated or damaged", _RESTORE)
        return "safetensors"
    formats.refuse(path, f)  # ONNX, a plain pickle, NumPy, ...: what it is and what opens it, never "damaged"
    if head[0] == PICKLE_PROTOCOL_OPCODE:
        return "legacy"
    printable = all(32 <= b < 127 or b in b"\r\n\t" for b in head)
    found = f"text ({head.decode('ascii', 'replace')[:16]!r}…)" if printable else f"bytes {head[:8].hex(' ')}"
    raise CheckpointCorruptError(path, f"it is not a checkpoint: it starts with {found}, not with the signature "
                                 "of torch.save (PK, a zip archive) or of safetensors",
                                 "check that you opened the right file")


def _sniff_path(path: Path) -> str:
    with open(path, "rb") as f:
        return _sniff(f, path)


def _device_available(device: torch.device) -> bool:
    """True when this machine has `device` (cpu and meta always; an accelerator if present, with that index)."""
    if device.type in ("cpu", "meta"):
        return True
    backend = getattr(torch, device.type, None)
    if device.type == "mps":
        return torch.backends.mps.is_available()
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        return False
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    return device.index is None or device.index < count


def _map_targets(map_location: Any) -> list[torch.device]:
    """Return the devices a map_location sends tensors to (none for a function: its result cannot be known)."""
    if map_location is None or callable(map_location):
        return []
    values = map_location.values() if isinstance(map_location, Mapping) else [map_location]
    try:
        return [torch.device(v) for v in values]
    except (RuntimeError, TypeError):
        return []


def _storage_locations(f: BinaryIO) -> set[str]:
    """Return the device labels the file's tensors were saved with, reading them onto the CPU."""
    seen: set[str] = set()

    def record(storage, location):
        seen.add(location)
        return storage

    f.seek(0)
    try:
        torch.load(f, map_location=record, weights_only=True, mmap=False)
    except Exception:
        pass
    return seen


def _device_problem(f: BinaryIO, path: Path, map_location: Any) -> CheckpointDeviceError | None:
    """Explain a failed load by the devices involved, from the file's own labels (None when devices are not why)."""
    missing_targets = sorted({str(d) for d in _map_targets(map_location) if not _device_available(d)})
    if missing_targets:
        return CheckpointDeviceError(path, f"map_location sends its tensors to {', '.join(missing_targets)}, which "
                                     "this machine lacks", "load with map_location='cpu' (load_checkpoint's default)")
    if map_location is None:
        labels = _storage_locations(f)
        unavailable = sorted(loc for loc in labels if not _available_label(loc))
        if unavailable:
            return CheckpointDeviceError(path, f"its tensors were saved on {', '.join(unavailable)}, which this "
                                         "machine lacks, and map_location=None keeps them there",
                                         "load with map_location='cpu' (load_checkpoint's default)")
    return None


def _available_label(location: str) -> bool:
    try:
        return _device_available(torch.device(location))
    except RuntimeError:
        return False


def _load_safetensors(f: BinaryIO, path: Path, map_location: Any) -> dict:
    """Load a .safetensors file's tensors (and the lab's metadata, under "metadata") from the verified open file."""
    import safetensors
    import safetensors.torch

    data = f.read()
    try:
        tensors = safetensors.torch.load(data)
        header = _header_of(data)
    except (safetensors.SafetensorError, ValueError) as err:
        raise CheckpointCorruptError(path, f"safetensors cannot read it ({err})", _RESTORE) from err
    device = _safetensors_device(path, map_location)
    if device.type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    if header.get("format") == json.dumps(FORMAT):
        tensors["metadata"] = _decode_header(header)
    return tensors


def _header_of(data: bytes) -> dict[str, str]:
    """Return the `__metadata__` of safetensors bytes."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]).get("__metadata__") or {}


def _safetensors_device(path: Path, map_location: Any) -> torch.device:
    """Return where map_location sends a .safetensors file's tensors (they carry no device: they count as 'cpu')."""
    if map_location is None:
        return torch.device("cpu")
    if callable(map_location):
        raise TypeError(f"{display_path(path)}: map_location as a function works for torch.save files only; for "
                        "a .safetensors file give a device, e.g. map_location='cuda'")
    if isinstance(map_location, Mapping):
        map_location = map_location.get("cpu", "cpu")  # a dict maps saved locations, and safetensors' is the CPU
    device = torch.device(map_location)
    if not _device_available(device):
        raise CheckpointDeviceError(path, f"map_location sends its tensors to {device}, which this machine lacks",
                                    "load with map_location='cpu' (load_checkpoint's default)")
    return device


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
        lines = [(f"{display_path(self.path)}: {self.format}, {self.bytes:,} bytes "
                  f"({self.tensor_bytes:,} in {int((self.table['kind'] == 'tensor').sum()) if len(self.table) else 0} "
                  "tensors)"),
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
    formats.refuse(path)  # TorchScript, .pt2, ONNX, ...: what it is and what opens it (python -m labutils inspect)
    kind = _sniff_path(path)
    try:
        checksum = f"ok (sha256 {verify_checksum(path)[:16]}…)"
    except ChecksumMissingError:
        checksum = "no sidecar"
    except CheckpointCorruptError as err:
        checksum = f"MISMATCH: {err.problem}"
    if kind == "safetensors":
        header, data = _safetensors_header(path)
        rows, unsafe = _safetensors_rows(path, header, data), []
        metadata = _decode_header(header.get("__metadata__") or {})
        fmt = "safetensors"
    else:
        fmt = "torch.save zip archive" if kind == "zip" else "torch.save legacy pickle"
        unsafe = []
        try:
            with formats.quiet_format_warnings():  # meta tensors: shapes and dtypes, no data read or allocated
                obj = torch.load(path, map_location="meta", weights_only=True, mmap=False)
        except pickle.UnpicklingError as err:
            unsafe = unsafe_globals(path, err)
            if not unsafe:
                with open(path, "rb") as f:
                    raise _unreadable_pickle(f, path, err) from err
            obj = {}
        except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
            raise CheckpointCorruptError(path, f"torch cannot read it ({_first_line(err)})", _RESTORE) from err
        metadata = obj.pop("metadata", {}) if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) else {}
        rows = list(_rows(obj))
    import pandas as pd

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


def _safetensors_header(path: Path) -> tuple[dict, int]:
    """Read a .safetensors file's JSON header (each tensor's dtype, shape and offsets) and the size of the data after
    it, mapping nothing (safe_open maps the file: a rewrite in place would kill the process)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
            data = os.fstat(f.fileno()).st_size - 8 - length
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (struct.error, ValueError) as err:
        raise CheckpointCorruptError(path, f"its safetensors header cannot be read ({err})", _RESTORE) from err
    return header, data


def _safetensors_rows(path: Path, header: dict, data: int) -> list[tuple]:
    """One row per tensor, by name as safe_open lists them, after safetensors' own rule: the tensors' bytes follow
    one another from the header to the end of the file, each as long as its shape and dtype say."""
    rows, spans = [], []
    try:
        for key in sorted(k for k in header if k != "__metadata__"):
            info = header[key]
            shape = tuple(int(n) for n in info["shape"])
            begin, end = (int(n) for n in info["data_offsets"])
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            nbytes = math.prod(shape) * torch.empty(0, dtype=getattr(torch, dtype)).element_size()
            if end - begin != nbytes:
                raise ValueError(f"{key} has {end - begin} bytes, but its shape and dtype make {nbytes}")
            rows.append((key, "tensor", dtype, shape, math.prod(shape), nbytes, ""))
            spans.append((begin, end))
        ends = [0] + [end for _, end in sorted(spans)]
        if any(begin != ends[i] for i, (begin, _) in enumerate(sorted(spans))) or ends[-1] != data:
            raise ValueError(f"the tensors' offsets overlap, leave gaps, or do not end where the file does ({data:,} "
                             "bytes after the header)")
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointCorruptError(path, f"its safetensors header is damaged ({err})", _RESTORE) from err
    return rows


def zip_members(path: os.PathLike | str) -> pd.DataFrame:
    """List the members of a torch.save zip archive with their sizes (the archive's own table of contents)."""
    import pandas as pd

    with zipfile.ZipFile(path) as archive:
        return pd.DataFrame([(info.filename, info.file_size) for info in archive.infolist()],
                            columns=["member", "bytes"])
