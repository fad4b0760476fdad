"""Checks for the exercises of notebook 08 (large models): solutions in notebooks/solutions/ex08_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import Net
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex08_1", "ex08_2", "ex08_3", "ex08_4"]


def _adam_bytes(model: torch.nn.Module) -> int:
    """Return the bytes of a model's state_dict plus Adam's moments after one step (step counters left out)."""
    optimizer = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    moments = [t for s in optimizer.state_dict()["state"].values() for k, t in s.items() if k != "step"]
    return sum(t.numel() * t.element_size() for t in [*model.state_dict().values(), *moments])


@_check
def ex08_1(adam_checkpoint_bytes: Callable) -> str:
    """adam_checkpoint_bytes(n_params, dtype) -> bytes of the weights plus Adam's two moments."""
    for model, dtype in ((Net(), torch.float32), (Net().to(torch.bfloat16), torch.bfloat16),
                         (torch.nn.Linear(300, 7).double(), torch.float64)):
        n = sum(p.numel() for p in model.parameters())
        real = _adam_bytes(model)
        got = adam_checkpoint_bytes(n, dtype)
        _expect(got is not None, "adam_checkpoint_bytes returned None: return a number of bytes.")
        _expect(got == real, f"for {n:,} parameters of {dtype} you returned {got!r}; a model with Adam holds "
                f"{real:,} bytes." + (" Adam keeps two averages per parameter (exp_avg and exp_avg_sq)."
                                      if got == real // 3 * 2 else "") +
                (" Use dtype.itemsize: not every dtype takes 4 bytes." if dtype != torch.float32 and got == 12 * n
                 else ""))
    return "weights + two moments: 3 x parameters x dtype.itemsize, as real models measure."


@_check
def ex08_2(functions: tuple[Callable, Callable]) -> str:
    """(save_sharded(state_dict, folder), load_sharded(folder) -> state_dict): shards of at most 1 MB of tensors,
    each layer's tensors in one file, an index in the Hugging Face format."""
    import json
    import tempfile
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    save_sharded, load_sharded = functions
    generator = torch.Generator().manual_seed(0)
    # 245,000 + 6,000 bytes a layer: packed tensor by tensor (in this order, by layer or sorted), a shard ends
    # between a layer's two tensors, as huggingface_hub's save_torch_state_dict packs them
    state = {f"block{i}.weight": torch.randn(245, 250, generator=generator) for i in range(12)}
    state |= {f"block{i}.scale": torch.randn(1500, generator=generator) for i in range(12)}
    state["embedding.weight"] = torch.randn(300, 64, generator=generator).to(torch.bfloat16)
    state["steps"] = torch.tensor([1234], dtype=torch.int64)
    total = sum(t.numel() * t.element_size() for t in state.values())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        returned = save_sharded({k: v.clone() for k, v in state.items()}, folder)
        files = sorted(folder.glob("*.safetensors"))
        _expect(files or returned is not None, "save_sharded returned None and wrote no .safetensors file in the "
                "folder: save the state_dict there.")
        held = {f.name: load_file(f) for f in files}
        big = [(name, sum(t.numel() * t.element_size() for t in tensors.values())) for name, tensors in held.items()]
        big = [(name, size) for name, size in big if size > 1_000_000]
        _expect(not big, f"{big[0][0] if big else ''} holds {big[0][1] if big else 0:,} bytes of tensors: every file "
                "must stay at or under 1,000,000 bytes.")
        _expect(len(files) > 1, f"the state_dict holds {total:,} bytes: it needs several shards.")
        index_path = folder / "model.safetensors.index.json"
        _expect(index_path.is_file(), "write model.safetensors.index.json, the index that maps each key to its "
                "shard (section 3 prints one).")
        index = json.loads(index_path.read_text())
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        _expect(isinstance(weight_map, dict), "the index needs a \"weight_map\": {key: file name}, as section 3 "
                "prints it.")
        missing, extra = sorted(set(state) - set(weight_map)), sorted(set(weight_map) - set(state))
        _expect(not missing and not extra, f"the index's weight_map lacks {missing[:3]} and names keys the "
                f"state_dict does not have: {extra[:3]}.")
        wrong = sorted(k for k, f in weight_map.items() if k not in held.get(f, {}))
        _expect(not wrong, f"the index says {wrong[:1]} is in {weight_map[wrong[0]] if wrong else ''}, but that file "
                "does not hold it.")
        size = index.get("metadata", {}).get("total_size") if isinstance(index.get("metadata"), dict) else None
        _expect(size == total, f"the index's metadata says total_size {size!r}; the tensors take {total:,} bytes.")
        layers: dict = {}
        for key, file in weight_map.items():
            layers.setdefault(key.rpartition(".")[0] or key, {}).setdefault(file, key)
        split = next(((layer, files_of) for layer, files_of in layers.items() if len(files_of) > 1), None)
        _expect(split is None, f"layer {split[0] if split else ''} is spread over "
                f"{', '.join(sorted(split[1])) if split else ''}: keep each layer's tensors in one file. "
                "save_torch_state_dict packs tensor by tensor, so build the shards yourself and write the index "
                "as section 3 prints it.")
        save_file({"stray": torch.zeros(3)}, folder / "model-00099-of-00099.safetensors")  # not in the index
        loaded = load_sharded(folder)
        _expect(loaded is not None, "load_sharded returned None: return the state_dict read from the shards.")
        _expect("stray" not in loaded, "you loaded a file the index does not list: read the shards named in the "
                "index's weight_map, not every file in the folder.")
        missing, extra = sorted(set(state) - set(loaded)), sorted(set(loaded) - set(state))
        _expect(not missing and not extra, f"keys missing: {missing[:3]}, keys that should not be there: {extra[:3]}.")
        for key, tensor in state.items():
            _expect(loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor),
                    f"{key} came back different (dtype {loaded[key].dtype}, expected {tensor.dtype}).")
    return (f"{len(files)} shards of at most 1 MB, one file per layer, with an index; loaded back equal; a file "
            "outside the index ignored.")


def _bn_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(128, 128), torch.nn.BatchNorm1d(128), torch.nn.Linear(128, 10))


def _write_shards(folder, shards: dict[str, dict[str, torch.Tensor]]) -> None:
    """Write {file: tensors} as safetensors files and the index that lists them."""
    import json

    from safetensors.torch import save_file

    for file, tensors in shards.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, folder / file)
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for s in shards.values() for t in s.values())},
             "weight_map": {key: file for file, tensors in shards.items() for key in tensors}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@_check
def ex08_3(fill_from_shards: Callable) -> str:
    """fill_from_shards(meta_model, folder) -> the model, its tensors the shards' (raises naming missing keys)."""
    import tempfile
    from pathlib import Path

    from huggingface_hub import save_torch_state_dict

    torch.manual_seed(0)
    source = _bn_model()
    source[1].running_mean.normal_()
    source[1].num_batches_tracked.fill_(7)
    state = source.state_dict()

    def meta_model() -> torch.nn.Module:
        with torch.device("meta"):
            return _bn_model()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_torch_state_dict(state, folder, max_shard_size="30KB")
        model = fill_from_shards(meta_model(), folder)
        _expect(model is not None, "fill_from_shards returned None: return the filled model.")
        on_meta = [k for k, v in model.state_dict().items() if v.is_meta]
        _expect(not on_meta, f"{on_meta[:3]} are still on the meta device: copying into a meta tensor does nothing; "
                "pass assign=True to load_state_dict.")
        for key, tensor in state.items():
            _expect(torch.equal(model.state_dict()[key], tensor), f"{key} differs from the checkpoint.")
    # two damaged folders: one lacks the shard of the BatchNorm's buffers (every parameter is there), the other
    # the shard of the last layer's parameters
    statistics = ("1.running_mean", "1.running_var", "1.num_batches_tracked")
    layout = {"model-00001-of-00003.safetensors": {k: v for k, v in state.items() if k.startswith(("0.", "2."))},
              "model-00002-of-00003.safetensors": {k: state[k] for k in ("1.weight", "1.bias")},
              "model-00003-of-00003.safetensors": {k: state[k] for k in statistics}}
    for lost in ("model-00003-of-00003.safetensors", "model-00001-of-00003.safetensors"):
        missing = sorted(layout[lost])
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _write_shards(folder, {file: tensors for file, tensors in layout.items() if file != lost})
            try:
                partial = fill_from_shards(meta_model(), folder)
            except Exception as err:  # the right answer: refuse, naming what is missing
                _expect(any(key in str(err) for key in missing), f"you raised {type(err).__name__}: {err}, but the "
                        f"message should name the missing keys ({', '.join(missing)}).")
                continue
        left = [k for k, v in partial.state_dict().items() if v.is_meta] if partial is not None else missing
        if lost.startswith("model-00003"):
            raise _Wrong(f"the shards lack {', '.join(missing)}, a BatchNorm's running statistics, but you returned a "
                         f"model with {left[:3]} still on the meta device. strict=False hides missing keys, and these "
                         "are buffers, not parameters: check every tensor the model's state_dict has, and raise.")
        raise _Wrong(f"the shards lack {', '.join(missing)}, but you returned a model (with {left[:2]} on the meta "
                     "device). strict=False hides missing keys: check them yourself and raise.")
    return ("the meta model filled shard by shard; a missing shard of parameters, and one of buffers only, refused "
            "by name.")


class _Storage:
    """Stands for a storage that torch.load hands to map_location: it records where it is sent, needs no GPU."""

    def __init__(self) -> None:
        self.device: str | None = None

    def cuda(self, device=None, non_blocking: bool = False) -> _Storage:
        self.device = "cuda:0" if device is None else str(torch.device("cuda", device) if isinstance(device, int)
                                                          else torch.device(device))
        return self

    def cpu(self) -> _Storage:
        self.device = "cpu"
        return self

    def to(self, device=None, non_blocking: bool = False) -> _Storage:
        self.device = str(torch.device(device))
        return self


def _restored_to(map_location, label: str) -> str:
    """Where torch.load puts a tensor saved with location `label`, given `map_location`, decided as torch 2.14 does
    (torch.serialization._get_restore_location) but recorded instead of moved, so that no GPU is needed."""
    import torch.serialization as serialization

    where: list[str] = []
    original = serialization.default_restore_location
    serialization.default_restore_location = lambda storage, location: where.append(str(location)) or storage
    try:
        result = serialization._get_restore_location(map_location)(_Storage(), label)
    finally:
        serialization.default_restore_location = original
    if where:
        return where[-1]
    if isinstance(result, _Storage):
        return result.device or "cpu"  # a function that returned the storage untouched leaves it on the CPU
    return "cpu"


@_check
def ex08_4(map_location_for: Callable) -> str:
    """map_location_for(rank, local_rank, gpus) -> a map_location that loads every tensor onto this process's own
    GPU (the CPU where the machine has no GPU), wherever the file was saved."""
    # (rank, local_rank, GPUs on this machine): one machine of 2 GPUs, the second machine of a job on 2 x 4 GPUs,
    # a CPU-only machine
    cases = ((1, 1, 2), (0, 0, 2), (5, 1, 4), (3, 3, 4), (1, 1, 0))
    # the locations a file can hold: saved by rank 0, by rank 1, by rank 5 of an 8-GPU machine, on a CPU
    labels = ("cuda:0", "cuda:1", "cuda:5", "cpu")
    for rank, local_rank, gpus in cases:
        answer = map_location_for(rank, local_rank, gpus)
        _expect(answer is not None, "map_location_for returned None: return what you "
                "would pass as torch.load's map_location (None keeps every tensor where the file says it was).")
        own = f"cuda:{local_rank}" if gpus else "cpu"
        for label in labels:
            try:
                target = _restored_to(answer, label)
            except _Wrong:
                raise
            except Exception as err:  # noqa: BLE001 - a map_location torch would refuse
                raise _Wrong(f"torch.load could not use what you returned for rank {rank} ({answer!r}): "
                             f"{type(err).__name__}: {err}") from None
            if target == own or (label == "cpu" and gpus and target == "cpu"):
                continue
            if not gpus:
                raise _Wrong(f"on a machine without a GPU (gpus=0) a tensor saved on {label} would go to {target}: "
                             "torch.load fails there (section 5 printed the error). Send everything to the CPU.")
            if target == f"cuda:{rank}" and rank != local_rank:
                raise _Wrong(f"rank {rank} would load onto cuda:{rank}, a GPU its machine ({gpus} GPUs) does not "
                             f"have. rank numbers the processes of the whole job; local_rank ({local_rank}) numbers "
                             "them on their machine, as its GPUs are numbered.")
            if target == label:
                raise _Wrong(f"rank {rank}: a tensor saved on {label} would stay on {label}, not go to this "
                             f"process's GPU, cuda:{local_rank}. A dict maps only the locations it lists; a file "
                             "saved by another rank, or on a machine with more GPUs, holds others.")
            raise _Wrong(f"rank {rank} (local_rank {local_rank}, {gpus} GPUs): a tensor saved on {label} would go "
                         f"to {target}; it belongs on {own}.")
    return ("every tensor, saved on any GPU, lands on this process's own GPU (cuda:local_rank), and on the CPU "
            "where there is none.")
