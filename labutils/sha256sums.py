"""The `sha256sum` file format: one parser and writer for checkpoint sidecars, SHA256SUMS files and tools/predict.py.

This module needs only Python's standard library and imports nothing from the lab, so that tools/predict.py,
which runs where the lab is not installed, loads this very file (copy it beside predict.py when you deploy).
"""
from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

CHUNK = 1 << 20
_LINE = re.compile(r"(\\?)([0-9a-fA-F]{64}) ([ *])(.+)")


class FormatError(ValueError):
    """A checksum file has a line that is not `<sha256>  <name>` (or `<sha256> *<name>`)."""


def parse(text: str) -> list[tuple[str, str]]:
    """Return the (digest, name) pairs of a `sha256sum` listing, in order; raise FormatError naming a bad line.

    Reads both of sha256sum's markers (two spaces: text mode, ` *`: binary mode; they hash the same bytes on
    every system this lab runs on) and its escaped names (a line starting with a backslash).
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.rstrip("\r"))
        if match is None:
            raise FormatError(f"line {number} is not '<sha256>  <file name>': {line[:80]!r}")
        escaped, digest, _mode, name = match.groups()
        if escaped:
            name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "\\": "\\"}.get(m.group(1), m.group(0)), name)
        entries.append((digest.lower(), name))
    return entries


def line(digest: str, name: str) -> str:
    """Return one line of a listing, as `sha256sum` writes it (escaping a name with a newline or backslash)."""
    if "\\" in name or "\n" in name or "\r" in name:
        return "\\" + digest + "  " + name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") + "\n"
    return f"{digest}  {name}\n"


PIPELINE_FROM = 32 << 20  # below this, a second thread costs more than it saves
PIPELINE_CHUNK = 4 << 20
PIPELINE_BUFFERS = 3  # one being hashed, one being read, one spare so that neither waits for the other


def file_digest(file: BinaryIO) -> str:
    """Return the hex sha256 of an open binary file from its current position to its end, streamed.

    A large file is read and hashed at once: while a 4 MiB chunk is hashed on a second thread, the next ones are
    read into the other buffers (hashlib and the read both let go of the GIL), so a cold file is checked in about
    the time of the slower of the disk and the hash, not of the two added. The file's position ends at its end,
    as after hashlib.file_digest.
    """
    try:
        fd = file.fileno()
        start, size = file.tell(), os.fstat(fd).st_size
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. BytesIO)
        return hashlib.file_digest(file, "sha256").hexdigest()
    if size - start < PIPELINE_FROM or not hasattr(os, "preadv"):
        return hashlib.file_digest(file, "sha256").hexdigest()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, start, 0, os.POSIX_FADV_SEQUENTIAL)  # a larger read-ahead window for this file
    digest = hashlib.sha256()
    buffers = [bytearray(PIPELINE_CHUNK) for _ in range(PIPELINE_BUFFERS)]
    pending: list[Future | None] = [None] * PIPELINE_BUFFERS
    offset, turn = start, 0
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:  # one thread: the chunks stay in order
        try:
            while True:
                if pending[turn] is not None:
                    pending[turn].result()  # this buffer's chunk is hashed: it may be refilled
                count = os.preadv(fd, [buffers[turn]], offset)
                if count == 0:
                    break
                pending[turn] = hasher.submit(digest.update, memoryview(buffers[turn])[:count])
                offset, turn = offset + count, (turn + 1) % PIPELINE_BUFFERS
        finally:
            for job in pending:
                if job is not None:
                    job.result()
    file.seek(offset)
    return digest.hexdigest()


def read_verified(path, expected: str) -> bytes:
    """Read a file once and return its bytes if their sha256 is `expected`; the bytes checked are the bytes used.

    Raises ValueError naming the file when the digest differs.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        data = f.read()
    digest.update(data)
    if digest.hexdigest() != expected.lower():
        raise ValueError(f"{path}: its sha256 is {digest.hexdigest()[:16]}…, the listing says {expected[:16]}…")
    return data
