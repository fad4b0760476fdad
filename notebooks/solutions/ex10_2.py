import copy
import hashlib
from pathlib import Path

import torch


def save_for_sharing(model: torch.nn.Module, tokenizer, folder: Path) -> None:
    half = copy.deepcopy(model).to(torch.bfloat16)  # a copy: .to() changes the model it is called on
    half.save_pretrained(folder)  # config.json records "dtype": "bfloat16", which from_pretrained keeps
    tokenizer.save_pretrained(folder)
    folder = Path(folder)
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"  # two spaces, a name, no folder
             for path in sorted(folder.iterdir()) if path.is_file()]
    (folder / "SHA256SUMS").write_text("".join(lines))  # last, over every other file
