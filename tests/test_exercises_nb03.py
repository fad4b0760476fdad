"""Exercise 03.1 (a checkpoint from any training loop): the check says yes to the solution and no to the skeleton,
to section 3's dictionary copied line for line, and to the plausible half-way answers, each with its hint."""
from __future__ import annotations

import warnings

import pytest

from test_exercises import SOLUTIONS, _exercise, _run

# notebook 03 cell 22 (section 3): the checkpoint dictionary, copied into the exercise's signature
COPIED_SECTION_3 = """\
def make_checkpoint(model, optimizer, scheduler, epoch, loss):
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "loss": loss.item(),  # a Python float, not a tensor with a graph or a NumPy value
    }"""

# the copy with the scheduler handled: NumPy values pass .item(), the NumPy epoch does not load weights-only
SCHEDULER_HANDLED = COPIED_SECTION_3.replace('scheduler.state_dict(),',
                                             'None if scheduler is None else scheduler.state_dict(),')

# the epoch converted too: a loss that already is a Python float has no .item()
EPOCH_CONVERTED = SCHEDULER_HANDLED.replace('"epoch": epoch,', '"epoch": int(epoch),')

# the scheduler key left out when there is none: the loader cannot tell "none" from "forgotten"
KEY_LEFT_OUT = """\
def make_checkpoint(model, optimizer, scheduler, epoch, loss):
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": int(epoch),
                  "loss": float(loss.detach()) if hasattr(loss, "detach") else float(loss)}
    if scheduler is not None:
        checkpoint["scheduler"] = scheduler.state_dict()
    return checkpoint"""


def test_the_exercise_cell_is_not_section_3s_dictionary():
    _, skeleton, _ = _exercise("ex03_1")
    assert "def make_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, epoch, loss)" in skeleton
    assert "return None" in skeleton


def test_the_solution_passes_without_a_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float() of a tensor that requires grad warns; the solution must not
        ok, out = _run("ex03_1", (SOLUTIONS / "ex03_1.py").read_text(), capsys)
    assert ok is True and out.startswith("✓ ex03_1: model, optimizer and scheduler state_dicts (or None)"), out


def test_the_skeleton_is_refused(capsys):
    _, skeleton, _ = _exercise("ex03_1")
    ok, out = _run("ex03_1", skeleton, capsys)
    assert ok is False and out == ("✗ ex03_1: make_checkpoint returned None: return a dict with model, optimizer, "
                                   "scheduler, epoch and loss.\n"), out


@pytest.mark.parametrize(("code", "hint"), [
    (COPIED_SECTION_3, ("with scheduler=None, your code raised AttributeError: 'NoneType' object has no attribute "
                        "'state_dict'. A loop without a schedule passes None")),
    (SCHEDULER_HANDLED, "the epoch and the loss came as NumPy scalars and stayed NumPy values: store Python numbers"),
    (EPOCH_CONVERTED, ("with the loss already a Python float, your code raised AttributeError: 'float' object has "
                       "no attribute 'item'")),
    (KEY_LEFT_OUT, "with scheduler=None, store None under \"scheduler\", so that the loader knows there was none."),
], ids=["copied section 3", "scheduler handled", "epoch converted too", "scheduler key left out"])
def test_a_half_way_answer_is_refused_with_the_hint_that_fits(code, hint, capsys):
    ok, out = _run("ex03_1", code, capsys)
    assert ok is False and out.startswith("✗ ex03_1: ") and hint in out, out
