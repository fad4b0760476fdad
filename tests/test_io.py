"""labutils._io and its neighbours: file names with glob characters, and the permissions a save gives a file."""
from __future__ import annotations

import os

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

