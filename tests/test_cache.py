"""The trained-Net cache: trains when empty, reuses by parameters, never returns a stale or damaged Net."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

import labutils
import labutils._io
from labutils import TrainConfig, trained_net
from labutils.cache import cache_key, cache_path, store_trained_net
from labutils.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from listing import names

TINY = dict(epochs=1, batch_size=128, train_subset=600)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def trained_entries(tmp_path_factory) -> dict[int, list]:
    """The TINY Net with seed 0 and with seed 1, each trained once for the module by trained_net on an empty cache of
    its own: {seed: [its cache file, its sidecar]}. A test that needs a Net in its cache before what it checks starts
    from a copy (a train less each); training is still checked where it is the point (an empty cache trains, other
    parameters train, a damaged or stale entry is retrained into the same Net)."""
    entries = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path_factory.mktemp("trained") / "artifacts"))
        patch.delenv("LAB_SHARED_CACHE", raising=False)
        for seed in (0, 1):
            made = trained_net(progress=False, **{**TINY, "seed": seed})
            assert not made.from_cache
            entries[seed] = [made.path, sidecar_path(made.path)]
    return entries


def _cached(entries, seed: int = 0):
    """Put the module's trained Net of `seed` into this test's cache, as trained_net left it; return what trained_net
    serves from it."""
    config = {**TINY, "seed": seed}
    folder = cache_path(TrainConfig(**config)).parent
    folder.mkdir(parents=True, exist_ok=True)
    for path in entries[seed]:
        shutil.copy2(path, folder / path.name)
    served = trained_net(progress=False, **config)
    assert served.from_cache and served.path == cache_path(TrainConfig(**config))
    return served


def test_empty_cache_trains_then_reuses(artifacts):
    first = trained_net(progress=False, **TINY)
    assert not first.from_cache and first.path.exists() and first.path.is_relative_to(artifacts)
    assert not first.model.training, "a trained Net comes back in eval mode"
    second = trained_net(progress=False, **TINY)
    assert second.from_cache and second.path == first.path
    assert _same(first.model, second.model) and second.history == first.history


def test_other_parameters_train_another_net(artifacts, trained_entries):
    a = _cached(trained_entries)
    b = trained_net(progress=False, **{**TINY, "seed": 1})
    assert not b.from_cache and b.path != a.path and not _same(a.model, b.model)
    assert cache_key(TrainConfig(**TINY)) != cache_key(TrainConfig(**TINY, lr=0.02))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete the sidecar", "garbage sidecar"])
def test_damaged_cache_entry_is_never_returned(artifacts, trained_entries, damage):
    good = _cached(trained_entries)
    path, record = good.path, sidecar_path(good.path)
    if damage == "flip a byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "delete the sidecar":
        record.unlink()
    else:
        record.write_text("{not a checksum")
    with pytest.warns(UserWarning, match="Ignoring the cached Net"):
        again = trained_net(progress=False, **TINY)
    assert not again.from_cache
    assert _same(again.model, good.model), "retraining with the same seed gives the same Net"
    assert trained_net(progress=False, **TINY).from_cache, "the rebuilt entry is used next time"


def test_entry_made_with_other_parameters_is_refused(artifacts, trained_entries):
    """A file under the right name but holding another configuration (a stale entry) is not returned."""
    other = _cached(trained_entries, seed=1)
    target = cache_path(TrainConfig(**TINY))
    stale = load_checkpoint(other.path)
    save_checkpoint({"model": stale["model"], "history": stale["history"]}, target,
                    metadata={"config": stale["metadata"]["config"]})
    with pytest.warns(UserWarning, match="it was trained with"):
        fresh = trained_net(progress=False, **TINY)
    assert not fresh.from_cache and not _same(fresh.model, other.model)


def test_failed_save_keeps_the_old_entry_and_leaves_no_partial_file(artifacts, monkeypatch):
    good = trained_net(progress=False, **TINY)
    before = good.path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(labutils._io.os, "replace", crash)
        store_trained_net(torch.nn.Linear(1, 1), [], TrainConfig(**TINY))
    assert good.path.read_bytes() == before
    left = set(names(good.path.parent))
    lock = f".{good.path.name}.training"  # the lock that lets one process at a time train this Net
    assert left == {good.path.name, sidecar_path(good.path).name, lock}, f"no temporary may remain: {left}"
    assert trained_net(progress=False, **TINY).from_cache


def test_entry_records_the_configuration_and_its_checksum(artifacts, trained_entries):
    entry = _cached(trained_entries)
    assert load_checkpoint(entry.path)["metadata"]["config"] == TrainConfig(**TINY).to_dict()
    assert len(sidecar_path(entry.path).read_text().split()[0]) == 64


def test_unknown_parameter_is_named(artifacts):
    with pytest.raises(TypeError, match="trained_net\\(\\) got epoch; the parameters it knows are batch_size, epochs"):
        trained_net(epoch=3)


def test_the_cache_key_names_the_kind_of_device_that_trained(artifacts):
    """A Net trained on a GPU or on Apple's MPS computes differently: it is not served to a CPU request."""
    config = TrainConfig(**TINY)
    keys = {device: cache_key(config, device) for device in ("cpu", "cuda", "cuda:1", "mps")}
    assert keys["cpu"] == cache_key(config) and keys["cuda"] == keys["cuda:1"]
    assert len({keys["cpu"], keys["cuda"], keys["mps"]}) == 3
    net = trained_net(device="cpu", progress=False, **TINY)
    assert net.path == cache_path(config, "cpu")
    model = torch.nn.Linear(1, 1)
    assert store_trained_net(model, [], config) == cache_path(config, "cpu"), "stored under the device it trained on"


_ASK = ("import labutils; net = labutils.trained_net(progress=False, epochs=1, batch_size=128, train_subset=600); "
        "print('from the cache' if net.from_cache else 'trained')")


def _ask_while_another_trains(artifacts, store: bool) -> tuple[str, str]:
    """A second process asks for the Net while this one holds its training lock, stores it (or not), and lets go."""
    path = cache_path(TrainConfig(**TINY))
    env = {**os.environ, "LAB_ARTIFACTS_DIR": str(artifacts)}
    with labutils._io.folder_locked(path.parent / f".{path.name}.training"):
        child = subprocess.Popen([sys.executable, "-u", "-c", _ASK], env=env, stdout=subprocess.PIPE, text=True)
        waiting = child.stdout.readline()  # it says so before it waits: the lock is ours until we leave the block
        if store:
            store_trained_net(labutils.Net(), [{"epoch": 1}], TrainConfig(**TINY))
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    return waiting, out


def test_a_process_asking_for_a_net_another_trains_waits_and_loads_it(artifacts):
    waiting, out = _ask_while_another_trains(artifacts, store=True)
    assert waiting.startswith("Another process is training this Net for ") and "waiting for it" in waiting
    assert "No trained Net in the cache" not in out and out.strip().endswith("from the cache")


def test_when_the_trainer_stores_nothing_the_waiting_process_trains(artifacts):
    waiting, out = _ask_while_another_trains(artifacts, store=False)
    assert "waiting for it" in waiting
    assert "No trained Net in the cache" in out and out.strip().endswith("trained")


@pytest.mark.parametrize("cached", [True, False], ids=["holds the Net", "empty"])
def test_a_read_only_cache_serves_what_it_holds_and_a_save_into_it_says_why_it_failed(artifacts, trained_entries,
                                                                                       cached):
    """A cache an instructor shares read-only: the training lock, which needs a folder, must not get in the way."""
    folder = cache_path(TrainConfig(**TINY)).parent
    folder.mkdir(parents=True)
    if cached:  # the Net and its sidecar, without the training lock (a folder) that training leaves beside them
        _cached(trained_entries)
        assert not (folder / f".{cache_path(TrainConfig(**TINY)).name}.training").exists()
    before = names(folder)
    code = ("import labutils\ntry:\n    net = labutils.trained_net(progress=False, epochs=1, batch_size=128, "
            "train_subset=600)\n    print('from the cache' if net.from_cache else 'trained')\n"
            "except Exception as err:\n    print(type(err).__name__, err)\n")
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root writes anywhere; without the capability to override permissions, it cannot
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    folder.chmod(0o555)
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "LAB_ARTIFACTS_DIR": str(artifacts)})
    finally:
        folder.chmod(0o755)
    assert child.returncode == 0, child.stderr
    last = child.stdout.strip().splitlines()[-1]
    if cached:
        assert last == "from the cache"
    else:
        assert last.startswith("CheckpointWriteError") and cache_path(TrainConfig(**TINY)).name in last, last
        assert "Permission denied" in last and "fix the folder's permissions" in last, last
    assert names(folder) == before


def test_a_shared_read_only_cache_serves_first_and_is_never_written(artifacts, trained_entries, tmp_path,
                                                                    monkeypatch):
    """A classroom hub's cache (LAB_SHARED_CACHE, tools/hub/): a learner gets the instructor's Net from it, and
    nothing is written there or into their own cache; without the Net in it, their own cache is used as before."""
    made = _cached(trained_entries)  # the instructor's, trained once
    shared = tmp_path / "shared"
    shared.mkdir()
    for path in (made.path, sidecar_path(made.path)):
        shutil.copy2(path, shared / path.name)
        path.unlink()  # the learner's own cache is empty
    shared.chmod(0o555)
    monkeypatch.setenv("LAB_SHARED_CACHE", str(shared))
    try:
        served = trained_net(progress=False, **TINY)
        assert served.from_cache and served.path == shared / made.path.name
        assert torch.equal(served.model.fc3.weight, made.model.fc3.weight)
        assert sorted(p.name for p in shared.iterdir()) == sorted([made.path.name, sidecar_path(made.path).name])
        assert not list(made.path.parent.glob("net-*.pt")), "a Net served from the shared cache was copied"
        other = trained_net(progress=False, **{**TINY, "seed": 1})  # not in the shared cache: trained, kept as before
        assert not other.from_cache and other.path.parent == made.path.parent
    finally:
        shared.chmod(0o755)
