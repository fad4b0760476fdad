import torch


def pixel_mean_std(images: torch.Tensor) -> tuple[float, float]:
    pixels = images.double() / 255  # float64: the sum of 47 million pixels needs the precision
    return pixels.mean().item(), pixels.std().item()
