from pathlib import Path

from safetensors.torch import load_file

import labutils


def net_from_state_folder(folder: Path) -> labutils.Net:
    net = labutils.Net()
    net.load_state_dict(load_file(folder / "model.safetensors"))  # the unwrapped model's plain state_dict
    return net.eval()  # to predict
