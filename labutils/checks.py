"""Checks for the notebooks' exercises: each prints ✓ or ✗ with a hint, returns True or False, never raises."""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch


class _Wrong(Exception):
    """The answer is wrong; the message is the hint shown to the learner."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _Wrong(hint)


def _check(func: Callable[[object], str]) -> Callable[[object], bool]:
    """Turn a function that raises _Wrong (or returns a success message) into a check that never raises."""

    @functools.wraps(func)
    def check(answer: object) -> bool:
        name = func.__name__
        if answer is None or answer is Ellipsis:
            print(f"✗ {name}: no answer yet: fill in the exercise cell above, run it, then run this cell again.")
            return False
        try:
            message = func(answer)
        except _Wrong as wrong:
            print(f"✗ {name}: {wrong}")
            return False
        except Exception as err:  # the learner's code failed: say how, never raise
            print(f"✗ {name}: your code raised {type(err).__name__}: {err}")
            return False
        print(f"✓ {name}: {message}")
        return True

    return check


# --- 00_welcome --------------------------------------------------------------------------------------------

@_check
def ex00_1(count_digit: Callable) -> str:
    """count_digit(labels, digit) -> how many labels equal digit."""
    from .data import mnist_tensors

    toy = torch.tensor([3, 1, 3, 3, 0])
    got = count_digit(toy, 3)
    _expect(got is not None, "count_digit returned None: return the count, e.g. with (labels == digit).sum().")
    _expect(int(got) == 3 and float(got) == 3, f"count_digit(tensor([3, 1, 3, 3, 0]), 3) gave {got}, not 3.")
    _expect(int(count_digit(toy, 7)) == 0, "a digit that never occurs must give 0.")
    _, labels = mnist_tensors(train=True)
    expected = torch.bincount(labels, minlength=10)
    for digit in range(10):
        got = int(count_digit(labels, digit))
        _expect(got == expected[digit], f"on the training labels, digit {digit} gave {got}; compare each label "
                                        "with the digit and count the matches.")
    return f"right for all ten digits (the rarest is 5 with {int(expected[5]):,} images, the most common 1 with {int(expected[1]):,})."


@_check
def ex00_2(pixel_mean_std: Callable) -> str:
    """pixel_mean_std(images_uint8) -> (mean, std) of all pixels scaled to [0, 1]."""
    from .data import MEAN, STD, mnist

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


# --- 01_define_net -----------------------------------------------------------------------------------------

@_check
def ex01_1(count_parameters: Callable) -> str:
    """count_parameters(model) -> the number of trainable parameters (buffers and frozen ones excluded)."""
    from .models import BatchNormNet, Net

    got = count_parameters(Net())
    _expect(got is not None, "count_parameters returned None: return the total as an int.")
    _expect(int(got) == 61_706, f"Net() gave {got}, expected 61,706: add up p.numel() for every parameter.")
    got = int(count_parameters(BatchNormNet()))
    _expect(got != 61_796, "BatchNormNet() gave 61,796: that counts buffers (running statistics); use "
                           "model.parameters(), not model.state_dict().")
    _expect(got == 61_750, f"BatchNormNet() gave {got}, expected 61,750 (Net plus the BatchNorm weights and biases).")
    frozen = Net()
    frozen.conv1.requires_grad_(False)
    got = int(count_parameters(frozen))
    _expect(got == 61_706 - 156, f"with conv1 frozen you got {got}, expected 61,550: count only parameters whose "
                                 "requires_grad is True.")
    return "61,706 trainable parameters in Net; buffers and frozen parameters are not counted."


@_check
def ex01_2(fc1_inputs: Callable) -> str:
    """fc1_inputs(image_size, conv1_padding) -> the number of features reaching fc1."""
    cases = {(28, 2): 400, (32, 0): 400, (28, 0): 256, (64, 0): 2704, (36, 2): 784}
    for (size, padding), expected in cases.items():
        got = fc1_inputs(size, padding)
        _expect(got is not None, "fc1_inputs returned None: return the number of features.")
        _expect(int(got) == expected, f"fc1_inputs({size}, {padding}) gave {got}, expected {expected}. Follow "
                                      "one side: + 2·padding, − 4 (conv1), ÷ 2 (pool), − 4 (conv2), ÷ 2 (pool); then "
                                      "16 channels × side × side.")
    return "right for 28×28 with and without padding, 32×32 and larger inputs."


@_check
def ex01_3(snapshot: Callable) -> str:
    """snapshot(model) -> a copy of the state_dict that later changes to the model do not touch."""
    from .models import BatchNormNet

    model = BatchNormNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snap = snapshot(model)
    _expect(snap is not None, "snapshot returned None: return a dict from each key to a copy of its tensor.")
    _expect(isinstance(snap, dict), f"return a dict of tensors (an OrderedDict), not {type(snap).__name__}.")
    _expect(list(snap) == list(before), "the snapshot must have the same keys, in the same order, as state_dict().")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 1, 28, 28))  # updates the BatchNorm buffers
    changed = [k for k in before if not torch.equal(snap[k], before[k])]
    _expect(not changed, f"after the model changed, your snapshot changed too ({', '.join(changed[:3])}…): "
                         "state_dict() returns views of the live tensors; clone them.")
    _expect(all(not v.requires_grad for v in snap.values()), "detach the tensors: a snapshot needs no autograd history.")
    return "the snapshot kept the old values while the model's parameters and buffers changed."


# --- 02_train_mnist ----------------------------------------------------------------------------------------

@_check
def ex02_1(accuracy: Callable) -> str:
    """accuracy(logits, labels) -> the fraction of rows whose largest logit is at the label."""
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [9.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    got = accuracy(logits, labels)
    _expect(got is not None, "accuracy returned None: return a float between 0 and 1.")
    _expect(isinstance(got, float), f"return a Python float (use .item()), not {type(got).__name__}.")
    _expect(abs(got - 0.5) < 1e-9, f"for 2 right out of 4 you returned {got}, expected 0.5: compare "
                                   "logits.argmax(dim=1) with the labels.")
    _expect(abs(accuracy(logits[:1], labels[:1]) - 1.0) < 1e-9, "one right out of one must give 1.0.")
    return "argmax over the classes, compared with the labels, averaged."


@_check
def ex02_2(per_class_accuracy: Callable) -> str:
    """per_class_accuracy(counts) -> for each true class, the fraction predicted correctly."""
    counts = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 5, 5]])
    got = per_class_accuracy(counts)
    _expect(got is not None, "per_class_accuracy returned None: return a tensor with one value per class.")
    got = torch.as_tensor(got, dtype=torch.float64)
    _expect(got.shape == (3,), f"return one value per class (shape (3,)), not shape {tuple(got.shape)}.")
    expected = torch.tensor([0.8, 0.75, 0.5], dtype=torch.float64)
    _expect(not torch.allclose(got, torch.tensor([8 / 9, 3 / 10, 5 / 5], dtype=torch.float64)),
            "you divided by the column sums (how often a class was predicted); rows are the true classes.")
    _expect(torch.allclose(got, expected), f"got {got.tolist()}, expected {expected.tolist()}: the diagonal "
                                           "divided by each row's total.")
    return "diagonal over row totals: the recall of each digit."


@_check
def ex02_3(evaluate_properly: Callable) -> str:
    """evaluate_properly(model, images, labels) -> accuracy in eval mode, leaving the model's mode as it was."""
    from .models import BatchNormNet

    generator = torch.Generator().manual_seed(0)
    model = BatchNormNet()
    images = torch.randn(2500, 1, 28, 28, generator=generator)
    model.train()(torch.randn(64, 1, 28, 28, generator=generator) * 3 + 1)  # running statistics unlike the data's
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        labels = model(images).argmax(1)  # the labels are eval mode's own answers: it scores exactly 1.0
    expected = 1.0
    model.train()
    got = evaluate_properly(model, images, labels)
    _expect(got is not None, "evaluate_properly returned None: return the accuracy as a float.")
    _expect(all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()),
            "evaluating changed the BatchNorm running statistics: call model.eval() before the forward pass.")
    _expect(abs(float(got) - expected) < 1e-6, f"you returned {float(got):.4f}, eval mode gives {expected:.4f}: "
                                               "with model.train(), Dropout and BatchNorm behave as in training.")
    _expect(model.training, "the model was in training mode before and must be again after: remember "
                            "model.training and restore it with model.train(was_training).")
    model.eval()
    evaluate_properly(model, images, labels)
    _expect(not model.training, "a model that arrived in eval mode must stay in eval mode.")
    return "eval mode for the forward pass, and the model left in the mode it came in."
