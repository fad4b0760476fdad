"""Checks for the exercises of notebook 02 (train mnist): solutions in notebooks/solutions/ex02_*.py."""
from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from ..models import BatchNormNet
from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex02_1", "ex02_2", "ex02_3"]


@_check
def ex02_1(accuracy: Callable) -> str:
    """accuracy(logits, labels, k=1) -> the fraction of rows whose label is among the row's k largest logits."""
    logits = torch.tensor([[3.0, 1.0, 0.0, 2.0],  # label 0: the largest logit
                           [0.0, 2.0, 1.0, 0.5],  # label 1: the largest
                           [0.0, 3.0, 1.0, 2.0],  # label 3: the second largest
                           [1.0, 0.0, 4.0, 2.0],  # label 0: the third largest
                           [2.0, 1.0, 0.0, 5.0]])  # label 2: the smallest
    labels = torch.tensor([0, 1, 3, 0, 2])
    got = accuracy(logits, labels)
    _expect(got is not None, "accuracy returned None: return a float between 0 and 1.")
    _expect(isinstance(got, float), f"return a Python float (use .item()), not {type(got).__name__}.")
    _expect(abs(got - 0.4) < 1e-6, f"with k=1 (2 right out of 5) you returned {got}, expected 0.4: a row is right "
                                   "when its largest logit sits at its label.")
    _expect("k" in inspect.signature(accuracy).parameters,
            "accuracy needs a third parameter, k (how many of the largest logits count), with the default 1.")
    got = accuracy(logits, labels, k=2)
    _expect(isinstance(got, float), f"return a Python float (use .item()), not {type(got).__name__}.")
    _expect(abs(got - 0.4) > 1e-6, "with k=2 you returned 0.4, the same as with k=1: a row now counts when its label "
                                   "is any of its 2 largest logits (section 4 picks the 24 largest losses the same "
                                   "way).")
    _expect(abs(got - 0.3) > 1e-6, "with k=2 you returned 0.3, the right rows divided by 5 × 2 guesses: each row "
                                   "counts once, right if any of its k guesses is its label.")
    _expect(abs(got - 0.6) < 1e-6, f"with k=2 you returned {got}, expected 0.6 (the labels of rows 0, 1 and 2 are "
                                   "among their 2 largest logits).")
    for k, expected in ((3, 0.8), (4, 1.0)):
        got = accuracy(logits, labels, k=k)
        _expect(abs(got - expected) < 1e-6, f"with k={k} you returned {got}, expected {expected}.")
    generator = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(1000, 10, generator=generator), torch.randint(0, 10, (1000,), generator=generator)
    ranks = (logits > logits.gather(1, labels[:, None])).sum(1)  # how many logits beat the label's
    for k in (1, 5):
        expected = (ranks < k).double().mean().item()
        got = accuracy(logits, labels, k=k)
        _expect(abs(got - expected) < 1e-6, f"on 1,000 random rows of 10 logits, k={k} gave {got}, expected "
                                            f"{expected}.")
    return ("top-1 is the accuracy of section 2; top-k counts a row when the label is among its k best guesses "
            "(top-10 of 10 classes is always 1.0).")


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
    return "diagonal over row totals: each digit's recall, the share of its images that the model gets right."


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
