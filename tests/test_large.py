"""labutils.large: the synthetic model, the four loaders, the memory measurement; the I/O benchmark's methods."""
from __future__ import annotations

import hashlib
import os
import runpy
import sys
from pathlib import Path

import pytest
import torch
from machine import machine

from labutils.large import (LOADERS, MB, WideMLP, backing_file, free_memory_bytes, human, measure_rss, peak_memory,
                            read_one_tensor, reset_peak, touch, weight_bytes, wide_mlp, wide_shape)
from labutils.paths import REPO_ROOT


def test_wide_shape_reaches_the_size_asked_for():
    width, depth = wide_shape(1024)
    assert width == 2048 and depth == 64
    assert weight_bytes(WideMLP(256, wide_shape(3, 256)[1])) == pytest.approx(3 * MB, rel=0.1)
    assert wide_shape(0.001, 512) == (512, 1), "at least one layer"
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="megabytes must be > 0"):
            wide_shape(bad)


def test_wide_mlp_is_the_same_for_a_seed_and_costs_nothing_on_meta():
    a, b, c = wide_mlp(2, width=256, seed=3), wide_mlp(2, width=256, seed=3), wide_mlp(2, width=256, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
    ghost = wide_mlp(4096, device="meta")
    assert all(p.is_meta for p in ghost.parameters()) and weight_bytes(ghost) == pytest.approx(4096 * MB, rel=0.01)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    model = wide_mlp(3, width=256, seed=1)
    torch.save(model.state_dict(), folder / "wide.pt")
    import safetensors.torch
    safetensors.torch.save_file(model.state_dict(), folder / "wide.safetensors")
    return model, folder


@pytest.mark.parametrize("name", list(LOADERS))
def test_every_loader_gives_the_saved_model(saved, name):
    model, folder = saved
    loaded = LOADERS[name](folder / "wide.pt", model.width, model.depth)
    assert not any(p.is_meta for p in loaded.parameters())
    assert all(torch.equal(x, y) for x, y in zip(loaded.state_dict().values(), model.state_dict().values()))
    x = torch.randn(2, model.width)
    assert torch.equal(loaded(x), model(x))


def _mapped_from(tensor: torch.Tensor, path: Path) -> bool:
    found = backing_file(tensor)
    return found is not None and Path(found).samefile(path)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's memory map")
def test_only_meta_mmap_assign_leaves_the_weights_in_the_file(saved):
    model, folder = saved
    path = folder / "wide.pt"
    for name, loader in LOADERS.items():
        loaded = loader(path, model.width, model.depth)
        assert _mapped_from(loaded.layers[0].weight, path) is (name == "meta + mmap + assign"), name
        if name != "meta + mmap + assign":
            assert backing_file(loaded.layers[0].weight) is None, "memory of its own"


def test_read_one_tensor_and_touch(saved):
    model, folder = saved
    weight = read_one_tensor(folder / "wide.safetensors", "layers.1.weight")
    assert torch.equal(weight, model.layers[1].weight)
    assert touch([weight, model.layers[0].bias]) == weight.nbytes + model.layers[0].bias.nbytes


def test_peak_memory_refuses_an_unknown_strategy_and_names_a_missing_or_damaged_file(tmp_path):
    torch.save(WideMLP(256, 1).state_dict(), tmp_path / "good.pt")
    (tmp_path / "damaged.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unknown strategy 'fast'.*naive"):
        peak_memory({"naive": tmp_path / "good.pt", "fast": tmp_path / "good.pt"}, 256, 1)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist: save the model there first"):
        peak_memory({"naive": tmp_path / "good.pt", "mmap": tmp_path / "missing.pt"}, 256, 1)
    with pytest.raises(RuntimeError, match=r"(?s)damaged.pt with 'meta \+ assign' failed in the child.*Unpickling"):
        peak_memory({"naive": tmp_path / "good.pt", "meta + assign": tmp_path / "damaged.pt",
                     "mmap": tmp_path / "good.pt"}, 256, 1)
    # (a good file measured: the next test, with every strategy)


def test_peak_memory_measures_each_load_in_a_process_of_its_own(tmp_path):
    torch.save(WideMLP(1024, 8).state_dict(), tmp_path / "wide.pt")  # 32 MiB of weights
    measured = peak_memory({strategy: tmp_path / "wide.pt" for strategy in LOADERS}, 1024, 8)
    assert list(measured) == list(LOADERS) and len({m["pid"] for m in measured.values()}) == len(LOADERS)
    weights = weight_bytes(WideMLP(1024, 8))
    # bounds that depend on the machine (allocator, page cache, Python's first-load pages): a breach names them all
    seen = (f"peak above the start, for {human(weights)} of weights: "
            + ", ".join(f"{s} {human(m['peak_extra'])} ({m['peak_extra'] / weights:.2f}x)" for s, m in measured.items())
            + f"; {machine()}")
    assert measured["naive"]["peak_extra"] > 1.8 * weights, f"a fresh process: the file and the model, twice. {seen}"
    # once: the weights, plus the library code a first large load faults in (file-backed pages: about 4 MiB on
    # Python 3.11 and 12 MiB on 3.13, whatever the model's size); twice would be 2 x 32 MiB
    assert measured["meta + mmap + assign"]["peak_extra"] < weights + max(0.3 * weights, 16 * MB), \
        f"meta + mmap + assign holds the weights once. {seen}"


def test_measure_rss_sees_memory_in_use_and_reset_peak_forgets_a_peak_that_is_gone():
    """The pair the peak-memory harness and benchmarks/checkpoint_io.py measure with."""
    before = measure_rss()
    block = b"x" * (64 * MB)  # written, so resident
    during = measure_rss()
    assert during["now"] - before["now"] > 48 * MB and during["peak"] >= during["now"], (before, during)
    del block
    after = measure_rss()
    assert after["now"] < during["now"] - 48 * MB, "freed: no longer resident"
    assert after["peak"] > after["now"] + 48 * MB, "the peak remembers the block"
    if not reset_peak():
        pytest.skip("this system keeps no peak that can be reset (Linux only)")
    assert measure_rss()["peak"] < after["now"] + 16 * MB, "reset: the block's peak is forgotten"


def test_human_units():
    assert [human(n) for n in (0, 1023, 1536, 250 * MB, 7e9 * 2)] == ["0 B", "1023 B", "1.5 KiB", "250.0 MiB",
                                                                       "13.0 GiB"]


def test_every_method_the_io_benchmark_times_loads_what_it_saved(tmp_path):
    """benchmarks/checkpoint_io.py times seven ways to save and load (make benchmarks); each must round-trip exactly."""
    bench = runpy.run_path(str(REPO_ROOT / "benchmarks" / "checkpoint_io.py"), run_name="checkpoint_io")
    state = wide_mlp(1, width=128, seed=2).state_dict()
    assert len(bench["METHODS"]) == 7
    for name, file, save, load in bench["METHODS"]:
        path = tmp_path / file
        if save is not None:
            save(state, path)
        loaded = load(path, state)
        extra = {"metadata"} if file == "checkpoint.pt" else set()  # load_checkpoint adds its metadata
        assert set(loaded) == set(state) | extra, name
        assert all(torch.equal(loaded[key], value) for key, value in state.items()), name
    data = os.urandom(40 << 20)  # the one-pass limit reads and hashes every byte once, in 16 MiB reads
    (tmp_path / "bytes.bin").write_bytes(data)
    assert bench["one_pass"](tmp_path / "bytes.bin") == hashlib.sha256(data).hexdigest()


def test_free_memory_sees_a_container_limit(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: 24000000 kB\nMemAvailable: 20971520 kB\n")
    assert free_memory_bytes(tmp_path) == 20 * 1024 * MB
    cgroup = tmp_path / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text(str(500 * MB))
    assert free_memory_bytes(tmp_path) == 20 * 1024 * MB, "no limit: MemAvailable"
    (cgroup / "memory.max").write_text(str(2048 * MB))
    assert free_memory_bytes(tmp_path) == 1548 * MB, "a 2 GiB container with 500 MiB used"
    assert free_memory_bytes(tmp_path / "nowhere") is None


def test_the_benchmark_refuses_a_size_it_cannot_build(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["checkpoint_io.py", "--megabytes", "0"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO_ROOT / "benchmarks" / "checkpoint_io.py"), run_name="__main__")
    assert done.value.code == 2 and "--megabytes must be above 0" in capsys.readouterr().err
