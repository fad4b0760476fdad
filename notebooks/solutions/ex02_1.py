import torch


def accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    best_k = logits.topk(k, dim=1).indices  # (rows, k): each row's k largest logits, best first
    return (best_k == labels[:, None]).any(dim=1).float().mean().item()
