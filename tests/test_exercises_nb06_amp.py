"""Exercise 06.5 (the whole state of a float16 run with an EMA): the check says yes to the solution, no to the
skeleton, and no to each answer a learner could build from the notebook's cells, naming what is missing."""
from __future__ import annotations

import pytest

from test_exercises import SOLUTIONS, _exercise, _run

SOLUTION = (SOLUTIONS / "ex06_5.py").read_text()

# Section 7's checkpoint (amp_run's cell), copied into the two functions: the scaler and the EMA are there, the
# schedule and the batch generator, which that loop does not have, are not.
COPIED_FROM_SECTION_7 = '''def save_state(run):
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "step": run.step,
            "scaler": run.scaler.state_dict(),
            "ema": run.ema.state_dict()}
def load_state(run, state):
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.step = state["step"]
    run.scaler.load_state_dict(state["scaler"])
    run.ema.load_state_dict(state["ema"])
'''

# The first section's plain_run checkpoint, with the EMA added: no GradScaler state.
COPIED_FROM_SECTION_1 = '''def save_state(run):
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "order": run.order.get_state(), "step": run.step,
            "ema": run.ema.state_dict()}
def load_state(run, state):
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.order.set_state(state["order"])
    run.step = state["step"]
    run.ema.load_state_dict(state["ema"])
'''


def _changed(old: str, new: str) -> str:
    assert old in SOLUTION, f"ex06_5.py no longer has {old!r}: update this mistake"
    return SOLUTION.replace(old, new)


MISTAKES = {
    "the shipped weights saved as the EMA's state": (
        _changed('"ema": run.ema.state_dict(),', '"ema": run.ema.module.state_dict(),').replace(
            'run.ema.load_state_dict(state["ema"])', 'run.ema.module.load_state_dict(state["ema"])'),
        "the EMA's n_averaged is 0"),
    "no generator state": (_changed('    run.order.set_state(state["order"])\n', ""), "Save run.order's state too"),
    "the generator itself": (_changed('"order": run.order.get_state(),', '"order": run.order,').replace(
        'run.order.set_state(state["order"])', 'run.order = state["order"]'), "torch.load(weights_only=True) refuses"),
    "the step left behind": (_changed('    run.step = state["step"]\n', ""), "put the step back too"),
    "no optimizer state": (_changed('    run.optimizer.load_state_dict(state["optimizer"])\n', ""),
                           "Adam's running averages are not the saved ones"),
}


def test_the_solution_passes(capsys):
    ok, out = _run("ex06_5", SOLUTION, capsys)
    assert ok is True and out.startswith("✓ ex06_5:") and "bit for bit" in out, out


def test_the_skeleton_fails_without_raising(capsys):
    _, skeleton, _ = _exercise("ex06_5")
    ok, out = _run("ex06_5", skeleton, capsys)
    assert ok is False and out.startswith("✗ ex06_5: save_state returned None"), out


def test_section_7s_checkpoint_copied_misses_the_schedule(capsys):
    ok, out = _run("ex06_5", COPIED_FROM_SECTION_7, capsys)
    assert ok is False and "the schedule starts over" in out and "Section 1's table" in out, out


def test_section_1s_checkpoint_copied_misses_the_scaler(capsys):
    ok, out = _run("ex06_5", COPIED_FROM_SECTION_1, capsys)
    assert ok is False and "A new GradScaler starts from 65536 and counts from 0" in out, out
    assert "after load_state the GradScaler's scale is 65536.0" in out, out


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_named(mistake, capsys):
    code, hint = MISTAKES[mistake]
    assert code != SOLUTION
    ok, out = _run("ex06_5", code, capsys)
    assert ok is False and out.startswith("✗ ex06_5:") and hint in out, out
