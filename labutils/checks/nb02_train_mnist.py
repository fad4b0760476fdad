"""Checks for the exercises of notebook 02 (train mnist): solutions in notebooks/solutions/ex02_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import BatchNormNet
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex02_1", "ex02_2", "ex02_3"]


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
