"""What save_checkpoint accepts is exactly what torch.load(weights_only=True) loads; errors cross processes; metadata
keeps its types in both formats; arguments come in torch.save's order; paths are shown so a learner finds them."""
from __future__ import annotations

import collections
import dataclasses
import errno
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from labutils import Net
from labutils import checkpoint as ck
from labutils.checkpoint import (
    CheckpointCorruptError, CheckpointDeviceError, CheckpointError, CheckpointNotFoundError, ChecksumMismatchError,
    ChecksumMissingError, CheckpointWriteError, NotACheckpointError, UnsafeCheckpointError, inspect_checkpoint,
    load_checkpoint, save_checkpoint,
)
from labutils.paths import REPO_ROOT, display_path
from listing import names

Point = collections.namedtuple("Point", "x y")


@dataclasses.dataclass
class Settings:
    lr: float = 0.1


class Custom:
    def __init__(self):
        self.value = 1


def _counter_with_default():
    d = collections.defaultdict(list)
    d["a"].append(1)
    return d


def _tensor_with(note, kind=torch.Tensor):
    """A tensor carrying a Python attribute, which torch.save pickles with it (as some libraries' tensors do)."""
    tensor = torch.ones(2) if kind is torch.Tensor else kind(torch.ones(2))
    tensor.note = note
    return tensor


# (name, value): every kind of value a learner may put in a checkpoint.
VALUES = [
    ("dict", {"a": 1, 2: "b"}),
    ("OrderedDict", collections.OrderedDict(a=torch.ones(2), b=3)),
    ("defaultdict", _counter_with_default()),
    ("Counter", collections.Counter("hello")),
    ("list", [1, 2.5, "three"]),
    ("tuple", (1, (2, 3))),
    ("namedtuple", Point(1, 2)),
    ("set", {1, 2, 3}),
    ("frozenset", frozenset({1, 2})),
    ("bytes", b"\x00\x01"),
    ("bytearray", bytearray(b"ab")),
    ("complex", 1 + 2j),
    ("int", 7),
    ("float", 0.25),
    ("bool", True),
    ("None", None),
    ("str", "hello"),
    ("torch.Size", torch.Size([2, 3])),
    ("torch.dtype", torch.float16),
    ("torch.device", torch.device("cpu")),
    ("slice", slice(1, 5, 2)),
    ("range", range(3)),
    ("NumPy scalar", np.float64(0.5)),
    ("NumPy array", np.arange(3)),
    ("dataclass", Settings()),
    ("custom class", Custom()),
    ("lambda", lambda step: 0.5),
    ("tensor", torch.arange(4.0)),
    ("Parameter", torch.nn.Parameter(torch.ones(2))),
    ("a tensor with a str attribute", _tensor_with("from epoch 3")),
    ("a tensor with a custom-class attribute", _tensor_with(Custom())),
    ("a Parameter with a custom-class attribute", _tensor_with(Custom(), torch.nn.Parameter)),
    ("tuple keys", {("conv1", 0): torch.zeros(1)}),
    ("nested: tensors in lists in dicts", {"layers": [{"w": torch.ones(2)}, {"w": torch.zeros(2)}], "n": 2}),
    ("nested: a set inside a list", [{1, 2}, "x"]),
    ("nested: a NumPy scalar deep inside", {"a": [1, {"b": np.int64(3)}]}),
    ("nested: a dataclass in a tuple", (1, Settings())),
    ("a str subclass (torch.__version__)", torch.__version__),
]


def _equal(a, b) -> bool:
    """Compare what was saved with what came back: same types, same values, tensors with torch.equal."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b) and vars(a) == vars(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _torch_loads(value) -> bool:
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name, value", VALUES, ids=[n for n, _ in VALUES])
def test_a_value_is_refused_when_saving_or_it_loads_back_equal(tmp_path, name, value):
    """Never save-then-fail-to-load: either a refusal naming the key path and type, or an equal round trip."""
    path = tmp_path / "ck.pt"
    state = {"value": value}
    try:
        save_checkpoint(state, path)
    except UnsafeCheckpointError as err:
        assert not path.exists() and names(tmp_path) == [], "a refused save writes nothing"
        assert "state['value']" in str(err) and "weights_only=True" in str(err), str(err)
        assert type(value).__name__ in str(err) or "function" in str(err) or any(
            type(v).__name__ in str(err) for v in _leaves(value)), str(err)
        assert not _torch_loads(state), f"{name}: refused, but torch loads it"
        return
    loaded = torch.load(path, weights_only=True)  # the test's own judge: torch itself
    assert _equal(loaded["value"], value), f"{name}: came back as {loaded['value']!r}"
    assert _equal(load_checkpoint(path)["value"], value)


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield v
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield v
            yield from _leaves(v)
    elif isinstance(value, torch.Tensor):
        yield from vars(value).values()


def test_the_table_covers_both_outcomes_and_follows_torchs_rules(tmp_path):
    """The table holds values torch loads and values it refuses, and the lab agrees with torch on every one."""
    outcomes = {}
    for name, value in VALUES:
        try:
            save_checkpoint({"value": value}, tmp_path / "t.pt")
            outcomes[name] = "saved and loaded"
        except UnsafeCheckpointError:
            outcomes[name] = "refused"
        assert (outcomes[name] == "saved and loaded") == _torch_loads({"value": value}), name
    assert len(VALUES) >= 25
    for loads in ("set", "bytearray", "complex", "Counter", "OrderedDict", "torch.Size", "tuple keys"):
        assert outcomes[loads] == "saved and loaded", loads
    for refused in ("defaultdict", "namedtuple", "frozenset", "slice", "range", "NumPy scalar", "NumPy array",
                    "dataclass", "custom class", "lambda", "nested: a NumPy scalar deep inside"):
        assert outcomes[refused] == "refused", refused


def test_the_refusal_names_the_deepest_key_path(tmp_path):
    with pytest.raises(UnsafeCheckpointError, match=r"state\['a'\]\[1\]\['b'\] is a numpy.int64"):
        save_checkpoint({"a": [1, {"b": np.int64(3)}]}, tmp_path / "x.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"state\['cfg'\] is a collections.defaultdict"):
        save_checkpoint({"cfg": collections.defaultdict(int)}, tmp_path / "x.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"metadata\['made'\] is a .*Settings"):
        save_checkpoint({"a": 1}, tmp_path / "x.pt", metadata={"made": Settings()})


def test_a_class_the_learner_allows_in_torch_is_allowed_in_the_lab(tmp_path):
    """The rule is read from torch, so torch.serialization.add_safe_globals counts too."""
    with pytest.raises(UnsafeCheckpointError):
        save_checkpoint({"s": Settings()}, tmp_path / "x.pt")
    with torch.serialization.safe_globals([Settings]):
        save_checkpoint({"s": Settings(0.5)}, tmp_path / "x.pt")
        assert load_checkpoint(tmp_path / "x.pt")["s"] == Settings(0.5)


# --- errors cross process boundaries ----------------------------------------------------------------------------

FAMILY = [CheckpointError, CheckpointNotFoundError, CheckpointCorruptError, NotACheckpointError, ChecksumMismatchError,
          ChecksumMissingError, UnsafeCheckpointError, CheckpointWriteError, CheckpointDeviceError]


def test_the_family_is_complete():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = {c for c in subclasses(CheckpointError) if c.__module__ == "labutils.checkpoint"}
    assert found <= set(FAMILY), f"add these to FAMILY: {found - set(FAMILY)}"


@pytest.mark.parametrize("cls", FAMILY, ids=[c.__name__ for c in FAMILY])
def test_every_error_round_trips_through_pickle(cls, tmp_path):
    err = cls(tmp_path / "net.pt", "it broke", "do this")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.path == err.path
    assert (back.problem, back.fix) == ("it broke", "do this")
    if issubclass(cls, OSError):
        assert back.errno == err.errno is not None and back.filename == str(tmp_path / "net.pt")


def test_oserror_members_carry_errno_and_filename(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(CheckpointNotFoundError) as caught:
        load_checkpoint(missing)
    assert caught.value.errno == errno.ENOENT and caught.value.filename == str(missing)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(CheckpointWriteError) as caught:
        save_checkpoint({"a": 1}, tmp_path)  # a directory
    assert caught.value.errno == errno.EISDIR and caught.value.filename == str(tmp_path)


def test_an_error_raised_in_a_worker_process_arrives_whole(tmp_path):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(load_checkpoint, str(tmp_path / "absent.pt"))
        with pytest.raises(CheckpointNotFoundError, match="absent.pt: no such file") as caught:
            future.result(timeout=120)
    assert caught.value.path == tmp_path / "absent.pt"


# --- metadata ------------------------------------------------------------------------------------------------------

META = {"run": "3", "epochs": 3, "lr": 0.01, "ok": True, "none": None, "tags": ["a", "1"], "nested": {"k": "2"}}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_metadata_keeps_its_types_and_comes_back_the_same_way(tmp_path, suffix):
    path = save_checkpoint({"w": torch.ones(2)}, tmp_path / f"net{suffix}", metadata=META)
    loaded = load_checkpoint(path)
    assert set(loaded) == {"w", "metadata"}
    for key, value in META.items():
        assert _equal(loaded["metadata"][key], value), (key, loaded["metadata"][key])
        assert _equal(inspect_checkpoint(path).metadata[key], value)
    assert loaded["metadata"]["format"] == ck.FORMAT


def test_safetensors_refuses_metadata_json_would_change(tmp_path):
    for value in [(1, 2), {1: "a"}, float("nan"), torch.ones(1)]:
        with pytest.raises(UnsafeCheckpointError, match="metadata\\['x'\\]"):
            save_checkpoint({"w": torch.ones(2)}, tmp_path / "n.safetensors", metadata={"x": value})
    assert names(tmp_path) == []


def test_a_safetensors_file_from_another_tool_keeps_its_strings(tmp_path):
    import safetensors.torch

    path = tmp_path / "hub.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, path, metadata={"format": "pt", "n": "3"})
    loaded = load_checkpoint(path, verify=False)
    assert set(loaded) == {"w"}, "no lab metadata to return"
    assert inspect_checkpoint(path).metadata == {"format": "pt", "n": "3"}


def test_unsafe_globals_are_sorted(tmp_path):
    path = tmp_path / "two.pt"
    torch.save({"b": Settings(), "a": Custom()}, path)
    summary = inspect_checkpoint(path)
    assert summary.unsafe_globals == sorted(summary.unsafe_globals) and len(summary.unsafe_globals) == 2


# --- the API follows torch's ------------------------------------------------------------------------------------

def test_the_object_comes_first_and_the_old_order_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"what to save first and the path second, as torch.save\(obj, f\)"):
        save_checkpoint(tmp_path / "net.pt", {"a": 1})
    with pytest.raises(TypeError, match="what to save first"):
        save_checkpoint(str(tmp_path / "net.pt"), {"a": 1})
    with pytest.raises(TypeError, match="needs a file path as its second argument"):
        save_checkpoint({"a": 1}, {"b": 2})
    assert names(tmp_path) == []
    assert save_checkpoint({"a": 1}, tmp_path / "net.pt") == tmp_path / "net.pt"


def test_paths_are_shown_so_a_learner_finds_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "runs" / "net.pt") == "runs/net.pt"
    with pytest.raises(CheckpointNotFoundError, match=r"^runs/absent\.pt: no such file"):
        load_checkpoint("runs/absent.pt")
    elsewhere = tmp_path.parent / "elsewhere.pt"
    assert display_path(elsewhere) == str(elsewhere), "outside the working folder: the whole path, not …/name"
    monkeypatch.chdir(REPO_ROOT / "notebooks")
    assert display_path(REPO_ROOT / "artifacts" / "03_saving" / "net.pt") == "../artifacts/03_saving/net.pt"
    assert display_path(REPO_ROOT / "notebooks" / "scripts") == "scripts"


# --- smaller defects ------------------------------------------------------------------------------------------------

def test_a_dict_or_device_map_location_loads_safetensors(tmp_path):
    path = save_checkpoint({"w": torch.ones(2)}, tmp_path / "n.safetensors")
    for location in ["cpu", torch.device("cpu"), {"cpu": "cpu"}, {"cuda:0": "cpu"}, None]:
        assert torch.equal(load_checkpoint(path, map_location=location)["w"], torch.ones(2)), location
    with pytest.raises(TypeError, match="function works for torch.save files only"):
        load_checkpoint(path, map_location=lambda storage, loc: storage)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_file_is_told_apart_from_a_damaged_one_by_its_labels(tmp_path):
    from labutils.notebook import save_as_from_gpu

    plain = tmp_path / "plain.pt"
    torch.save(Net().state_dict(), plain)
    gpu = tmp_path / "gpu.pt"
    save_as_from_gpu(plain, gpu)
    with pytest.raises(CheckpointDeviceError, match="saved on cuda:0, which this machine lacks"):
        load_checkpoint(gpu, map_location=None, verify=False)
    assert load_checkpoint(gpu, verify=False)["fc3.bias"].device.type == "cpu", "the default map_location works"
    with pytest.raises(CheckpointDeviceError, match="map_location sends its tensors to cuda"):
        load_checkpoint(plain, map_location="cuda", verify=False)


def test_an_error_that_mentions_a_device_is_not_taken_for_a_device_problem(tmp_path, monkeypatch):
    """The file's own device labels decide, not the words in torch's message."""
    path = tmp_path / "plain.pt"
    torch.save(Net().state_dict(), path)
    real_load, calls = torch.load, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("unexpected end of data while reading the record for device tensors")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ck.torch, "load", fails_once)
    with pytest.raises(CheckpointCorruptError) as caught:
        load_checkpoint(path, verify=False)
    assert not isinstance(caught.value, CheckpointDeviceError)


def test_atomic_write_closes_the_file_when_fchmod_fails(tmp_path, monkeypatch):
    from labutils import _io

    def no_chmod(fd, mode):
        raise PermissionError("fchmod refused")

    _io.atomic_write_bytes(b"old", tmp_path / "f.bin")  # saving over a file copies its mode: fchmod runs
    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(_io.os, "fchmod", no_chmod)
    for _ in range(20):
        with pytest.raises(PermissionError):
            _io.atomic_write_bytes(b"x", tmp_path / "f.bin")
    assert len(os.listdir("/proc/self/fd")) <= before, "a descriptor leaked"
    assert names(tmp_path) == ["f.bin"] and (tmp_path / "f.bin").read_bytes() == b"old"


def test_the_file_mode_follows_the_umask_without_changing_it(tmp_path, monkeypatch):
    from labutils import _io

    umask = os.umask(0o022)  # the test reads it the only portable way, before the lab runs
    os.umask(umask)
    calls = []
    monkeypatch.setattr(_io.os, "umask", lambda mask: calls.append(mask) or 0o022)
    path = _io.atomic_write_bytes(b"x", tmp_path / "new.bin")
    assert calls == [], "os.umask changes the process's umask for every thread; it is read, not set"
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_wrong_order_for_atomic_write_bytes_is_named(tmp_path):
    from labutils._io import atomic_write_bytes

    with pytest.raises(TypeError, match="bytes first"):
        atomic_write_bytes(tmp_path / "x", b"data")


def test_wide_mlp_leaves_the_global_generator_alone():
    from labutils.large import wide_mlp

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = wide_mlp(0.5, seed=1)
    assert torch.equal(torch.rand(3), expected), "wide_mlp reseeded torch's global generator"
    b = wide_mlp(0.5, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_as_from_gpu_reports_a_failure_without_stderr(tmp_path, monkeypatch):
    import subprocess

    from labutils import notebook

    def silent_failure(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="")

    monkeypatch.setattr(notebook.subprocess, "run", silent_failure)
    with pytest.raises(RuntimeError, match="exit status 1"):
        notebook.save_as_from_gpu(tmp_path / "a.pt", tmp_path / "b.pt")


def test_extract_uses_the_shared_atomic_writer():
    import inspect

    from labutils import data

    source = inspect.getsource(data._extract)
    assert "atomic_write(" in source and "mkstemp" not in source


def test_bad_bytes_verify_and_load_through_one_open_file(tmp_path, monkeypatch):
    """Swap the file between the check and the load: the load still reads the bytes that were checked."""
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    other = save_checkpoint({"epoch": 666}, tmp_path / "other.pt")
    real_digest = ck.sha256sums.file_digest

    def digest_then_swap(f):
        digest = real_digest(f)
        os.replace(other, path)  # an attacker (or a second save) swaps the file right after the check
        return digest

    monkeypatch.setattr(ck.sha256sums, "file_digest", digest_then_swap)
    assert load_checkpoint(path)["epoch"] == 1, "the checked bytes were loaded, not the swapped-in file"


def test_a_mismatch_is_still_reported_after_the_retries(tmp_path):
    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    data = bytearray(path.read_bytes())
    data[-30] ^= 1
    Path(path).write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="net.pt: its sha256"):
        load_checkpoint(path)
