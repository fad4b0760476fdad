import torch
import torch.nn as nn


def train_keep_best(model: nn.Module, epochs: int, train_one_epoch, score) -> tuple[int, dict[str, torch.Tensor]]:
    best_score, best_epoch, best = float("-inf"), 0, None
    for epoch in range(1, epochs + 1):
        train_one_epoch(model)
        epoch_score = score(model)
        if epoch_score > best_score:
            # copy=True: on a CPU model, .to("cpu") alone would return the model's own tensors
            best = {key: tensor.detach().to("cpu", copy=True) for key, tensor in model.state_dict().items()}
            best_score, best_epoch = epoch_score, epoch
    model.load_state_dict(best)  # copies the values back into the model's tensors, on its device
    return best_epoch, best
