import torch


def adam_checkpoint_bytes(n_params: int, dtype: torch.dtype) -> int:
    # the weights, then Adam's exp_avg and exp_avg_sq: each of the parameters' own dtype
    return 3 * n_params * dtype.itemsize
