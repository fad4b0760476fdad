import json
from pathlib import Path

import safetensors.torch
import torch


def fill_from_shards(model: torch.nn.Module, folder: Path) -> torch.nn.Module:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    loaded = set()
    for shard in sorted(set(index["weight_map"].values())):
        part = safetensors.torch.load_file(folder / shard)  # one shard in memory at a time
        model.load_state_dict(part, strict=False, assign=True)
        loaded |= set(part)
    missing = sorted(set(model.state_dict()) - loaded)
    if missing:
        raise KeyError(f"the shards in {folder} do not hold {', '.join(missing)}")
    return model
