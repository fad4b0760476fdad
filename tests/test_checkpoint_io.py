"""The fast paths of save_checkpoint and load_checkpoint keep every promise of the slow ones.

save_checkpoint skips torch's CRC-32 (the sha256 covers the file), hashes on a second thread while it writes and
starts the disk early (labutils._tuning); load_checkpoint checks the sha256 in one pipelined read, then reads the
checked open file (or maps it, with mmap=True). benchmarks/checkpoint_io.py measures the speed; these tests
check what must not change: the bytes, the checks, the errors, and files written before.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import resource
import runpy
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

import labutils.checkpoint as ck
from labutils import _tuning, sha256sums
from labutils.checkpoint import (
    CheckpointCorruptError, CheckpointWriteError, ChecksumMismatchError, load_checkpoint, save_checkpoint,
    sidecar_path,
)
from labutils.large import WideMLP
from labutils.paths import REPO_ROOT
from listing import names

FIXTURES = Path(__file__).parent / "fixtures"
BIG = sha256sums.PIPELINE_FROM + 3 * _tuning.HashingWriter.WRITEBACK_EVERY + 12_345  # every threaded path, a ragged end


def _big_state(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(BIG // 4, generator=generator), "b": torch.randn(10, generator=generator), "epoch": seed}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- saving -----------------------------------------------------------------------------------------------

def test_a_big_save_is_hashed_exactly_and_torch_alone_loads_it(tmp_path):
    state = _big_state()
    path = save_checkpoint(state, tmp_path / "big.pt")
    assert sidecar_path(path).read_text() == f"{_sha256(path)}  big.pt\n", "the digest of the bytes on the disk"
    code = ("import sys; sys.modules['labutils'] = None\n"  # the lab cannot be imported: torch alone reads it
            "import torch\n"
            f"state = torch.load({str(path)!r}, weights_only=True)\n"
            "print(sorted(state), float(state['w'].sum()), state['epoch'])")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["['b',", "'epoch',", "'metadata',", "'w']", str(float(state["w"].sum())), "0"]


def test_the_lab_writes_no_crc_while_torch_save_does(tmp_path):
    lab = save_checkpoint({"w": torch.arange(1000.0)}, tmp_path / "lab.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.arange(1000.0)}, plain)
    with zipfile.ZipFile(lab) as archive:
        assert {info.CRC for info in archive.infolist()} == {0}
        assert archive.testzip() is not None, "zip tools see CRCs of 0 as damage: the sha256 is the lab's check"
    with zipfile.ZipFile(plain) as archive:
        assert 0 not in {info.CRC for info in archive.infolist()} and archive.testzip() is None


@pytest.mark.parametrize("before", [True, False])
def test_the_crc_setting_comes_back_after_a_save_and_a_failed_one(tmp_path, monkeypatch, before):
    torch.serialization.set_crc32_options(before)
    try:
        save_checkpoint({"w": torch.ones(3)}, tmp_path / "a.pt")
        assert torch.serialization.get_crc32_options() is before

        def fail(obj, writer):
            assert torch.serialization.get_crc32_options() is False, "off while the lab's save runs"
            raise RuntimeError("pickling failed")

        monkeypatch.setattr(torch, "save", fail)
        with pytest.raises(RuntimeError, match="pickling failed"):
            save_checkpoint({"w": torch.ones(3)}, tmp_path / "a.pt")
        assert torch.serialization.get_crc32_options() is before
    finally:
        torch.serialization.set_crc32_options(True)


def test_saves_in_two_threads_overlap_and_the_last_one_out_puts_the_crc_back():
    """The switch is process-wide: it stays off while any lab save runs, and comes back when none does."""
    torch.serialization.set_crc32_options(True)
    first, second = _tuning.without_crc32(), _tuning.without_crc32()
    first.__enter__()
    second.__enter__()  # a second save starts before the first ends: it does not wait for it
    assert torch.serialization.get_crc32_options() is False
    first.__exit__(None, None, None)
    assert torch.serialization.get_crc32_options() is False, "the second save is still writing"
    second.__exit__(None, None, None)
    assert torch.serialization.get_crc32_options() is True


def test_a_refused_head_start_changes_nothing(tmp_path, monkeypatch):
    """sync_file_range only starts the disk early; where it fails, the save is the same and still durable."""
    calls = []

    def refuse(fd, offset, count, flags):
        calls.append((offset, count))
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(_tuning, "sync_file_range", refuse)
    path = save_checkpoint(_big_state(1), tmp_path / "big.pt")
    assert calls and calls[0][0] == 0 and sum(count for _, count in calls) <= path.stat().st_size
    assert load_checkpoint(path)["epoch"] == 1


def test_the_head_start_covers_the_file_in_order(tmp_path, monkeypatch):
    calls = []
    real = _tuning.sync_file_range
    if real is None:
        pytest.skip("no sync_file_range on this system")
    monkeypatch.setattr(_tuning, "sync_file_range", lambda fd, offset, count, flags: calls.append((offset, count)))
    path = save_checkpoint(_big_state(), tmp_path / "big.pt")
    ends = [offset + count for offset, count in calls]
    assert [offset for offset, _ in calls] == [0, *ends[:-1]], "contiguous ranges from the start of the file"
    assert path.stat().st_size - ends[-1] < 2 * _tuning.HashingWriter.WRITEBACK_EVERY


_FULL_DISK = textwrap.dedent("""
    import resource, sys, torch
    import labutils.checkpoint as ck
    path, limit = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        ck.save_checkpoint({"w": torch.zeros(%d // 4)}, path)
    except ck.CheckpointWriteError as err:
        print("refused:", err)
""" % BIG)


def test_a_full_disk_in_the_middle_of_a_big_tensor_keeps_the_old_checkpoint(tmp_path):
    good = save_checkpoint(_big_state(2), tmp_path / "big.pt")
    before = good.read_bytes()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: the child gets EFBIG instead of being killed
    try:
        child = subprocess.run([sys.executable, "-c", _FULL_DISK, str(good), str(len(before) // 2)],
                               capture_output=True, text=True, timeout=300)
    finally:
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    assert child.returncode == 0 and "refused:" in child.stdout and "File too large" in child.stdout, child.stderr
    assert good.read_bytes() == before and names(tmp_path) == ["big.pt", "big.pt.sha256"]
    assert load_checkpoint(good)["epoch"] == 2
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY, "the limit was the child's"


def test_a_failed_write_is_never_taken_for_a_refused_head_start(tmp_path, monkeypatch):
    """The flush before each head start propagates a full disk (the check that must say no)."""
    def full(self):
        raise OSError(28, "No space left on device")

    good = save_checkpoint({"epoch": 1}, tmp_path / "big.pt")
    before = good.read_bytes()
    monkeypatch.setattr(_tuning.HashingWriter, "flush", full)
    with pytest.raises(CheckpointWriteError, match="No space left"):
        save_checkpoint(_big_state(), good)
    assert good.read_bytes() == before and names(tmp_path) == ["big.pt", "big.pt.sha256"]


# --- the pipelined sha256 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1000, sha256sums.PIPELINE_FROM - 1, sha256sums.PIPELINE_FROM,
                                  sha256sums.PIPELINE_FROM + sha256sums.PIPELINE_CHUNK + 1])
def test_the_pipelined_digest_is_sha256_from_where_the_file_stands(tmp_path, size):
    data = os.urandom(size + 100)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        f.read(100)
        assert sha256sums.file_digest(f) == hashlib.sha256(data[100:]).hexdigest()
        assert f.tell() == len(data) and f.read() == b"", "it ends at the end, as hashlib.file_digest does"
    assert sha256sums.file_digest(io.BytesIO(data)) == hashlib.sha256(data).hexdigest(), "not a real file"


# --- loading ------------------------------------------------------------------------------------------------

def test_a_file_written_before_the_crc_was_switched_off_still_verifies_and_loads(tmp_path):
    """tests/fixtures/written_with_crc32.pt was saved by the previous save_checkpoint (with CRC-32s)."""
    for name in ("written_with_crc32.pt", "written_with_crc32.pt.sha256"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    path = tmp_path / "written_with_crc32.pt"
    with zipfile.ZipFile(path) as archive:
        assert 0 not in {info.CRC for info in archive.infolist()}, "the fixture is from before the change"
    for mmap in (False, True):
        state = load_checkpoint(path, mmap=mmap)
        assert state["epoch"] == 3 and state["metadata"]["test_acc"] == 0.5
        assert torch.equal(state["model"]["w"], torch.manual_seed(0) and torch.randn(64, 32))
    ck.verify_checksum(path)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(ChecksumMismatchError):
        load_checkpoint(path, mmap=True)


@pytest.mark.parametrize("mmap", [False, True])
def test_both_loads_check_the_sha256_first(tmp_path, mmap):
    path = save_checkpoint(_big_state(3), tmp_path / "big.pt")
    assert load_checkpoint(path, mmap=mmap)["epoch"] == 3
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit in the middle of a tensor: torch alone would load it
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True, mmap=mmap)["epoch"] == 3
    with pytest.raises(ChecksumMismatchError, match="big.pt: its sha256"):
        load_checkpoint(path, mmap=mmap)


def test_a_mapped_load_fills_a_meta_model_that_answers_as_the_original(tmp_path):
    torch.manual_seed(0)
    model = WideMLP(64, 3)
    path = save_checkpoint(model.state_dict(), tmp_path / "wide.pt")
    with torch.device("meta"):
        empty = WideMLP(64, 3)
    state = load_checkpoint(path, mmap=True)
    state.pop("metadata")
    empty.load_state_dict(state, assign=True)
    x = torch.randn(5, 64)
    assert not any(p.is_meta for p in empty.parameters()) and torch.equal(empty(x), model(x))


_REWRITE_AFTER_LOAD = textwrap.dedent("""
    import sys, torch
    from labutils.checkpoint import load_checkpoint
    for path, mmap in ((sys.argv[1], False), (sys.argv[2], True)):  # the mapped one last: it ends the process
        state = load_checkpoint(path, mmap=mmap)
        before = state["w"][-1000:].clone()
        open(path, "wb").close()  # rewritten in place: what torch.save(..., path) does first
        print(f"mmap={mmap}: same values:", torch.equal(state["w"][-1000:], before), flush=True)
""")


def test_the_default_load_owns_its_memory_and_a_mapped_one_does_not(tmp_path):
    path = save_checkpoint(_big_state(4), tmp_path / "big.pt")
    copy = tmp_path / "copy.pt"
    for name in ("big.pt", "big.pt.sha256"):
        shutil.copy(tmp_path / name, tmp_path / name.replace("big", "copy"))
    child = subprocess.run([sys.executable, "-c", _REWRITE_AFTER_LOAD, str(path), str(copy)],
                           capture_output=True, text=True, timeout=300)
    assert "mmap=False: same values: True" in child.stdout, (child.stdout, child.stderr)
    assert child.returncode == -signal.SIGBUS and "mmap=True" not in child.stdout, (child.returncode, child.stdout)


_REWRITE_DURING_LOAD = textwrap.dedent("""
    import sys, torch
    from labutils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    for how in ("verified", "unverified", "mapped", "same size"):
        path = save_checkpoint({f"w{i}": torch.ones(1 << 18) * i for i in range(4)}, f"{sys.argv[1]}/{how}.pt")
        done = []

        def rewrite_in_place(storage, location):  # torch calls it for each tensor, in the middle of the load
            if not done:
                with open(path, "r+b") as f:  # the same file, written again in place
                    if how == "same size":  # other bytes, the same length: no read comes up short
                        f.seek(path.stat().st_size // 2)
                        f.write(bytes(4096))
                    else:  # cut short, then written again, as torch.save does
                        f.truncate(0)
                        f.write(b"PK\\x03\\x04" + bytes(60))
                done.append(1)
            return None

        try:
            load_checkpoint(path, map_location=rewrite_in_place, verify=how != "unverified", mmap=how == "mapped")
            print(how, "loaded what changed under it", flush=True)
        except CheckpointError as err:
            print(how, "refused:", err.problem, flush=True)
""")


def test_a_file_rewritten_in_place_during_any_load_is_refused_and_never_kills_the_process(tmp_path):
    """torch.save to the path of a checkpoint being loaded, at the worst moment: while tensors are read. A load that
    copied out of a mapping of the file died of SIGBUS here (a Jupyter kernel that silently dies)."""
    child = subprocess.run([sys.executable, "-c", _REWRITE_DURING_LOAD, str(tmp_path)], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, f"the loader died (signal {-child.returncode}): {child.stdout} {child.stderr}"
    for how in ("verified", "unverified", "mapped", "same size"):
        assert f"{how} refused: it was written to while it was being loaded" in child.stdout, child.stdout


_LOAD_IN_A_LOOP = textwrap.dedent("""
    import collections, sys, time, torch
    from labutils.checkpoint import CheckpointError, load_checkpoint
    path, outcomes = sys.argv[1], collections.Counter()
    for verify in (False, True):
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                state = load_checkpoint(path, verify=verify)
                assert all(torch.equal(state[f"w{i}"], torch.full((1 << 20,), float(i))) for i in range(8))
                outcomes["loaded the saved values"] += 1
            except CheckpointError:
                outcomes["refused"] += 1
    print(dict(outcomes), flush=True)
""")


def test_loads_against_a_program_that_rewrites_the_file_in_a_loop_never_die_of_a_signal(tmp_path):
    """The case as a learner meets it: another program runs torch.save to the same path, again and again, while
    load_checkpoint loads it. Each load returns the saved values or refuses; none kills the process."""
    path = save_checkpoint({f"w{i}": torch.full((1 << 20,), float(i)) for i in range(8)}, tmp_path / "net.pt")
    shutil.copy(path, tmp_path / "same.bin")
    rewriter = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        data = open({str(tmp_path / "same.bin")!r}, "rb").read()
        while True:
            with open({str(path)!r}, "wb") as f:  # what torch.save(obj, path) does: cut the file short, write it
                f.write(data)
    """)])
    try:
        loader = subprocess.run([sys.executable, "-c", _LOAD_IN_A_LOOP, str(path)], capture_output=True, text=True,
                                timeout=300)
    finally:
        rewriter.kill()
        rewriter.wait()
    assert loader.returncode == 0, f"the loader died (signal {-loader.returncode}): {loader.stdout} {loader.stderr}"
    assert "refused" in loader.stdout, loader.stdout


def test_ctrl_c_during_a_save_stays_a_keyboard_interrupt(tmp_path, monkeypatch):
    """An interrupt raised while an OSError is being handled is the learner's Ctrl-C, not a failed write."""
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")

    def interrupted(self, data):
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(_tuning.HashingWriter, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1 and names(tmp_path) == ["net.pt", "net.pt.sha256"]


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_failed_check_leaves_no_file_open(tmp_path, monkeypatch):
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")

    def unreadable(f):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sha256sums, "file_digest", unreadable)
    before, errors = _open_files(), []
    for _ in range(5):
        with pytest.raises(CheckpointCorruptError, match=r"net.pt: it cannot be read \(Input/output error\)") as caught:
            load_checkpoint(path)
        errors.append(caught.value)  # as Jupyter keeps the last error, with its traceback and the frames in it
    assert _open_files() == before


def test_a_file_deleted_as_it_is_opened_is_not_found_not_a_traceback(tmp_path, monkeypatch):
    """A rotation of old checkpoints may delete a file between the check that it exists and its opening."""
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    read_sidecar = ck._recorded_digests

    def read_then_delete(p):
        digests = read_sidecar(p)
        path.unlink(missing_ok=True)
        return digests

    monkeypatch.setattr(ck, "_recorded_digests", read_then_delete)
    with pytest.raises(ck.CheckpointNotFoundError, match="net.pt: it was deleted or moved while it was being opened"):
        load_checkpoint(path)


def test_tensors_that_shared_memory_still_share_it_after_the_copy(tmp_path):
    base = torch.arange(100.0)
    path = save_checkpoint({"a": base, "b": base[10:20], "c": base.view(10, 10)}, tmp_path / "views.pt")
    state = load_checkpoint(path)
    a, b, c = state["a"], state["b"], state["c"]
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() == c.untyped_storage().data_ptr()
    a[15] = -1
    assert b[5] == -1 and c[1, 5] == -1 and torch.equal(b, torch.arange(10.0, 20.0).index_fill(0, torch.tensor(5), -1))


@pytest.mark.parametrize("map_location", ["cpu", torch.device("cpu"), {"cpu": "cpu"}, None,
                                          lambda storage, location: None, lambda storage, location: storage])
def test_every_kind_of_map_location_gives_tensors_of_their_own(tmp_path, map_location):
    path = save_checkpoint({"w": torch.arange(4096.0)}, tmp_path / "w.pt")
    state = load_checkpoint(path, map_location=map_location)
    assert torch.equal(state["w"], torch.arange(4096.0))
    mapped = torch.load(path, weights_only=True, mmap=True)["w"]
    assert state["w"].untyped_storage().data_ptr() != mapped.untyped_storage().data_ptr()


def test_meta_loads_shapes_only(tmp_path):
    path = save_checkpoint({"w": torch.ones(3, 4)}, tmp_path / "w.pt")
    assert load_checkpoint(path, map_location="meta")["w"].is_meta


def test_a_file_written_in_place_during_the_load_is_refused(tmp_path, monkeypatch):
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    real_load = torch.load

    def load_while_another_program_writes(f, *args, **kwargs):
        result = real_load(f, *args, **kwargs)
        with open(path, "ab") as other:  # the same file, not a new one: as torch.save to this path would
            other.write(b"more")
        return result

    assert load_checkpoint(path)["epoch"] == 1, "untouched, it loads"
    monkeypatch.setattr(torch, "load", load_while_another_program_writes)
    with pytest.raises(CheckpointCorruptError, match="net.pt: it was written to while it was being loaded"):
        load_checkpoint(path, verify=False)


def test_where_no_descriptor_name_exists_a_file_replaced_during_a_mapped_load_is_refused(tmp_path, monkeypatch):
    """Without /proc/self/fd or /dev/fd, torch maps the path: a save renamed onto it meanwhile is caught. The default
    load reads the open file it checked, so the same rename leaves it the verified state."""
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    monkeypatch.setattr(ck, "_same_file", lambda f, p: str(p))
    assert load_checkpoint(path, mmap=True)["epoch"] == 1, "nothing replaced: it maps the path"
    real_load = torch.load

    def load_then_replace(f, *args, **kwargs):
        result = real_load(f, *args, **kwargs)
        os.replace(save_checkpoint({"epoch": 2}, tmp_path / "other.pt"), path)
        return result

    monkeypatch.setattr(torch, "load", load_then_replace)
    with pytest.raises(CheckpointCorruptError, match="net.pt: it was replaced while it was being loaded"):
        load_checkpoint(path, mmap=True)
    save_checkpoint({"epoch": 1}, path)
    assert load_checkpoint(path)["epoch"] == 1, "read from the open file: the bytes checked, whatever the path holds"


def test_mmap_is_refused_where_it_cannot_work(tmp_path):
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint(legacy, verify=False)["w"], torch.ones(3)), "without mmap it loads"
    with pytest.raises(ValueError, match="legacy.pt: it was saved in torch's format from before 1.6"):
        load_checkpoint(legacy, verify=False, mmap=True)
    tensors = save_checkpoint({"w": torch.ones(3)}, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="w.safetensors: mmap=True maps torch.save files"):
        load_checkpoint(tensors, mmap=True)
    with pytest.raises(TypeError, match="mmap must be True or False"):
        load_checkpoint(tensors, mmap="yes")


def test_each_tuning_piece_only_changes_the_speed(tmp_path):
    """benchmarks/checkpoint_io.py turns each piece of labutils._tuning off to measure it: the file is the same
    without sync_file_range or the hashing thread, and with torch's CRC-32 differs only in those CRCs."""
    bench = runpy.run_path(str(REPO_ROOT / "benchmarks" / "checkpoint_io.py"), run_name="checkpoint_io")
    state = {"w": torch.arange(float(3 * _tuning.HashingWriter.CHUNK // 4 + 5)), "epoch": 1}
    pieces = _tuning.sync_file_range, ck.without_crc32
    files = {}
    for name, off in bench["PIECES"].items():
        with bench["_turned_off"](**off):
            files[name] = save_checkpoint(state, tmp_path / f"{len(files)}.pt", metadata={"created": "fixed"})
        assert torch.equal(load_checkpoint(files[name])["w"], state["w"]), name
    assert _tuning.HashingWriter.THREADED and (_tuning.sync_file_range, ck.without_crc32) == pieces, "put back"
    data = {name: path.read_bytes() for name, path in files.items()}
    assert data["all on"] == data["without sync_file_range"] == data["hashing in the writing thread"]
    assert data["with torch's CRC-32"] != data["all on"] and len(data["with torch's CRC-32"]) == len(data["all on"])
    with zipfile.ZipFile(files["with torch's CRC-32"]) as archive:
        assert archive.testzip() is None, "with torch's CRC-32 the zip tools find every CRC right"


def test_torchs_process_wide_mmap_setting_changes_no_save_or_load(tmp_path):
    """torch.utils.serialization.config.load.mmap = True makes every torch.load map its file: the lab's loads of an
    open file or a buffer pass mmap=False themselves, so they still save, load and refuse as before."""
    config = importlib.import_module("torch.utils.serialization").config.load
    before = config.mmap
    config.mmap = True
    try:
        path = save_checkpoint({"w": torch.arange(4.0), "epoch": 1}, tmp_path / "net.pt")
        assert torch.equal(load_checkpoint(path)["w"], torch.arange(4.0))
        with pytest.raises(ck.UnsafeCheckpointError, match=r"bad.pt: state\['f'\] is a function"):
            save_checkpoint({"f": print}, tmp_path / "bad.pt")
    finally:
        config.mmap = before
