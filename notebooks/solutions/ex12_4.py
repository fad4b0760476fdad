from pathlib import Path

import torch


def resume(path: Path, run: dict) -> dict:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    run["model"].load_state_dict(checkpoint["model"])
    run["optimizer"].load_state_dict(checkpoint["optimizer"])
    run["scheduler"].load_state_dict(checkpoint["scheduler"])
    run["step"], run["best_acc"] = checkpoint["step"], checkpoint["best_acc"]
    torch.set_rng_state(checkpoint["rng"])  # the Dropout masks from here on are those the run would have drawn
    return run
