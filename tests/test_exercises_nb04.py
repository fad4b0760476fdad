"""Exercises 04.2 (a wrapped model's GPU checkpoint) and 04.3 (audit a folder): each check says yes to the solution
and no to the skeleton, to the cell a learner would copy, and to the plausible mistakes, each with its hint."""
from __future__ import annotations

import pytest
import torch

from test_exercises import SOLUTIONS, _exercise, _run

# notebook 02's load cell (and the article's load code with the lab's map_location), copied line for line
COPIED_02 = """\
import torch
from labutils import Net
def load_for_inference(path):
    model = Net(); model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)); model.eval()
    return model"""

# the prefix of one wrapper only: DataParallel's, as in 04.1
ONE_PREFIX = """\
import torch, labutils
def load_for_inference(path):
    weights = torch.load(path, map_location="cpu", weights_only=True)
    model = labutils.Net()
    model.load_state_dict({k.removeprefix("module."): v for k, v in weights.items()})
    return model.eval()"""

# the error silenced with strict=False: nothing is loaded, and nothing is said
NOT_STRICT = """\
import torch, labutils
def load_for_inference(path):
    model = labutils.Net()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=False)
    return model.eval()"""


@pytest.mark.parametrize(("code", "hint"), [
    (COPIED_02, "compiled_on_gpu.pt was saved from a model wrapped in torch.compile: its keys carry the prefix"),
    (ONE_PREFIX, "compiled_on_gpu.pt was saved from a model wrapped in torch.compile"),
    (NOT_STRICT, "if you passed strict=False, look at what load_state_dict returned"),
    ((SOLUTIONS / "ex04_2.py").read_text().replace("    return model.eval()", "    return model"),
     "call model.eval()"),
])
def test_ex04_2_says_no_to_a_load_that_ignores_the_wrapper(code, hint, capsys):
    ok, out = _run("ex04_2", code, capsys)
    assert ok is False and out.startswith("✗ ex04_2") and hint in out, out


def test_ex04_2_says_yes_to_the_solution_and_no_to_the_skeleton(capsys):
    ok, out = _run("ex04_2", (SOLUTIONS / "ex04_2.py").read_text(), capsys)
    assert ok is True and "torch.compile and DataParallel" in out, out
    ok, out = _run("ex04_2", _exercise("ex04_2")[1], capsys)
    assert ok is False and "returned None" in out, out


# the answer the exercise had before: what get_unsafe_globals_in_checkpoint lists, which leaves out the dtype class
LISTING_ONLY = """\
import torch
def audit(folder):
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".pt", ".pth"):
            continue
        try:
            found[path.name] = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except (ValueError, RuntimeError):
            found[path.name] = None
    return found"""

# section 4's loop, applied to every file: it allows builtins.exec too, and the malicious file runs
ALLOW_WHAT_IS_REFUSED = """\
import importlib, pickle, re, torch
def audit(folder):
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".pt", ".pth"):
            continue
        try:
            torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except (ValueError, RuntimeError):
            found[path.name] = None
            continue
        names = []
        while True:
            try:
                with torch.serialization.safe_globals([getattr(importlib.import_module(
                        n.rpartition('.')[0] or 'builtins'), n.rpartition('.')[2]) for n in names]):
                    torch.load(path, weights_only=True)
                break
            except pickle.UnpicklingError as refused:
                m = re.search(r"GLOBAL (\\S+) was not|but got <class '([^']+)'>", str(refused))
                names.append(m.group(1) or m.group(2))
        found[path.name] = sorted(names)
    return found"""


def _with_scores(value: str) -> str:
    """The solution, with the answer for scores.pth replaced by `value`."""
    return (SOLUTIONS / "ex04_3.py").read_text() + (
        f"\n_audit = audit\ndef audit(folder):\n    found = _audit(folder)\n    found['scores.pth'] = {value}\n"
        "    return found\n")


def test_ex04_3_says_yes_to_the_complete_list_the_lesson_teaches(capsys):
    ok, out = _run("ex04_3", (SOLUTIONS / "ex04_3.py").read_text(), capsys)
    assert ok is True and "proven by loading it with exactly those" in out, out
    # section 4's allow-list, written as names: the dtype class included
    complete = "['numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.dtypes.Float64DType']"
    ok, out = _run("ex04_3", _with_scores(complete), capsys)
    assert ok is True, out


def test_ex04_3_says_no_to_the_listing_alone_and_points_at_the_lesson(capsys):
    ok, out = _run("ex04_3", LISTING_ONLY, capsys)
    assert ok is False and "with exactly the globals get_unsafe_globals_in_checkpoint names allowed" in out, out
    assert "Section 4 (the NumPy number) shows how to find the rest" in out and "Float64DType" not in out, out


@pytest.mark.parametrize(("scores", "hint"), [
    ("['numpy.dtype', 'numpy.dtypes.Float64DType']", "with exactly your list allowed"),
    ("['numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.dtypes.Float32DType', 'numpy.dtypes.Float64DType']",
     "scores.pth loads without numpy.dtypes.Float32DType: list only what it needs"),
    ("['numpy.dtypes.Float64DType', 'numpy.dtype', 'numpy._core.multiarray.scalar']", "scores.pth: sort the list"),
    ("['numpy.float64']", "with exactly your list allowed"),
    ("['numpy.no_such_thing']", "'numpy.no_such_thing' is not the name of anything Python can import"),
])
def test_ex04_3_proves_a_list_by_loading_with_exactly_it(scores, hint, capsys):
    ok, out = _run("ex04_3", _with_scores(scores), capsys)
    assert ok is False and hint in out, out


def test_ex04_3_says_no_when_the_loop_allows_code(capsys):
    ok, out = _run("ex04_3", ALLOW_WHAT_IS_REFUSED, capsys)
    assert ok is False and "code RAN" in out and "never allow a global that runs code" in out, out


def test_ex04_3_ignores_what_the_session_allowed_process_wide_and_leaves_it_allowed(capsys):
    """A learner who ran add_safe_globals for NumPy earlier: the listing would then hide those names."""
    import numpy as np

    allowed = [np._core.multiarray.scalar, np.dtype]
    torch.serialization.add_safe_globals(allowed)  # beside what torch allowed for itself when imported
    before = set(torch.serialization.get_safe_globals())
    try:
        ok, out = _run("ex04_3", (SOLUTIONS / "ex04_3.py").read_text(), capsys)
        assert ok is True, out
        assert set(torch.serialization.get_safe_globals()) == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(list(before - set(allowed)))


def test_ex04_3_says_no_to_the_skeleton(capsys):
    ok, out = _run("ex04_3", _exercise("ex04_3")[1], capsys)
    assert ok is False and "returned None" in out, out
