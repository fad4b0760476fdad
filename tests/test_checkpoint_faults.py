"""Bad checkpoints and interrupted saves: each raises its own error, and nothing good is ever touched."""
from __future__ import annotations

import collections
import functools
import hashlib
import json
import math
import operator
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from labutils import Net, TrainConfig
from labutils.checkpoint import (
    CheckpointCorruptError, CheckpointError, CheckpointNotFoundError, ChecksumMismatchError, ChecksumMissingError,
    CheckpointWriteError, UnsafeCheckpointError, inspect_checkpoint, load_checkpoint, save_checkpoint, sidecar_path,
)
from listing import names


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state(seed: int) -> dict:
    torch.manual_seed(seed)
    return {"model": Net().state_dict(), "epoch": seed}


def _equal(a: dict, b: dict) -> bool:
    return a["epoch"] == b["epoch"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.fixture
def good(tmp_path) -> Path:
    """A checkpoint saved by save_checkpoint, with its sidecar."""
    return save_checkpoint(_state(1), tmp_path / "net.pt")


def _damage(good: Path, how: str) -> Path:
    """Write a damaged copy of `good` (with a copy of its sidecar) and return its path."""
    data = good.read_bytes()
    damaged = {
        "empty": b"",
        "truncated-10": data[: len(data) // 10],
        "truncated-50": data[: len(data) // 2],
        "truncated-90": data[: len(data) * 9 // 10],
        "random": bytes(range(7, 256)) * 40,
        "text": b"epoch,loss\n1,0.25\n2,0.12\n",
        "trailing-garbage": data + b"\x00garbage" * 16,
    }.get(how)
    if how == "flipped-byte":  # a byte in the middle of fc1.weight's data
        damaged = bytearray(data)
        damaged[len(data) // 2] ^= 0xFF
    path = good.with_name(f"{how}.pt")
    path.write_bytes(bytes(damaged))
    sidecar_path(path).write_text(sidecar_path(good).read_text().replace(good.name, path.name))
    return path


DAMAGE = ["empty", "truncated-10", "truncated-50", "truncated-90", "random", "text", "flipped-byte",
          "trailing-garbage"]


@pytest.mark.parametrize("how", DAMAGE)
def test_the_checksum_catches_any_change_before_unpickling(good, how):
    before = _digest(good)
    path = _damage(good, how)
    damaged_bytes = path.read_bytes()
    with pytest.raises(ChecksumMismatchError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert path.name in message and "sha256" in message and "Fix:" in message
    assert path.read_bytes() == damaged_bytes and _digest(good) == before, "a failed load changes no file"
    assert _equal(load_checkpoint(good), _state(1))


@pytest.mark.parametrize("how", ["empty", "truncated-10", "truncated-50", "truncated-90", "random", "text"])
def test_without_the_checksum_the_reader_still_names_the_damage(good, how):
    path = _damage(good, how)
    with pytest.raises(CheckpointCorruptError) as caught:
        load_checkpoint(path, verify=False)
    assert not isinstance(caught.value, ChecksumMismatchError)
    assert path.name in str(caught.value) and "Fix:" in str(caught.value)
    with pytest.raises(CheckpointCorruptError):
        inspect_checkpoint(path)


@pytest.mark.parametrize("how", ["flipped-byte", "trailing-garbage"])
def test_torch_alone_loads_these_silently_so_only_the_checksum_catches_them(good, how):
    path = _damage(good, how)
    loaded = load_checkpoint(path, verify=False)  # no error: this is why the sidecar exists
    if how == "flipped-byte":
        assert not _equal(loaded, _state(1))
    with pytest.raises(ChecksumMismatchError):
        load_checkpoint(path)


def test_a_missing_sidecar_is_its_own_error_and_verify_false_still_loads_weights_only(good):
    sidecar_path(good).unlink()
    with pytest.raises(ChecksumMissingError, match=r"net\.pt\.sha256.*verify=False"):
        load_checkpoint(good)
    assert _equal(load_checkpoint(good, verify=False), _state(1))


def test_a_sidecar_for_other_bytes_is_a_mismatch(good, tmp_path):
    other = save_checkpoint(_state(2), tmp_path / "other.pt")
    sidecar_path(good).write_text(sidecar_path(other).read_text().replace("other.pt", "net.pt"))
    with pytest.raises(ChecksumMismatchError, match="expects"):
        load_checkpoint(good)


@pytest.mark.parametrize("content", ["", "not a checksum\n", "0" * 64 + "  another.pt\n"])
def test_a_damaged_sidecar_is_named(good, content):
    sidecar_path(good).write_text(content)
    with pytest.raises(CheckpointCorruptError, match=r"net\.pt\.sha256"):
        load_checkpoint(good)


def test_a_missing_file_and_a_directory(tmp_path, good):
    with pytest.raises(CheckpointNotFoundError, match=r"nte\.pt: no such file; the folder holds net\.pt") as caught:
        load_checkpoint(tmp_path / "nte.pt")
    assert isinstance(caught.value, FileNotFoundError), "code that catches FileNotFoundError keeps working"
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="is a directory"):
        load_checkpoint(tmp_path / "folder.pt")
    with pytest.raises(CheckpointWriteError, match="is a directory"):
        save_checkpoint(_state(1), tmp_path / "folder.pt")


class _Exploit:
    """Unpickling this runs code: it writes the canary file."""

    def __init__(self, canary: Path):
        self.canary = canary

    def __reduce__(self):
        return exec, (f"open({str(self.canary)!r}, 'w').write('this code ran')",)


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary.txt"
    path = tmp_path / "evil.pt"
    torch.save({"model": Net().state_dict(), "extra": _Exploit(canary)}, path)
    sidecar_path(path).write_text(f"{_digest(path)}  {path.name}\n")  # the checksum is right: the file is "intact"
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec") as caught:
        load_checkpoint(path)
    assert isinstance(caught.value.__cause__, pickle.UnpicklingError)
    assert caught.value.fix.startswith("do not load it") and "safe_globals" not in caught.value.fix
    summary = inspect_checkpoint(path)
    assert summary.unsafe_globals == ["builtins.exec"] and "NOT SAFE" in str(summary)
    assert not canary.exists()
    # The test must be able to fail: an unsafe load of the same file does run the code.
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(path)!r}, weights_only=False)"], check=True,
                   timeout=300)
    assert canary.read_text() == "this code ran"


def test_a_custom_class_is_refused_with_the_way_to_allow_it(tmp_path):
    path = tmp_path / "config.pt"
    torch.save({"config": TrainConfig(epochs=5)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"labutils\.train\.TrainConfig.*safe_globals\(\[TrainConfig\]\)"):
        load_checkpoint(path, verify=False)
    with torch.serialization.safe_globals([TrainConfig]):  # the fix the message gives
        assert load_checkpoint(path, verify=False)["config"] == TrainConfig(epochs=5)


@pytest.mark.parametrize("value, needs, fix", [
    (functools.partial(math.sqrt, 4.0), "functools.partial", "do not load it: functools.partial can run any code"),
    (operator.attrgetter("real"), "operator.attrgetter", "do not load it: operator.attrgetter can run any code"),
    (collections.deque([1, 2]), "collections.deque",
     "the file names collections.deque, which is not a class of your own code"),
], ids=["functools", "operator", "collections"])
def test_globals_from_the_standard_library_are_never_offered_for_allow_listing(tmp_path, value, needs, fix):
    path = tmp_path / "odd.pt"
    torch.save({"extra": value}, path)
    with pytest.raises(UnsafeCheckpointError, match=needs) as caught:
        load_checkpoint(path, verify=False)
    assert caught.value.fix.startswith(fix) and "safe_globals" not in caught.value.fix, caught.value.fix


def test_a_whole_model_of_torch_layers_gets_the_allow_list_that_loads_it(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    with pytest.raises(UnsafeCheckpointError, match=r"safe_globals\(\[Sequential, Linear\]\)"):
        load_checkpoint(path, verify=False)
    with torch.serialization.safe_globals([torch.nn.Linear, torch.nn.Sequential]):  # the fix the message gives
        assert isinstance(torch.load(path, weights_only=True), torch.nn.Sequential)


class OwnConfig:
    """A class of the learner's own code (this test module, imported here)."""

    def __init__(self, lr):
        self.lr = lr


def own_function(x):
    """A function of the learner's own code: allow-listed, torch.load would call it."""
    return x


def test_only_classes_of_your_own_code_are_offered_for_allow_listing(tmp_path, monkeypatch):
    path = tmp_path / "own.pt"
    torch.save({"config": OwnConfig(0.1)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"safe_globals\(\[OwnConfig\]\)"):
        load_checkpoint(path, verify=False)
    with torch.serialization.safe_globals([OwnConfig]):  # the fix the message gives
        assert load_checkpoint(path, verify=False)["config"].lr == 0.1

    torch.save({"call": own_function}, path)  # a function of your own: the load would call it
    with pytest.raises(UnsafeCheckpointError, match="own_function") as caught:
        load_checkpoint(path, verify=False)
    assert "safe_globals" not in caught.value.fix and "is not a class of your own code" in caught.value.fix

    class Notebook:  # defined in a notebook: its module is __main__
        pass

    Notebook.__module__, Notebook.__qualname__ = "__main__", "Notebook"
    monkeypatch.setattr(sys.modules["__main__"], "Notebook", Notebook, raising=False)
    torch.save({"made": Notebook()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"safe_globals\(\[Notebook\]\)"):
        load_checkpoint(path, verify=False)
    monkeypatch.delattr(sys.modules["__main__"], "Notebook")  # a class no longer (or not yet) imported here
    with pytest.raises(UnsafeCheckpointError, match="__main__.Notebook") as caught:
        load_checkpoint(path, verify=False)
    assert "safe_globals" not in caught.value.fix and "import it, then load again" in caught.value.fix


def test_a_numpy_function_is_not_taken_for_numpy_values(tmp_path):
    import numpy as np

    path = tmp_path / "np.pt"
    torch.save({"f": np.testing.assert_equal}, path)
    with pytest.raises(UnsafeCheckpointError, match="numpy") as caught:
        load_checkpoint(path, verify=False)
    assert "NumPy values" not in caught.value.fix and "safe_globals" not in caught.value.fix, caught.value.fix
    torch.save({"x": np.float64(0.5)}, path)
    with pytest.raises(UnsafeCheckpointError, match="numpy") as caught:
        load_checkpoint(path, verify=False)
    assert caught.value.fix.startswith("it holds NumPy values"), caught.value.fix


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_pickle_protocol_weights_only_cannot_read_is_named_not_called_damaged(tmp_path, protocol):
    path = tmp_path / "p.pt"
    torch.save({"w": torch.ones(2)}, path, pickle_protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's own warning about the protocol stays inside the lab's call
        with pytest.raises(UnsafeCheckpointError, match=f"p.pt: its pickle uses protocol {protocol}") as caught:
            load_checkpoint(path, verify=False)
        with pytest.raises(UnsafeCheckpointError, match=f"p.pt: its pickle uses protocol {protocol}"):
            inspect_checkpoint(path)
    assert "damaged" not in str(caught.value) and "weights_only=False" in caught.value.fix
    assert torch.equal(torch.load(path, weights_only=False)["w"], torch.ones(2)), "a valid file: torch reads it so"
    torch.save({"w": torch.ones(2)}, path, pickle_protocol=2)  # torch.save's default: no such refusal
    assert torch.equal(load_checkpoint(path, verify=False)["w"], torch.ones(2))


def test_saving_what_weights_only_cannot_load_is_refused_before_writing(good):
    import numpy as np

    before = _digest(good)
    for bad, named in [({"loss": np.float64(0.25)}, r"state\['loss'\] is a numpy.float64.*value.item\(\)"),
                       ({"config": TrainConfig()}, r"state\['config'\] is a labutils.train.TrainConfig"),
                       ({"lr": [0.1, lambda step: 0.5]}, r"state\['lr'\]\[1\] is a function"),
                       ({"model": {TrainConfig(): torch.zeros(1)}},
                        r"state\['model'\]: the key TrainConfig.* is a labutils.train.TrainConfig")]:
        with pytest.raises(UnsafeCheckpointError, match=named):
            save_checkpoint(bad, good)
    with pytest.raises(UnsafeCheckpointError, match=r"metadata\['version'\] is a torch.torch_version"):
        save_checkpoint({"epoch": 1}, good, metadata={"version": torch.__version__})
    assert _digest(good) == before and names(good.parent) == ["net.pt", "net.pt.sha256"]


def _safetensors_bytes(tmp_path) -> tuple[bytes, int, dict]:
    path = save_checkpoint(Net().state_dict(), tmp_path / "net.safetensors")
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return data, length, json.loads(data[8:8 + length])


def _header(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize("how", ["bad header", "header longer than the file", "overlapping offsets", "truncated"])
def test_damaged_safetensors(tmp_path, how):
    data, length, header = _safetensors_bytes(tmp_path)
    body = data[8 + length:]
    if how == "bad header":
        damaged = data[:8] + b"[" + data[9:]
    elif how == "header longer than the file":
        damaged = struct.pack("<Q", len(data)) + data[8:]
    elif how == "overlapping offsets":
        keys = [k for k in header if k != "__metadata__"]
        header[keys[1]] = {**header[keys[1]], "data_offsets": header[keys[0]]["data_offsets"]}
        damaged = _header(header) + body
    else:
        damaged = data[: len(data) // 2]
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(damaged)
    with pytest.raises(CheckpointCorruptError, match="damaged.safetensors") as caught:
        load_checkpoint(path, verify=False)
    assert "Fix:" in str(caught.value)
    with pytest.raises(CheckpointCorruptError):
        inspect_checkpoint(path)


# --- interrupted saves ----------------------------------------------------------------------------------

class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("error", [_Boom("pickling failed"), KeyboardInterrupt(),
                                   OSError(28, "No space left on device")])
def test_an_exception_mid_save_leaves_the_old_checkpoint_byte_identical(good, monkeypatch, error):
    before, sidecar_before = good.read_bytes(), sidecar_path(good).read_text()

    def half_then_fail(obj, writer):
        writer.write(b"PK\x03\x04" + b"\x00" * 50_000)  # a partial archive reaches the disk
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", half_then_fail)
        expected = CheckpointWriteError if isinstance(error, OSError) else type(error)
        with pytest.raises(expected) as caught:
            save_checkpoint(_state(2), good)
    if isinstance(error, OSError):
        assert caught.value.__cause__ is error and "No space left" in str(caught.value)
    assert good.read_bytes() == before and sidecar_path(good).read_text() == sidecar_before
    assert names(good.parent) == ["net.pt", "net.pt.sha256"], "no temporary left behind"
    assert _equal(load_checkpoint(good), _state(1))


def test_plain_torch_save_interrupted_destroys_the_old_checkpoint(tmp_path, monkeypatch):
    """The failure save_checkpoint prevents: torch.save truncates the good file before it writes."""
    path = tmp_path / "net.pt"
    torch.save(_state(1), path)
    with pytest.raises((AttributeError, pickle.PicklingError), match="local object"):  # a lambda cannot be pickled
        torch.save({"model": Net().state_dict(), "schedule": lambda step: 0.5}, path)
    with pytest.raises(RuntimeError, match="PytorchStreamReader failed"):
        torch.load(path, weights_only=True)


_CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    import labutils.checkpoint as ck
    from labutils import Net, _tuning
    path, point = sys.argv[1], sys.argv[2]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if point == "mid-write":
        write, written = _tuning.HashingWriter.write, [0]
        def write_then_die(self, data):
            written[0] += len(data)
            if written[0] > 100_000:
                die()
            return write(self, data)
        _tuning.HashingWriter.write = write_then_die
    elif point == "before-sidecar":
        ck._write_sidecar = die
    elif point == "before-rename":
        replace = os.replace
        os.replace = lambda src, dst: die() if str(dst) == path else replace(src, dst)
    elif point == "mid-sidecar":  # the sidecar's own temporary is written, its rename never happens
        replace = os.replace
        os.replace = lambda src, dst: die() if str(dst).endswith(".sha256") else replace(src, dst)
    elif point == "after-rename":
        write_sidecar, calls = ck._write_sidecar, [0]
        def second_call_dies(*args):
            calls[0] += 1
            die() if calls[0] == 2 else write_sidecar(*args)
        ck._write_sidecar = second_call_dies
    torch.manual_seed(2)
    ck.save_checkpoint({"model": Net().state_dict(), "epoch": 2}, path)
    print("finished")
""")


@pytest.mark.parametrize("point", ["mid-write", "before-sidecar", "mid-sidecar", "before-rename", "after-rename"])
def test_sigkill_during_a_save(good, point):
    before = good.read_bytes()
    child = subprocess.run([sys.executable, "-c", _CHILD, str(good), point], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "finished" not in child.stdout
    loaded = load_checkpoint(good)  # verified: the final name holds a complete file
    if point == "after-rename":
        assert _equal(loaded, _state(2)), "killed after the rename: the new checkpoint is complete and verifies"
    else:
        assert good.read_bytes() == before and _equal(loaded, _state(1))
    stale = [name for name in names(good.parent) if name.startswith(".")]
    expected = {"mid-sidecar": [".net.pt.sha256.tmp-", ".net.pt.tmp-"], "after-rename": []}.get(point, [".net.pt.tmp-"])
    assert [name.split("-")[0] + "-" for name in sorted(stale)] == expected, stale
    assert inspect_checkpoint(good).checksum.startswith("ok")
    save_checkpoint(_state(3), good)  # the next save cleans the dead process's temporary
    assert names(good.parent) == ["net.pt", "net.pt.sha256"]
    assert _equal(load_checkpoint(good), _state(3))


def test_sigkill_at_any_moment_never_leaves_a_bad_checkpoint(tmp_path):
    """A process saves two different 16 MB checkpoints in turn; it is killed at five moments.

    One Python imports torch and the lab, then forks each saving process from itself (a fork copies the imports:
    five kills cost one start), and after each kill copies what is on disk under the name it had; torch has not
    run in that Python, so its forks are safe. The test loads each copy."""
    script = textwrap.dedent(f"""
        import ctypes, os, shutil, signal, sys, time
        import torch
        from labutils.checkpoint import save_checkpoint
        folder, path = {str(tmp_path)!r}, {str(tmp_path / "run" / "big.pt")!r}
        os.makedirs(os.path.dirname(path))
        for n, delay in enumerate([0.01, 0.04, 0.09, 0.15, 0.23]):
            ready, tell = os.pipe()
            pid = os.fork()
            if pid == 0:  # the saver: it dies with this process, whatever ends it (PR_SET_PDEATHSIG)
                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
                os.close(ready)
                states = [{{"w": torch.full((4_000_000,), float(i)), "epoch": i}} for i in (1, 2)]
                save_checkpoint(states[0], path)
                os.write(tell, b"ready")
                i = 0
                while True:
                    i += 1
                    save_checkpoint(states[i % 2], path)
            os.close(tell)  # a saver that fails before it is ready closes the pipe: the read below ends at once
            try:
                assert os.read(ready, 5) == b"ready", "the saver failed before its first save"
                time.sleep(delay)
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(ready)
            shutil.copytree(os.path.dirname(path), os.path.join(folder, f"kill-{{n}}"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for n in range(5):
        loaded = load_checkpoint(tmp_path / f"kill-{n}" / "big.pt")
        assert loaded["epoch"] in (1, 2) and torch.equal(loaded["w"], torch.full((4_000_000,), float(loaded["epoch"])))
    path = tmp_path / "run" / "big.pt"
    save_checkpoint({"epoch": 0}, path)
    assert names(path.parent) == ["big.pt", "big.pt.sha256"], "the next save cleans the killed saves' temporaries"


def test_a_full_disk_midway_ruins_torch_save_but_not_save_checkpoint(good):
    """A file-size limit makes writes fail part-way (EFBIG), as a full disk or a quota does."""
    before = good.read_bytes()
    limit = len(before) // 2
    state, target = "{'model': Net().state_dict(), 'epoch': 2}", repr(str(good))
    for call, survives in [(f"ck.save_checkpoint({state}, {target})", True), (f"torch.save({state}, {target})", False)]:
        code = (f"import resource, torch; import labutils.checkpoint as ck; from labutils import Net\n"
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n{call}")
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert child.returncode == 1, child.stderr
        if survives:
            assert "CheckpointWriteError" in child.stderr and "File too large" in child.stderr, child.stderr
            assert good.read_bytes() == before and _equal(load_checkpoint(good), _state(1))
            assert names(good.parent) == ["net.pt", "net.pt.sha256"]
        else:  # the check must be able to say no: plain torch.save left a broken file under the good name
            assert good.read_bytes() != before and good.stat().st_size <= limit
            with pytest.raises(ChecksumMismatchError):
                load_checkpoint(good)
            with pytest.raises(CheckpointCorruptError):
                load_checkpoint(good, verify=False)


def test_a_read_only_folder_raises_and_is_never_swallowed(tmp_path):
    folder = tmp_path / "read-only"
    good = save_checkpoint(_state(1), folder / "net.pt")
    before = good.read_bytes()
    folder.chmod(0o555)
    code = ("from labutils.checkpoint import save_checkpoint, CheckpointWriteError\n"
            "try:\n"
            f"    save_checkpoint({{'epoch': 2}}, {str(good)!r})\n"
            "except CheckpointWriteError as err:\n"
            "    print(type(err.__cause__).__name__, err)\n")
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root writes anywhere; without the capability to override permissions, it cannot
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        folder.chmod(0o755)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("PermissionError") and "read-only" in child.stdout and "Fix:" in child.stdout
    assert good.read_bytes() == before and names(folder) == ["net.pt", "net.pt.sha256"]


def test_one_except_clause_catches_every_way_a_load_fails(tmp_path):
    """What the error family is for: `except CheckpointError` in a learner's loop catches each real failure."""
    missing_sidecar = tmp_path / "no_sidecar.pt"
    save_checkpoint(_state(1), missing_sidecar)
    sidecar_path(missing_sidecar).unlink()
    changed = tmp_path / "changed.pt"
    save_checkpoint(_state(1), changed)
    changed.write_bytes(changed.read_bytes()[:-1] + b"x")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"when": __import__("datetime").date(2026, 1, 1)}, unsafe)
    cases = {tmp_path / "missing.pt": (CheckpointNotFoundError, {}), missing_sidecar: (ChecksumMissingError, {}),
             changed: (ChecksumMismatchError, {}), unsafe: (UnsafeCheckpointError, {"verify": False})}
    for path, (expected, options) in cases.items():
        try:
            load_checkpoint(path, **options)
        except CheckpointError as err:
            assert type(err) is expected, (path.name, type(err))
            assert path.name in str(err) and "Fix:" in str(err), str(err)
        else:
            raise AssertionError(f"{path.name} loaded")
