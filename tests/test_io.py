"""labutils._io and its neighbours: file names with glob characters, and the permissions a save gives a file."""
from __future__ import annotations

import os
import stat

import pytest

from labutils import _io
from labutils.large import drop_cache
from listing import names

# Legal file names on Linux that a glob pattern reads as wildcards: "[1]" is a set, "*" and "?" match anything.
ODD_NAME = "net[1]*?.pt"


def test_stale_temporaries_are_found_for_a_name_with_glob_characters_and_only_for_it(tmp_path):
    mine = tmp_path / f".{ODD_NAME}{_io.TMP_MARK}dead01"
    lookalike = tmp_path / f".net1-xy.pt{_io.TMP_MARK}dead02"  # what the name, read as a pattern, would match
    for temporary in (mine, lookalike):
        temporary.write_bytes(b"left by a killed save")
    assert _io.remove_stale_temporaries(tmp_path, ODD_NAME) == [mine.name]
    assert names(tmp_path) == [lookalike.name]
    _io.atomic_write_bytes(b"saved", tmp_path / ODD_NAME)
    assert names(tmp_path) == [lookalike.name, ODD_NAME], "a save cleans its own name's temporaries, no others"


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="drop_cache does nothing without posix_fadvise")
def test_drop_cache_reaches_a_file_whose_name_has_glob_characters(tmp_path, monkeypatch):
    for name in ("net[1].pt", "net[1].pt.sha256", "net1.pt"):
        (tmp_path / name).write_bytes(b"weights")
    advised, fadvise = [], os.posix_fadvise

    def recorded(fd, offset, length, advice):
        advised.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recorded)
    assert drop_cache(tmp_path / "net[1].pt")
    assert sorted(advised) == ["net[1].pt", "net[1].pt.sha256"], "the file and its sidecar; not net1.pt"


@pytest.fixture
def umask_027():
    """A umask other than the usual 022, for this test only."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_file_gets_the_mode_open_gives_and_an_existing_one_keeps_its_own(tmp_path, monkeypatch, umask_027):
    chmods, fchmod = [], os.fchmod
    monkeypatch.setattr(_io.os, "fchmod", lambda fd, mode: chmods.append(mode) or fchmod(fd, mode))
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")  # what open() gives a new file under this umask
    saved = _io.atomic_write_bytes(b"x", tmp_path / "saved.bin")
    assert stat.S_IMODE(saved.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640
    assert chmods == [], "the kernel applied the umask when it created the temporary: nothing to change after"
    saved.chmod(0o600)
    _io.atomic_write_bytes(b"y", saved)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and chmods == [0o600], "saving again keeps the file's mode"
    assert names(tmp_path) == ["plain.bin", "saved.bin"]
