import torch


def save_everything(model, path):
    # state_dict() holds the parameters and the buffers (BatchNorm's running statistics)
    torch.save(model.state_dict(), path)
