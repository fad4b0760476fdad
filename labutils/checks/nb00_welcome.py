"""Checks for the exercises of notebook 00 (welcome): solutions in notebooks/solutions/ex00_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex00_1", "ex00_2"]


@_check
def ex00_1(count_digit: Callable) -> str:
    """count_digit(labels, digit) -> how many labels equal digit."""
    from ..data import mnist_tensors

    toy = torch.tensor([3, 1, 3, 3, 0])
    got = count_digit(toy, 3)
    _expect(got is not None, "count_digit returned None: return the count (a number).")
    _expect(int(got) == 3 and float(got) == 3, f"count_digit(tensor([3, 1, 3, 3, 0]), 3) gave {got}, not 3: compare "
                                               "the whole tensor with the digit at once, then add up the matches.")
    _expect(int(count_digit(toy, 7)) == 0, "a digit that never occurs must give 0.")
    _, labels = mnist_tensors(train=True)
    expected = torch.bincount(labels, minlength=10)
    for digit in range(10):
        got = int(count_digit(labels, digit))
        _expect(got == expected[digit], f"on the training labels, digit {digit} gave {got}; compare each label "
                                        "with the digit and count the matches.")
    return (f"right for all ten digits (the rarest is 5 with {int(expected[5]):,} images, the most common 1 with "
            f"{int(expected[1]):,}).")


@_check
def ex00_2(pixel_mean_std: Callable) -> str:
    """pixel_mean_std(images_uint8) -> (mean, std) of all pixels scaled to [0, 1]."""
    from ..data import MEAN, STD, mnist

    toy = torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8)
    got = pixel_mean_std(toy)
    _expect(got is not None, "pixel_mean_std returned None: return the pair (mean, std) as floats.")
    _expect(isinstance(got, (tuple, list)) and len(got) == 2, f"return a pair (mean, std), not {got!r}.")
    mean, std = (float(v) for v in got)
    _expect(abs(mean - 0.5) < 1e-6, f"pixels 0, 255, 255, 0 gave mean {mean}; scale to [0, 1] first (divide by 255).")
    _expect(abs(std - 0.5) < 1e-3 or abs(std - 0.57735) < 1e-3,
            f"pixels 0, 255, 255, 0 gave std {std}; scale to [0, 1] before taking the standard deviation.")
    images = mnist(train=True, transform=None).data
    mean, std = (float(v) for v in pixel_mean_std(images))
    _expect(abs(mean - MEAN) < 5e-5 and abs(std - STD) < 5e-5,
            f"on the training images you got mean {mean:.4f}, std {std:.4f}; expected {MEAN}, {STD}. Convert to "
            "float before dividing, and take the statistics over all pixels of all images.")
    return f"mean {mean:.4f}, std {std:.4f}: the constants in every Normalize((0.1307,), (0.3081,))."
