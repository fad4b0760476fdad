import torch


def export_dynamic(model, image):
    example = (image.repeat(2, 1, 1, 1),)  # 2 images, in a new tensor: not a batch of 1, and not a view
    return torch.export.export(model, example, dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
