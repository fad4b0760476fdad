import torch
import torch.nn as nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    # copy=True: on a CPU model, .to("cpu") alone would return the model's own tensors
    return {key: tensor.detach().to("cpu", copy=True) for key, tensor in model.state_dict().items()}
