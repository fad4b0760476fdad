import torch


def export_dynamic(model):
    example = (torch.randn(2, 1, 28, 28),)  # at least 2: a batch of 1 would be specialised
    return torch.export.export(model, example, dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
