"""Atomic file writes, folder locks and sha256 digests: the base of every save the lab makes.

Saves into one folder take turns: each holds the folder's lock, an advisory `flock` on the folder itself, plus a
thread lock inside the process. `flock` belongs to the open file, so it separates threads of one process as
well as processes; the kernel drops it when its holder dies, so a killed save never leaves it held; and it
needs no file of its own, so a model folder stays clean. Where a file system refuses `flock` on a folder (NFS,
which carries `flock` to the server as a byte-range lock, needs a file opened for writing), the lock is the
hidden file `.lab-save.lock` in the folder instead; writers on other machines then see it too, where process
ids would mean nothing. A temporary is deleted as stale only while the folder's lock is held, because every live
writer holds that lock from creating its temporary until the rename. `flock` comes from `fcntl`, which exists
wherever the lab runs: Linux, macOS, and Windows under WSL2 (docs/INSTRUCTOR.md). Native Windows has no `fcntl`
and is not supported.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from . import sha256sums

TMP_MARK = ".tmp-"
LOCK_FILE = ".lab-save.lock"  # only where a folder cannot be flock'ed itself


def sha256_file(path: os.PathLike | str) -> str:
    """Return the hex sha256 of a file, streamed in chunks."""
    with open(path, "rb") as f:
        return sha256sums.file_digest(f)


# --- locks ----------------------------------------------------------------------------------------------------

class _FolderLock:
    """One folder's lock in this process: a re-entrant thread lock and the descriptor it holds flock'ed while taken."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.fd: int | None = None
        self.depth = 0


_registry_guard = threading.Lock()
_registry: dict[str, _FolderLock] = {}


def _flock(folder: Path, blocking: bool) -> int | None:
    """flock the folder (or, where that is refused, its lock file); return the descriptor, None if it is taken."""
    flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
    try:
        return _flock_fd(os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)), flags)
    except OSError:
        pass
    # e.g. NFS, where a lock is a byte-range lock on the server, which needs a file opened for writing
    return _flock_fd(os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666), flags)


def _flock_fd(fd: int, flags: int) -> int | None:
    """flock an open descriptor: return it, or close it and return None if another holder has the lock."""
    try:
        fcntl.flock(fd, flags)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def locked(path: os.PathLike | str, *, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
    """Hold the write lock of the folder `path` is in (re-entrant in a thread)."""
    return folder_locked(Path(path).absolute().parent, blocking=blocking)


@contextlib.contextmanager
def folder_locked(folder: os.PathLike | str, *, blocking: bool = True) -> Iterator[bool]:
    """Hold a folder's write lock (re-entrant in a thread); yield False if `blocking` is off and it is taken."""
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    with _registry_guard:
        lock = _registry.setdefault(str(folder), _FolderLock())
    if not lock.thread_lock.acquire(blocking=blocking):
        yield False
        return
    try:
        if lock.depth == 0:
            fd = _flock(folder, blocking)
            if fd is None:
                yield False
                return
            lock.fd = fd
        lock.depth += 1
        try:
            yield True
        finally:
            lock.depth -= 1
            if lock.depth == 0 and lock.fd is not None:
                os.close(lock.fd)  # closing the descriptor releases the flock
                lock.fd = None
    finally:
        lock.thread_lock.release()


# --- temporaries ------------------------------------------------------------------------------------------------

def _temporaries(folder: Path, name: str | None) -> dict[str, list[Path]]:
    """Return the lab's temporaries in `folder` (of `name` only, if given), grouped by the file they were to become."""
    found: dict[str, list[Path]] = {}
    pattern = f".{glob.escape(name)}{TMP_MARK}*" if name else f".*{TMP_MARK}*"
    for tmp in folder.glob(pattern):
        match = re.fullmatch(rf"\.(.+?){re.escape(TMP_MARK)}[A-Za-z0-9_-]+", tmp.name)
        if match and (name is None or match.group(1) == name):
            found.setdefault(match.group(1), []).append(tmp)
    return found


def remove_stale_temporaries(folder: os.PathLike | str, name: str | None = None) -> list[str]:
    """Delete temporaries that dead saves left in `folder` (of `name` only, if given); return their names.

    They are dead when the folder's lock can be taken: every live save holds it. (A save calls this itself, holding
    the lock; from outside a save it gives up at once, deleting nothing, while another save is running.)
    """
    folder = Path(folder)
    found = _temporaries(folder, name)
    if not found:
        return []
    removed = []
    try:
        with folder_locked(folder, blocking=False) as free:
            if not free:
                return []  # a save in this folder is running, in this process or another
            for tmp in (t for temporaries in found.values() for t in temporaries):
                tmp.unlink(missing_ok=True)
                removed.append(tmp.name)
    except PermissionError:
        return []  # a read-only folder: nothing can be cleaned, and nothing needs to be
    return sorted(removed)


# --- atomic writes ----------------------------------------------------------------------------------------------

def atomic_write(path: os.PathLike | str, write: Callable[[BinaryIO], object], *,
                 before_replace: Callable[[], object] | None = None) -> Path:
    """Write through `write(file)` to a temporary beside `path`, fsync it, then rename it onto `path`.

    `path` holds its old content or all of the new, never a mix; on any error the temporary is deleted. The path's
    lock is held throughout, and stale temporaries of `path` are removed first. `before_replace` runs after the
    data is safe on disk and before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        remove_stale_temporaries(path.parent, path.name)
        mode = _mode_of(path)
        tmp = path.with_name(f".{path.name}{TMP_MARK}{secrets.token_hex(8)}")
        # 0o666, as open() creates files: the kernel applies the umask (or the folder's default ACL)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:  # owns fd from here: closed even if fchmod fails
                if mode is not None:
                    os.fchmod(f.fileno(), mode)  # saving over a file keeps its permissions
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if before_replace is not None:
                before_replace()
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    return path


def atomic_write_bytes(data: bytes, path: os.PathLike | str) -> Path:
    """Write `data` so that `path` holds its old content or all of `data`, never a mix (torch.save's order)."""
    if isinstance(data, (str, os.PathLike)) and isinstance(path, (bytes, bytearray)):
        raise TypeError("atomic_write_bytes takes the bytes first and the path second, as torch.save(obj, f) does")
    return atomic_write(path, lambda f: f.write(data))


def _mode_of(path: Path) -> int | None:
    """Return the permissions of the file at `path`, or None when there is none yet."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable by syncing its directory (a no-op where the OS does not allow it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
