"""The errors of labutils.checkpoint: one family, each naming the file, the problem and the fix.

Catch CheckpointError for any of them. The not-found and write errors are also OSErrors (FileNotFoundError, and
OSError with an errno), so code written for open() keeps working.
"""
from __future__ import annotations

import errno as errno_codes
import os
from pathlib import Path

from .i18n import N_, translate, translate_parts
from .paths import display_path


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
        self.where = display_path(self.path)
        self.message = f"{self.where}: {problem}. Fix: {fix}"
        super().__init__(self.message)
        if isinstance(self, OSError):
            self.errno = code if code is not None else self.errno_code
            self.strerror = problem
            self.filename = str(self.path)

    def __str__(self) -> str:
        """The message in the lab's language: after labutils.set_language("zh-CN"), the problem and the fix in
        Chinese (`message`, `problem` and `fix` stay English, for code that reads them)."""
        if self.message != f"{self.where}: {self.problem}. Fix: {self.fix}":  # made in another process
            return translate(self.message)
        return translate_parts(N_("{0}: {1}. Fix: {2}"), self.where, self.problem, self.fix)

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


class NotACheckpointError(CheckpointCorruptError):
    """A valid file of another format (TorchScript, ONNX, ...), not a checkpoint: the fix names the call that opens it.

    A CheckpointCorruptError, so that `except` clauses written before it existed still catch it.
    """


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


# Their public home is labutils.checkpoint, where the notebooks import and catch them: tracebacks name it.
for _error in (CheckpointError, CheckpointNotFoundError, CheckpointCorruptError, NotACheckpointError,
               ChecksumMismatchError, ChecksumMissingError, UnsafeCheckpointError, CheckpointDeviceError,
               CheckpointWriteError):
    _error.__module__ = "labutils.checkpoint"
