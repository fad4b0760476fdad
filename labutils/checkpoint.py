"""Safe checkpoints: atomic saves with a sha256 sidecar, verified weights-only loads, inspection and diagnosis."""
from __future__ import annotations

import collections
import contextlib
import ctypes
import errno as errno_codes
import hashlib
import io
import json
import math
import os
import pickle
import re
import struct
import sys
import threading
import time
import types
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from . import sha256sums
from ._io import atomic_write, atomic_write_bytes, locked, remove_stale_temporaries, sha256_file  # noqa: F401
from .paths import display_path

if TYPE_CHECKING:  # pandas is imported where a table is made: a process that only saves and loads skips it
    import pandas as pd

FORMAT = "save-load-lab/1"
SIDECAR_SUFFIX = ".sha256"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_OPCODE = 0x80  # the first byte of torch's legacy (pre-1.6) format


# --- the errors ---------------------------------------------------------------------------------------------

class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message names the file, the problem and the fix.

    Every error of the family pickles (with its class, message and path), so that one raised in a DataLoader
    worker or a process pool reaches the parent intact.
    """

    errno_code: int | None = None  # set by the OSError members of the family

    def __init__(self, path: os.PathLike | str, problem: str, fix: str, *, code: int | None = None):
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        self.message = f"{display_path(self.path)}: {problem}. Fix: {fix}"
        super().__init__(self.message)
        if isinstance(self, OSError):
            self.errno = code if code is not None else self.errno_code
            self.strerror = problem
            self.filename = str(self.path)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (_rebuild_error, (type(self), self.path, self.problem, self.fix, self.message,
                                 getattr(self, "errno", None)))


def _rebuild_error(cls: type, path: Path, problem: str, fix: str, message: str, code: int | None) -> CheckpointError:
    """Unpickle a CheckpointError: the same class, path and message as in the process that raised it."""
    err = cls(path, problem, fix, code=code)
    err.message = message  # as shown where it was raised, even if this process's working folder differs
    return err


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """There is no checkpoint file at the path (nothing there, or a directory)."""

    errno_code = errno_codes.ENOENT


class CheckpointCorruptError(CheckpointError):
    """The file is not a complete checkpoint: empty, truncated, damaged, or not a checkpoint at all."""


class ChecksumMismatchError(CheckpointCorruptError):
    """The file's sha256 differs from the one recorded when it was saved."""


class ChecksumMissingError(CheckpointError):
    """The file has no sha256 sidecar to verify it against."""


class UnsafeCheckpointError(CheckpointError):
    """The file needs code beyond tensors and plain values to load (or would, if saved)."""


class CheckpointDeviceError(CheckpointError):
    """The file's tensors were saved on a device (or are mapped to one) that this machine lacks."""


class CheckpointWriteError(CheckpointError, OSError):
    """The checkpoint could not be written (permissions, a full disk); the old file is untouched."""

    errno_code = errno_codes.EIO


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
        writer = _HashingWriter(file)
        try:
            if safetensors:
                writer.write(payload)
            else:
                with _without_crc32():
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
    except BaseException as err:
        cause = _os_error(err)
        if cause is None:
            raise
        state_now = "the new file is in place and verifies" if replaced else "the previous file, if any, is unchanged"
        raise CheckpointWriteError(path, f"writing failed ({cause.strerror or cause}); {state_now}",
                                   "free disk space or fix the folder's permissions, then save again",
                                   code=cause.errno) from err
    return path


def check_loadable(value: Any, path: os.PathLike | str, where: str = "state") -> None:
    """Refuse, naming the key path and the type, what torch.load(weights_only=True) would refuse to load.

    The rule is torch's own, not a copy of it: the value (with every plain tensor replaced by None, so that this
    costs little) is pickled by torch.save into memory and read back by torch.load(weights_only=True). Only when
    that fails is the structure searched for the first part that fails on its own.
    """
    if _loads_weights_only(_skeleton(value)):
        return
    where, culprit = _culprit(value, where)
    name = f"{type(culprit).__module__}.{type(culprit).__qualname__}"
    if isinstance(culprit, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        what, fix = f"a function ({name})", "store data, not code: keep the function's name or settings as plain values"
    elif type(culprit).__module__ == "numpy":
        what, fix = f"a {name}", "store value.item() (a Python number) or torch.as_tensor(value)"
    else:
        what, fix = f"a {name}", ("store it as plain values (dict, list, str, numbers, tensors), e.g. dict(value), "
                                  "sorted(value), its state_dict() or dataclasses.asdict(value), and rebuild it when "
                                  "loading")
    raise UnsafeCheckpointError(path, f"{where} is {what}, which torch.load(weights_only=True) refuses to load", fix)


def _skeleton(value: Any) -> Any:
    """Return `value` with plain tensors replaced by None, keeping every container's exact type."""
    kind = type(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        return None
    if kind in (dict, collections.OrderedDict):
        return kind((k, _skeleton(v)) for k, v in value.items())
    if kind in (list, tuple):
        return kind(_skeleton(v) for v in value)
    return value


_TORCH_SAVE, _TORCH_LOAD = torch.save, torch.load  # the trial below uses torch's own, even where a test patches them


def _loads_weights_only(value: Any) -> bool:
    """True when torch.save(value) reads back with torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    try:
        _TORCH_SAVE(value, buffer)
        buffer.seek(0)
        _TORCH_LOAD(buffer, weights_only=True)
    except Exception:
        return False
    return True


def _culprit(value: Any, where: str) -> tuple[str, Any]:
    """Return the key path and value of the first part of `value` that torch.load(weights_only=True) refuses."""
    if isinstance(value, Mapping):
        children = []
        for key, item in value.items():
            children += [(f"{where}: the key {key!r}", key), (f"{where}[{key!r}]", item)]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        children = [(f"{where}[{i}]", item) for i, item in enumerate(items)]
    else:
        children = []
    for child_where, child in children:
        if not _loads_weights_only(_skeleton(child)):
            return _culprit(child, child_where)
    return where, value


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
    """A file wrapper that hashes every byte on its way to disk, so that a save is never read back to be hashed.

    A large write is cut into 2 MiB chunks, hashed in order on a second thread while the next ones are written
    (hashlib and the write both let go of the GIL); every 8 MiB the kernel is asked to start writing to the disk
    (`sync_file_range`, Linux), so that the final fsync finds little left to do and the disk works while the CPU
    hashes. Every chunk is hashed before write() returns: the caller may free or reuse its buffer then (torch.save
    does, for a tensor copied off a GPU).
    """

    CHUNK = 2 << 20  # small enough that the hash reads the chunk from the cache the write just filled
    WRITEBACK_EVERY = 8 << 20

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()
        self.hasher: ThreadPoolExecutor | None = None
        try:
            self.base = file.tell()  # where this save's first byte goes
        except (AttributeError, OSError, ValueError):
            self.base = None  # not a file on disk: nothing to start writing early
        self.written = self.flushed = 0  # bytes given to the file; bytes the kernel was asked to start writing

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if len(view) < self.CHUNK:
            self.digest.update(view)
            count = self.file.write(view)
            self.written += len(view)
        else:
            if self.hasher is None:
                self.hasher = ThreadPoolExecutor(1, thread_name_prefix="sha256")
            hashed = []
            try:
                for start in range(0, len(view), self.CHUNK):
                    chunk = view[start:start + self.CHUNK]
                    hashed.append(self.hasher.submit(self.digest.update, chunk))  # one thread: in order
                    self.file.write(chunk)
                    self.written += len(chunk)
                    self._start_writeback()
            finally:
                for job in hashed:
                    job.result()  # every chunk hashed before the caller may free or reuse the buffer
            count = len(view)
        return count

    def _start_writeback(self) -> None:
        """Ask the kernel to start writing what this save has written so far (it returns without waiting)."""
        if self.written - self.flushed < self.WRITEBACK_EVERY or _sync_file_range is None or self.base is None:
            return
        self.file.flush()  # a failure here (a full disk) is the save's failure: it propagates
        start, self.flushed = self.flushed, self.written
        try:
            _sync_file_range(self.file.fileno(), self.base + start, self.written - start, _SYNC_FILE_RANGE_WRITE)
        except (AttributeError, OSError, ValueError):
            pass  # only a head start: the fsync at the end makes the file durable either way

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if self.hasher is not None:
            self.hasher.shutdown()

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def _libc_function(name: str, argtypes: list):
    """Return a function of the C library, or None where it is missing (the two the lab calls are Linux's)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (AttributeError, OSError):
        return None
    function.argtypes = argtypes
    return function


def _libc_sync_file_range():
    """Return sync_file_range, which starts writing a range of a file to the disk without waiting; or None."""
    function = _libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
    if function is None:
        return None

    def call(fd: int, offset: int, count: int, flags: int) -> None:
        if function(fd, offset, count, flags) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return call


_sync_file_range = _libc_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>: start writing the dirty pages of the range, do not wait


class _CRC32Off:
    """Let torch.save skip the CRC-32 of every zip record while a lab save runs: the sha256 sidecar covers the file.

    torch.load never checks these CRCs (a flipped byte loads silently: notebook 08), and they are a large share of
    torch.save's time per GiB. The switch is torch's own and process-wide: the first lab save to start turns it off,
    the last to finish puts back what it was, so saves in several threads still run side by side. A plain
    torch.save in another thread meanwhile also writes CRCs of 0, which torch.load reads as before.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.saving = 0
        self.before = True

    @contextlib.contextmanager
    def __call__(self):
        with self.lock:
            if self.saving == 0:
                self.before = torch.serialization.get_crc32_options()
                torch.serialization.set_crc32_options(False)
            self.saving += 1
        try:
            yield
        finally:
            with self.lock:
                self.saving -= 1
                if self.saving == 0:
                    torch.serialization.set_crc32_options(self.before)


_without_crc32 = _CRC32Off()


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

    The file is opened once. Its sha256 is checked on that open file before torch reads any of it, and torch then
    loads that same open file (through /proc/self/fd on Linux), so the bytes loaded are the bytes checked, even if
    a save replaces the file meanwhile. The check reads the file from the disk once; the load finds its pages in
    memory. With mmap=True the tensors are those pages, mapped as torch.load(mmap=True) maps them and read when
    first used: with a model built on the meta device and load_state_dict(..., assign=True), loading costs no
    memory beyond the file's pages. Such tensors change (or the process crashes) if the file is later rewritten
    in place, as torch.save to the same path does (save_checkpoint writes a new file instead). By default each
    tensor gets memory of its own, copied from those pages.
    """
    path = Path(path)
    if not isinstance(mmap, bool):
        raise TypeError(f"mmap must be True or False, not {mmap!r}")
    _require_file(path)
    verified = _VerifiedFile(path, verify)
    with verified as f:
        kind = _sniff(f, path)
        if kind == "safetensors":
            if mmap:
                raise ValueError(f"{display_path(path)}: mmap=True maps torch.save files; for a .safetensors file "
                                 "use safetensors.safe_open, which maps the file and reads only the tensors asked for")
            return _load_safetensors(f, path, map_location)
        if mmap and kind == "legacy":
            raise CheckpointCorruptError(path, "it was saved in torch's format from before 1.6, which cannot be mapped",
                                         "load it with mmap=False, then save it again with save_checkpoint")
        try:
            if kind == "zip" and not _is_meta(map_location):  # the pages read once, kept or copied
                state = torch.load(_same_file(f, path), weights_only=True, mmap=True,
                                   map_location=map_location if mmap else _own_memory(map_location))
            else:
                state = torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            if "Unsupported global" in str(err):
                raise _unsafe(path, err) from err
            raise CheckpointCorruptError(path, f"its pickle is damaged ({_first_line(err)})", _RESTORE) from err
        except RuntimeError as err:
            device_error = _device_problem(f, path, map_location)
            if device_error is not None:
                raise device_error from err
            raise CheckpointCorruptError(path, f"torch cannot read it ({_first_line(err)})", _RESTORE) from err
        except (EOFError, OSError, KeyError, ValueError, IndexError, struct.error) as err:
            raise CheckpointCorruptError(path, f"torch cannot read it ({type(err).__name__}: "
                                         f"{_first_line(err)})", _RESTORE) from err
        _still_the_same(f, path, verified.opened)
        return state


_RESTORE = "the file is incomplete or damaged: restore it from a copy, or save it again from the model"


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


def _still_the_same(f: BinaryIO, path: Path, opened: os.stat_result) -> None:
    """Raise unless the open file is as it was when opened, and is still the file at `path` if torch opened that."""
    now = os.fstat(f.fileno())
    if (now.st_size, now.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
        raise CheckpointCorruptError(path, "it was written to while it was being loaded (another program saved to "
                                     "the same file in place, as torch.save does)",
                                     "wait until that program has finished, then load it again; save with "
                                     "save_checkpoint, which never writes into the file being read")
    if _same_file(f, path) == str(path) and _inode(path) != now.st_ino:
        raise CheckpointCorruptError(path, "it was replaced while it was being loaded", "load it again")


def _is_meta(map_location: Any) -> bool:
    try:
        return isinstance(map_location, (str, torch.device)) and torch.device(map_location).type == "meta"
    except RuntimeError:
        return False


def _own_memory(map_location: Any):
    """Return a map_location for torch.load(mmap=True) that restores as `map_location` would, into memory of its own.

    A storage that stays on the CPU would still be the file's mapped pages: it is copied. Either way the pages it came
    from are then handed back to the system (so that the peak memory of a load is the weights, not twice them).
    """
    def restore(storage, location):
        if callable(map_location):
            moved = map_location(storage, location)
            if moved is None:
                moved = torch.serialization.default_restore_location(storage, location)
        else:
            if map_location is None:
                target = location
            elif isinstance(map_location, Mapping):
                target = map_location.get(location, location)
            else:
                target = str(map_location)
            moved = torch.serialization.default_restore_location(storage, target)
        if moved.device.type == "cpu" and moved.data_ptr() == storage.data_ptr():
            moved = moved.clone()
        _release_pages(storage)  # copied (to the CPU or to a device): the mapped pages are not needed any more
        return moved

    return restore


def _release_pages(storage) -> None:
    """Drop the mapped file pages a storage covers from this process (they stay in the page cache); Linux only."""
    if _madvise is None or storage.nbytes() < _PAGE:
        return
    start = -(-storage.data_ptr() // _PAGE) * _PAGE  # whole pages inside the storage only
    end = (storage.data_ptr() + storage.nbytes()) // _PAGE * _PAGE
    if end > start:
        _madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


_madvise = _libc_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])
_MADV_DONTNEED = 4  # from <sys/mman.h>: the next read of these pages comes from the file again
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _VerifiedFile:
    """Open a checkpoint and, if asked, check the open file against its sidecar (retrying past a concurrent save)."""

    def __init__(self, path: Path, verify: bool):
        self.path, self.verify = path, verify
        self.file: BinaryIO | None = None
        self.digest: str | None = None
        self.opened: os.stat_result | None = None  # the file as it was when opened, before it was checked

    def __enter__(self) -> BinaryIO:
        for attempt in range(3):
            recorded = _recorded_digests(self.path) if self.verify else []
            if self.verify and not recorded:
                raise _missing_sidecar(self.path)
            self.file = open(self.path, "rb")
            self.opened = os.fstat(self.file.fileno())
            if not self.verify:
                return self.file
            actual = sha256sums.file_digest(self.file)
            if actual in recorded:
                self.digest = actual
                self.file.seek(0)
                return self.file
            self.file.close()
            self.file = None
            if attempt < 2 and (_recorded_digests(self.path) != recorded or _inode(self.path) != self.opened.st_ino):
                continue  # another save replaced the file or its sidecar meanwhile: check the new pair
            raise _mismatch(self.path, actual, recorded)
        raise AssertionError("unreachable")

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


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
        raise CheckpointNotFoundError(path, "is a directory, not a checkpoint file",
                                      "give the path of the file inside it (a sharded or distributed checkpoint "
                                      "has its own loader)")
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.is_file() and not p.name.startswith("."))[:6] \
            if path.parent.is_dir() else []
        hint = f"; the folder holds {', '.join(nearby)}" if nearby else ""
        raise CheckpointNotFoundError(path, f"no such file{hint}",
                                      "check the name, or run the notebook that saves it first")


def _sniff(f: BinaryIO, path: Path) -> str:
    """Tell the format from the first bytes: 'zip' (torch.save), 'legacy' (old torch.save), 'safetensors'."""
    start = f.tell()
    size = os.fstat(f.fileno()).st_size
    head = f.read(16)
    f.seek(start)
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
        torch.load(f, map_location=record, weights_only=True)
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


def _unsafe_globals(path: Path, err: Exception) -> list[str]:
    """Return the globals (classes, functions) a file needs beyond what weights_only allows, sorted; run none."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # the error text names at least the first one
        return sorted(set(re.findall(r"Unsupported global: GLOBAL (\S+)", str(err))))


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
    kind = _sniff_path(path)
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
        return _decode_header(f.metadata() or {})


# --- diagnosing -------------------------------------------------------------------------------------------

PREFIXES = {
    "module.": "saved from nn.DataParallel or DistributedDataParallel",
    "_orig_mod.": "saved from a torch.compile'd model",
    "model.": "saved from a wrapper module (Lightning-style `model.` attribute)",
}


def diagnose(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> pd.DataFrame:
    """Return a table of the keys that keep `state_dict` from loading into `model`, with the likely cause and fix."""
    import pandas as pd

    expected = model.state_dict()
    columns = ["key", "problem", "in the model", "in the file", "likely cause", "fix"]
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"diagnose needs a state_dict (a dict of tensors), not {type(state_dict).__name__}")
    nested = [k for k, v in state_dict.items() if isinstance(v, Mapping)]
    if nested and not any(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return pd.DataFrame([("(whole file)", "not a state_dict", f"{len(expected)} tensors",
                              f"keys {', '.join(map(str, state_dict))}",
                              "this is a full checkpoint, with the state_dict inside it",
                              f"pass checkpoint[{nested[0]!r}]")], columns=columns)
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
                cause = ((f"a different head: the file's has {found[key].shape[0]} outputs, the model's "
                          f"{expected[key].shape[0]}"),
                         ("drop the head's keys from the state_dict and load the rest with strict=False "
                          "(then train the new head)"))
            else:
                cause = ("a different architecture (layer sizes changed)",
                         "build the model with the constructor arguments the file was saved with")
            rows.append((key, "wrong shape", _shape(expected[key]), _shape(found[key]), *cause))
        elif key in found and found[key].dtype != expected[key].dtype:
            rows.append((key, "different dtype", str(expected[key].dtype), str(found[key].dtype),
                         "saved in another precision", ("none needed: load_state_dict converts the values "
                                                         "(precision lost when saving stays lost)")))
    return pd.DataFrame(rows, columns=columns)


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))


def _prefix_cause(expected: list[str], found: list[str]) -> tuple[str, str] | None:
    """Explain a key mismatch that adding or removing one prefix would fix."""
    for prefix in _candidate_prefixes(found):
        if sorted(k.removeprefix(prefix) for k in found) == sorted(expected):
            cause = PREFIXES.get(prefix,
                                 f"saved from a model wrapped in another module (every key starts with {prefix!r})")
            return (cause, (f"torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, {prefix!r}) "
                            "(or save the unwrapped model: model.module / model._orig_mod)"))
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
            ("build the model the file was saved from; or, if the new layer should start fresh, load with "
             "strict=False and check that only these keys are missing"))


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
    import pandas as pd

    with zipfile.ZipFile(path) as archive:
        return pd.DataFrame([(info.filename, info.file_size) for info in archive.infolist()],
                            columns=["member", "bytes"])
