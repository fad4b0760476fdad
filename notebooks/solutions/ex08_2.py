import json
from pathlib import Path

import safetensors.torch
from huggingface_hub import save_torch_state_dict


def save_sharded(state_dict: dict, folder: Path) -> None:
    save_torch_state_dict(state_dict, folder, max_shard_size="1MB")


def load_sharded(folder: Path) -> dict:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    state_dict = {}
    for shard in sorted(set(index["weight_map"].values())):
        state_dict.update(safetensors.torch.load_file(folder / shard))
    return state_dict
