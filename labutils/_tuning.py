"""How the lab's saves keep up with the disk: the operating-system tuning under labutils.checkpoint.

None of this changes what a save writes or what a load returns; each piece only makes a save faster, and
benchmarks/checkpoint_io.py measures what each one is worth on a given machine:
- HashingWriter hashes every byte on its way to the disk (a save is never read back to be hashed), on a second
  thread for large writes, and asks the kernel to start writing early (sync_file_range, Linux);
- without_crc32 lets torch.save skip the CRC-32 of its zip records, which torch.load never checks: the sha256
  sidecar covers the file.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import torch


class HashingWriter:
    """A file wrapper that hashes every byte on its way to disk, so that a save is never read back to be hashed.

    A large write is cut into 2 MiB chunks, hashed in order on a second thread while the next ones are written
    (hashlib and the write both let go of the GIL); every 8 MiB the kernel is asked to start writing to the disk
    (`sync_file_range`, Linux), so that the final fsync finds little left to do and the disk works while the CPU
    hashes. Every chunk is hashed before write() returns: the caller may free or reuse its buffer then (torch.save
    does, for a tensor copied off a GPU).
    """

    CHUNK = 2 << 20  # small enough that the hash reads the chunk from the cache the write just filled
    WRITEBACK_EVERY = 8 << 20
    THREADED = True  # False hashes each chunk in the writing thread (benchmarks/checkpoint_io.py measures both)

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
            if self.hasher is None and self.THREADED:
                self.hasher = ThreadPoolExecutor(1, thread_name_prefix="sha256")
            hashed = []
            try:
                for start in range(0, len(view), self.CHUNK):
                    chunk = view[start:start + self.CHUNK]
                    if self.hasher is None:
                        self.digest.update(chunk)
                    else:
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
        if self.written - self.flushed < self.WRITEBACK_EVERY or sync_file_range is None or self.base is None:
            return
        self.file.flush()  # a failure here (a full disk) is the save's failure: it propagates
        start, self.flushed = self.flushed, self.written
        try:
            sync_file_range(self.file.fileno(), self.base + start, self.written - start, SYNC_FILE_RANGE_WRITE)
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
    """Return a function of the C library, or None where it is missing (sync_file_range is Linux's)."""
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


sync_file_range = _libc_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>: start writing the dirty pages of the range, do not wait


class CRC32Off:
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


without_crc32 = CRC32Off()
