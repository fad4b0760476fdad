import re
from pathlib import Path


def newest_complete_checkpoint(output_dir: Path) -> Path | None:
    found = []
    for path in Path(output_dir).iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        # trainer_state.json is the Trainer's last file: a folder that has it (and the weights) is a finished save
        if match and path.is_dir() and (path / "trainer_state.json").is_file() and (
                (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()):
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None
