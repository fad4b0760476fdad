"""The trained-Net cache: trains when empty, reuses by parameters, never returns a stale or damaged Net."""
from __future__ import annotations

import json
import os

import pytest
import torch

import labutils._io
from labutils import TrainConfig, trained_net
from labutils.cache import cache_key, cache_path, store_trained_net

TINY = dict(epochs=1, batch_size=128, train_subset=600)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_empty_cache_trains_then_reuses(artifacts):
    first = trained_net(progress=False, **TINY)
    assert not first.from_cache and first.path.exists() and first.path.is_relative_to(artifacts)
    assert not first.model.training, "a trained Net comes back in eval mode"
    second = trained_net(progress=False, **TINY)
    assert second.from_cache and second.path == first.path
    assert _same(first.model, second.model) and second.history == first.history


def test_other_parameters_train_another_net(artifacts):
    a = trained_net(progress=False, **TINY)
    b = trained_net(progress=False, **{**TINY, "seed": 1})
    assert not b.from_cache and b.path != a.path and not _same(a.model, b.model)
    assert cache_key(TrainConfig(**TINY)) != cache_key(TrainConfig(**TINY, lr=0.02))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete the record", "garbage record"])
def test_damaged_cache_entry_is_never_returned(artifacts, damage):
    good = trained_net(progress=False, **TINY)
    path, record = good.path, good.path.with_suffix(".json")
    if damage == "flip a byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "delete the record":
        record.unlink()
    else:
        record.write_text("{not json")
    with pytest.warns(UserWarning, match="Ignoring the cached Net"):
        again = trained_net(progress=False, **TINY)
    assert not again.from_cache
    assert _same(again.model, good.model), "retraining with the same seed gives the same Net"
    assert trained_net(progress=False, **TINY).from_cache, "the rebuilt entry is used next time"


def test_entry_made_with_other_parameters_is_refused(artifacts):
    """A file under the right name but holding another configuration (a stale entry) is not returned."""
    other = trained_net(progress=False, **{**TINY, "seed": 1})
    target = cache_path(TrainConfig(**TINY))
    os.replace(other.path, target)
    os.replace(other.path.with_suffix(".json"), target.with_suffix(".json"))
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
    left = {p.name for p in good.path.parent.iterdir()}
    assert left == {good.path.name, good.path.with_suffix(".json").name}, f"no temporary may remain: {left}"
    assert trained_net(progress=False, **TINY).from_cache


def test_record_holds_the_configuration(artifacts):
    entry = trained_net(progress=False, **TINY)
    record = json.loads(entry.path.with_suffix(".json").read_text())
    assert record["config"] == TrainConfig(**TINY).to_dict()
    assert len(record["sha256"]) == 64


def test_unknown_parameter_is_named(artifacts):
    with pytest.raises(TypeError, match="trained_net\\(\\) got epoch; the parameters it knows are batch_size, epochs"):
        trained_net(epoch=3)
