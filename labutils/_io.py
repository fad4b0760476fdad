"""Atomic file writes and sha256 digests, the base of every save the lab makes."""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_MARK = ".tmp-"


def sha256_file(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: os.PathLike | str, write: Callable[[BinaryIO], object], *,
                 before_replace: Callable[[], object] | None = None) -> Path:
    """Write through `write(file)` to a temporary beside `path`, fsync it, then rename it onto `path`.

    `path` holds its old content or all of the new, never a mix; on any error the temporary is deleted.
    `before_replace` runs after the data is safe on disk and before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name tells a later save whether the writer is still alive (see remove_stale_temporaries).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}{os.getpid()}-")
    try:
        os.fchmod(fd, new_file_mode(path))  # mkstemp makes files private; a saved file gets the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: os.PathLike | str, data: bytes) -> Path:
    """Write bytes so that `path` holds either its old content or all of `data`, never a mix."""
    return atomic_write(path, lambda f: f.write(data))


def new_file_mode(path: Path) -> int:
    """Return the permissions a save should give `path`: its current ones, else those open() would give."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


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
