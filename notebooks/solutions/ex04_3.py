import torch


def unsafe_globals(path):
    return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
