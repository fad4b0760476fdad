import json
from pathlib import Path

import safetensors.torch

LIMIT = 1_000_000  # bytes of tensors in one file


def save_sharded(state_dict: dict, folder: Path) -> None:
    layers: dict[str, dict] = {}  # "block3" -> {"block3.weight": ..., "block3.bias": ...}, in the state_dict's order
    for key, tensor in state_dict.items():
        layers.setdefault(key.rpartition(".")[0] or key, {})[key] = tensor
    shards, current, size = [], {}, 0
    for tensors in layers.values():  # whole layers, never one tensor at a time
        layer_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
        if current and size + layer_bytes > LIMIT:
            shards.append(current)
            current, size = {}, 0
        current |= tensors
        size += layer_bytes
    if current:
        shards.append(current)
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        safetensors.torch.save_file({k: v.contiguous() for k, v in shard.items()}, folder / name)
        weight_map |= dict.fromkeys(shard, name)
    total = sum(t.numel() * t.element_size() for t in state_dict.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def load_sharded(folder: Path) -> dict:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    state_dict = {}
    for shard in sorted(set(index["weight_map"].values())):
        state_dict.update(safetensors.torch.load_file(folder / shard))
    return state_dict
