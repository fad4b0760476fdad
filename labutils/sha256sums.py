"""The `sha256sum` file format: one parser and writer for checkpoint sidecars, SHA256SUMS files and tools/predict.py.

This module needs only Python's standard library and imports nothing from the lab, so that tools/predict.py,
which runs where the lab is not installed, loads this very file (copy it beside predict.py when you deploy).
"""
from __future__ import annotations

import hashlib
import re
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


def file_digest(file: BinaryIO) -> str:
    """Return the hex sha256 of an open binary file from its current position, streamed (never read whole)."""
    return hashlib.file_digest(file, "sha256").hexdigest()


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
