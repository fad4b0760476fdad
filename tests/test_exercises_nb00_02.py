"""Exercises 00.1, 01.2, 01.3 and 02.1 after the second teaching pass: each check says no to the answer a learner
would copy from a cell the notebook prints, and its hints point at the idea without giving the code."""
from __future__ import annotations

import json

from labutils.paths import REPO_ROOT
from test_exercises import _run

NOTEBOOKS = REPO_ROOT / "notebooks"


def _check_output(notebook: str, check: str) -> str:
    """The saved output of the cell that runs `check` in `notebook`."""
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if "".join(c["source"]).startswith(f"labutils.checks.{check}("))
    return "".join("".join(o.get("text", "")) for o in cell["outputs"])


# 00.1: the skeleton's ✗, which every learner sees saved in the notebook, names no code.
def test_ex00_1_the_skeletons_hint_does_not_give_the_answer(capsys):
    skeleton = "def count_digit(labels, digit):\n    return None"
    ok, out = _run("ex00_1", skeleton, capsys)
    assert ok is False and "return the count (a number)" in out, out
    for code in ("==", ".sum(", "bincount"):
        assert code not in out, out
        assert code not in _check_output("00_welcome.ipynb", "ex00_1")


def test_ex00_1_a_wrong_count_gets_the_method_in_words(capsys):
    ok, out = _run("ex00_1", "def count_digit(labels, digit):\n    return 1", capsys)
    assert ok is False and "compare the whole tensor with the digit at once, then add up the matches" in out, out


# 01.2: the side after the first pool is odd for 30 × 30, so true division gives 324 features instead of 256.
def test_ex01_2_true_division_is_refused_where_a_pool_meets_an_odd_side(capsys):
    true_division = ("def fc1_inputs(image_size, conv1_padding):\n    side = (image_size + 2 * conv1_padding - 4) / 2\n"
                     "    side = (side - 4) / 2\n    return 16 * side * side")
    ok, out = _run("ex01_2", true_division, capsys)
    assert ok is False and "fc1_inputs(30, 0) gave 324.0, expected 256" in out and "odd side" in out, out


# 01.3: cell 33 prints `kept = net.state_dict()` and `moved = {key: tensor.to("cpu") ...}`; both follow the model.
KEEP_BEST = """def train_keep_best(model, epochs, train_one_epoch, score):
    net = model
    best_score = float("-inf")
    for epoch in range(1, epochs + 1):
        train_one_epoch(model)
        if score(model) > best_score:
            best_score, best_epoch = score(model), epoch
            {line}
    model.load_state_dict(kept)
    return best_epoch, kept
"""


def test_ex01_3_the_state_dict_line_that_cell_33_prints_is_refused(capsys):
    ok, out = _run("ex01_3", KEEP_BEST.format(line="kept = net.state_dict()"), capsys)
    assert ok is False and "are the model's own: state_dict() returns the live tensors" in out, out


def test_ex01_3_moving_to_the_cpu_as_cell_33_prints_is_refused_on_a_cpu(capsys):
    line = 'kept = {key: tensor.to("cpu") for key, tensor in net.state_dict().items()}'
    ok, out = _run("ex01_3", KEEP_BEST.format(line=line), capsys)
    assert ok is False and ".to('cpu') of a tensor already on the CPU returns that same tensor" in out, out


def test_ex01_3_the_clone_line_cell_33_printed_before_is_no_longer_an_answer(capsys):
    """Until this pass, cell 33 printed this line and pasting it passed the check on a CPU."""
    pasted = ("def train_keep_best(model, epochs, train_one_epoch, score):\n"
              "    return {key: tensor.clone() for key, tensor in model.state_dict().items()}")
    ok, out = _run("ex01_3", pasted, capsys)
    assert ok is False and "return a pair: (the best epoch, the snapshot)" in out, out


def test_ex01_3_keeping_the_last_epoch_is_refused(capsys):
    last = ("def train_keep_best(model, epochs, train_one_epoch, score):\n"
            "    for epoch in range(1, epochs + 1):\n        train_one_epoch(model)\n"
            "    return epochs, {k: v.detach().to('cpu', copy=True) for k, v in model.state_dict().items()}")
    ok, out = _run("ex01_3", last, capsys)
    assert ok is False and "you returned epoch 4" in out, out


def test_ex01_3_the_notebook_shows_the_bug_and_leaves_the_cure_to_the_exercise():
    cells = json.loads((NOTEBOOKS / "01_define_net.ipynb").read_text(encoding="utf-8"))["cells"]
    shown = [c for c in cells if c["cell_type"] == "code" and "kept = net.state_dict()" in "".join(c["source"])]
    assert len(shown) == 1 and ".clone()" not in "".join(shown[0]["source"]), "the cure is exercise 01.3's"


# 02.1: cell 8's evaluate prints `(logits.argmax(1) == labels).float().mean().item()`.
def test_ex02_1_the_accuracy_line_that_cell_8_prints_is_refused(capsys):
    copied = ("def accuracy(logits, labels, k=1):\n"
              "    return (logits.argmax(1) == labels).float().mean().item()")
    ok, out = _run("ex02_1", copied, capsys)
    assert ok is False and "with k=2 you returned 0.4, the same as with k=1" in out, out


def test_ex02_1_the_copied_line_without_k_is_told_what_is_missing(capsys):
    copied = "def accuracy(logits, labels):\n    return (logits.argmax(1) == labels).float().mean().item()"
    ok, out = _run("ex02_1", copied, capsys)
    assert ok is False and "accuracy needs a third parameter, k" in out and "⚠" not in out, out


def test_ex02_1_averaging_over_all_k_guesses_is_refused(capsys):
    flat = ("def accuracy(logits, labels, k=1):\n"
            "    return (logits.topk(k, dim=1).indices == labels[:, None]).float().mean().item()")
    ok, out = _run("ex02_1", flat, capsys)
    assert ok is False and "each row counts once" in out, out


# 02's progress bar: a saved notebook keeps the widget's text form for viewers that draw no widgets.
def test_02_saved_progress_bar_text_reads_as_the_bar_ended_not_0_percent():
    cells = json.loads((NOTEBOOKS / "02_train_mnist.ipynb").read_text(encoding="utf-8"))["cells"]
    texts = ["".join(o["data"]["text/plain"]) for c in cells if c["cell_type"] == "code" for o in c["outputs"]
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert texts and all(t.startswith("training: 100%") and " 0%" not in t for t in texts), texts


def test_progress_bar_outside_a_notebook_is_a_plain_tqdm(capsys):
    from labutils.train import progress_bar

    with progress_bar(3, "training") as bar:
        bar.update(3)
    assert bar.n == 3 and not hasattr(bar, "container")
    with progress_bar(3, "training", disable=True) as quiet:
        quiet.update(3)
    assert "training" not in capsys.readouterr().out
