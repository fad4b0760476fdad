"""Two writers of one checkpoint path, and cleaning temporaries: never a torn pair, never a live writer's file."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

from labutils._io import TMP_MARK, atomic_write, remove_stale_temporaries
from labutils.checkpoint import load_checkpoint, save_checkpoint, verify_checksum
from labutils.paths import REPO_ROOT
from listing import names

ROUNDS = 50


def _writer(index: int, path: str, barrier, rounds: int) -> None:
    """Save to `path` in step with the other writer: both start each round at the barrier."""
    generator = torch.Generator().manual_seed(index)
    for round_ in range(rounds):
        state = {"writer": index, "round": round_, "weights": torch.randn(1024, 1024, generator=generator)}  # 4 MiB
        barrier.wait(timeout=120)
        save_checkpoint(state, path)
        barrier.wait(timeout=120)  # both saves done: the parent checks the file
        barrier.wait(timeout=120)  # the parent has checked: next round


def _temporaries(folder: Path) -> list[str]:
    return [name for name in names(folder) if TMP_MARK in name]


def test_two_processes_saving_one_path_leave_one_complete_checkpoint(tmp_path):
    path = tmp_path / "net.pt"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    writers = [context.Process(target=_writer, args=(i, str(path), barrier, ROUNDS)) for i in range(2)]
    winners = []
    try:
        for writer in writers:
            writer.start()
        for round_ in range(ROUNDS):
            barrier.wait(timeout=300)  # the writers start saving
            barrier.wait(timeout=120)  # both saves returned
            verify_checksum(path)
            loaded = load_checkpoint(path)
            assert loaded["round"] == round_ and loaded["writer"] in (0, 1)
            assert names(tmp_path) == ["net.pt", "net.pt.sha256"], f"round {round_}: {names(tmp_path)}"
            winners.append(loaded["writer"])
            barrier.wait(timeout=120)
        for writer in writers:
            writer.join(timeout=120)
            assert writer.exitcode == 0
    finally:
        barrier.abort()
        for writer in writers:
            if writer.is_alive():
                writer.kill()
            writer.join(timeout=10)
    assert _temporaries(tmp_path) == []
    print(f"{ROUNDS} rounds: writer 0 saved last {winners.count(0)} times, writer 1 {winners.count(1)} times; "
          "every round ended with one complete checkpoint whose sidecar verifies")


def test_a_live_writers_temporary_in_another_thread_is_kept(tmp_path):
    """The old rule deleted any temporary carrying this process's id: another thread's live save among them."""
    target = tmp_path / "net.pt"
    writing, release = threading.Event(), threading.Event()
    errors = []

    def slow_write(f):
        f.write(b"half")
        writing.set()
        assert release.wait(timeout=60)
        f.write(b" and the rest")

    def save() -> None:
        try:
            atomic_write(target, slow_write)
        except BaseException as err:  # reported below
            errors.append(err)

    thread = threading.Thread(target=save)
    thread.start()
    other = threading.Thread(target=save_checkpoint, args=({"other": 1}, tmp_path / "other.pt"))
    try:
        assert writing.wait(timeout=60)
        live = _temporaries(tmp_path)
        assert len(live) == 1
        assert remove_stale_temporaries(tmp_path) == [] and _temporaries(tmp_path) == live
        other.start()  # a save of another file into the folder waits for its turn
        other.join(timeout=1)
        assert other.is_alive() and _temporaries(tmp_path) == live
    finally:
        release.set()
        thread.join(timeout=60)
        if other.ident is not None:
            other.join(timeout=60)
    assert not errors and target.read_bytes() == b"half and the rest" and _temporaries(tmp_path) == []
    assert (tmp_path / "other.pt").is_file()


LIVE_WRITER = textwrap.dedent("""
    import sys
    from labutils._io import atomic_write

    def write(f):
        f.write(b"partial")
        f.flush()
        print("writing", flush=True)
        sys.stdin.read()  # hold the save open until the test kills this process

    atomic_write(sys.argv[1], write)
""")


def test_another_processs_live_temporary_is_kept_and_a_dead_ones_removed(tmp_path):
    target = tmp_path / "net.pt"
    child = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(target)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert child.stdout.readline().strip() == "writing"
        live = _temporaries(tmp_path)
        assert len(live) == 1
        assert remove_stale_temporaries(tmp_path) == [], "a live writer's temporary was deleted"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        assert _temporaries(tmp_path) == live, "a killed save leaves its temporary"
        assert remove_stale_temporaries(tmp_path) == live, "and the next cleaning removes it"
    finally:
        child.kill()
        child.wait(timeout=60)
    assert _temporaries(tmp_path) == []


def test_a_temporary_named_after_a_live_process_id_is_still_stale(tmp_path):
    """On a shared file system process ids mean nothing: the old rule kept this forever, because pid 1 is alive here."""
    stale = tmp_path / f".net.pt{TMP_MARK}1-abcd1234"
    stale.write_bytes(b"left by a save on another machine, long dead")
    assert remove_stale_temporaries(tmp_path) == [stale.name]
    assert names(tmp_path) == []


def test_cleaning_never_touches_files_that_are_not_temporaries(tmp_path):
    keep = [".hidden", "net.pt", ".net.pt.tmp-", "a.tmp-1"]
    for name in keep:
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == []
    assert names(tmp_path) == sorted(keep)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_writer_waits_for_the_other_and_never_sees_a_torn_pair(tmp_path):
    """Threads of one process saving one path in a loop, with a reader verifying all the while."""
    path = tmp_path / "net.pt"
    save_checkpoint({"n": -1}, path)
    stop, problems = threading.Event(), []

    def write(index: int) -> None:
        try:
            for n in range(30):
                save_checkpoint({"n": n, "writer": index, "w": torch.full((256, 256), float(n))}, path)
        except BaseException as err:
            problems.append(err)

    def read() -> None:
        while not stop.is_set():
            try:
                load_checkpoint(path)
            except BaseException as err:
                problems.append(err)
                return

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    reader.join(timeout=60)
    assert not problems, problems[:1]
    assert load_checkpoint(path)["n"] == 29 and _temporaries(tmp_path) == []


def test_where_a_folder_cannot_be_locked_a_lock_file_serves(tmp_path, monkeypatch):
    """NFS refuses flock on a folder opened for reading: the hidden lock file takes over, with the same guarantees."""
    import errno
    import stat

    from labutils import _io

    real_flock = _io.fcntl.flock

    def no_folder_locks(fd, flags):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real_flock(fd, flags)

    monkeypatch.setattr(_io.fcntl, "flock", no_folder_locks)
    stale = tmp_path / f".net.pt{TMP_MARK}dead1234"
    stale.write_bytes(b"left by a killed save")
    save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    assert names(tmp_path) == [_io.LOCK_FILE, "net.pt", "net.pt.sha256"]
    with _io.folder_locked(tmp_path):  # held, as by a save in another thread
        (tmp_path / stale.name).write_bytes(b"a live save's temporary")
        result: list = []
        holder = threading.Thread(target=lambda: result.append(remove_stale_temporaries(tmp_path)))
        holder.start()
        holder.join(timeout=60)
        assert result == [[]], "another thread must not clean while the lock is held"
    assert remove_stale_temporaries(tmp_path) == [stale.name]
