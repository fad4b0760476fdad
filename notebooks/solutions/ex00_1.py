import torch


def count_digit(labels: torch.Tensor, digit: int) -> int:
    return int((labels == digit).sum())
