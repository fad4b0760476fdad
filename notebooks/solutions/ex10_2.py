from pathlib import Path

import torch

from labutils.share import write_checksums


def save_for_sharing(model: torch.nn.Module, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder, max_shard_size="100KB")  # config.json, generation_config.json, shards, index
    tokenizer.save_pretrained(folder)  # tokenizer.json, tokenizer_config.json
    write_checksums(folder)  # last, over every file
