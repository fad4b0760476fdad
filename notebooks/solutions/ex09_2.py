import torch


def load_on_cpu(path):
    return torch.load(path, map_location="cpu", weights_only=True)
