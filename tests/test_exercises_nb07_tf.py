"""Exercise 07.3 (a Linear weight in Keras's layout): its check says ✓ to the solution and ✗, with the fitting hint,
to the skeleton, to the cell a learner would copy from section 7, and to the usual mistakes."""
from __future__ import annotations

import pytest
from test_exercises import SOLUTIONS, _run

# Section 7's cell, for fc1 only, as a learner would copy it into the function (TensorFlow, fc1's numbers)
COPIED_CELL = """import tensorflow as tf
def dense_kernel_for_keras(weight, chw):
    per_pixel = tf.reshape(weight, (120, 16, 5, 5))
    return tf.reshape(tf.transpose(per_pixel, (2, 3, 1, 0)), (400, 120))
"""
# The same, in NumPy: what a learner writes who read the cell but kept its numbers
COPIED_IN_NUMPY = """def dense_kernel_for_keras(weight, chw):
    return weight.reshape(120, 16, 5, 5).transpose(2, 3, 1, 0).reshape(400, 120)
"""
TRANSPOSED_ONLY = """def dense_kernel_for_keras(weight, chw):
    return weight.T  # what fc2 and fc3 need, not the layer after the flatten
"""
AS_STORED = """def dense_kernel_for_keras(weight, chw):
    return weight
"""
WRONG_AXES = """def dense_kernel_for_keras(weight, chw):
    channels, height, width = chw
    return weight.reshape(-1, channels, height, width).transpose(3, 2, 1, 0).reshape(-1, weight.shape[0])
"""


def test_the_solution_passes(capsys):
    ok, out = _run("ex07_3", (SOLUTIONS / "ex07_3.py").read_text(), capsys)
    assert ok is True and out.startswith("✓ ex07_3:"), out


def test_the_skeleton_fails_without_raising(capsys):
    from test_exercises import _exercise

    _, skeleton, _ = _exercise("ex07_3")
    ok, out = _run("ex07_3", skeleton, capsys)
    assert ok is False and "dense_kernel_for_keras returned None" in out, out


def test_the_copied_cell_works_for_fc1_only(capsys):
    pytest.importorskip("tensorflow")  # the cell uses TensorFlow; its NumPy twin below runs everywhere
    ok, out = _run("ex07_3", COPIED_CELL, capsys)
    assert ok is False and "with chw=(8, 3, 4)" in out and "not fc1's numbers" in out, out


def test_the_copied_cell_in_numpy_works_for_fc1_only(capsys):
    ok, out = _run("ex07_3", COPIED_IN_NUMPY, capsys)
    assert ok is False and "raised ValueError: take the sizes from `chw` and `weight.shape`" in out, out


@pytest.mark.parametrize(("answer", "hint"), [
    (TRANSPOSED_ONLY, "the rows are in PyTorch's flatten order"),
    (AS_STORED, "a Dense kernel is (inputs, outputs), here (400, 120)"),
    (WRONG_AXES, "your kernel gives other outputs than the Linear layer"),
])
def test_a_plausible_mistake_gets_its_hint(answer, hint, capsys):
    ok, out = _run("ex07_3", answer, capsys)
    assert ok is False and out.startswith("✗ ex07_3:") and hint in out, out
