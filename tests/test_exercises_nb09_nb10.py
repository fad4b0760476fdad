"""Exercises 09.2, 09.6 and 10.2 (issue 35): the answer a learner would copy from a printed cell is refused.

tests/test_exercises.py proves each check passes on its solution and fails on the skeleton; here, for each of the
three, the cell the notebook prints (or the old exercise's answer) written out literally, and the mistakes that
each need their own hint.
"""
from __future__ import annotations

from test_exercises import SOLUTIONS, _run


def test_ex09_2_copying_case_2_and_notebook_04_writes_the_file_but_reports_nothing(capsys):
    """Case 2's hint and notebook 04.2: map_location="cpu", then save. The copy loads, but the layout is lost."""
    copied = ("import torch\ndef make_portable(path, out_path):\n"
              "    torch.save(torch.load(path, map_location='cpu', weights_only=True), out_path)")
    ok, out = _run("ex09_2", copied, capsys)
    assert ok is False and "make_portable returned None: also return how many bytes" in out, out


def test_ex09_2_a_string_map_location_sees_only_the_cpu(capsys):
    relabelled = ("import torch\ndef make_portable(path, out_path):\n    held = {}\n"
                  "    checkpoint = torch.load(path, map_location='cpu', weights_only=True)\n"
                  "    for state in [checkpoint['model'], *checkpoint['optimizer']['state'].values()]:\n"
                  "        for t in state.values():\n"
                  "            held[str(t.device)] = held.get(str(t.device), 0) + t.untyped_storage().nbytes()\n"
                  "    torch.save(checkpoint, out_path)\n    return held")
    ok, out = _run("ex09_2", relabelled, capsys)
    assert ok is False and "A map_location string relabels every storage" in out, out
    assert "cuda:0" not in out.split("you report", 1)[1].split("but", 1)[0], "the hint must not spell the answer"


def test_ex09_2_counting_tensors_or_elements_is_named(capsys):
    solution = (SOLUTIONS / "ex09_2.py").read_text()
    assert "+ storage.nbytes()" in solution
    ok, out = _run("ex09_2", solution.replace("+ storage.nbytes()", "+ 1"), capsys)
    assert ok is False and "you counted tensors" in out, out
    ok, out = _run("ex09_2", solution.replace("+ storage.nbytes()", "+ storage.nbytes() // 4"), capsys)
    assert ok is False and "you counted elements" in out, out


def test_ex09_2_a_copy_that_drops_the_optimizer_is_refused(capsys):
    solution = (SOLUTIONS / "ex09_2.py").read_text()
    old = "    torch.save(torch.load(path, map_location=to_cpu, weights_only=True), out_path)"
    assert old in solution
    dropped = solution.replace(old, "    torch.save(torch.load(path, map_location=to_cpu, weights_only=True)['model'], "
                                    "out_path)")
    ok, out = _run("ex09_2", dropped, capsys)
    assert ok is False and "keep the model, the optimizer's state and the metadata" in out, out


def test_ex09_6_the_old_answer_and_case_6s_recipe_are_refused(capsys):
    """The old exercise's solution (NumPy allowed) and the line the case 6 hint names do not make a plain file."""
    numpy_only = ("import numpy as np, torch\ndef make_plain(path, out_path):\n"
                  "    allowed = [np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))]\n"
                  "    with torch.serialization.safe_globals(allowed):\n"
                  "        torch.save(torch.load(path, weights_only=True), out_path)")
    ok, out = _run("ex09_6", numpy_only, capsys)
    assert ok is False and "weights_only refused argparse.Namespace in run.pt" in out, out
    assert "safe_globals([argparse.Namespace])" not in out, "the hint must not give the answer"


def test_ex09_6_allowing_the_class_and_saving_it_again_is_not_a_plain_file(capsys):
    resaved = ("import argparse, torch\ndef make_plain(path, out_path):\n"
               "    with torch.serialization.safe_globals([argparse.Namespace]):\n"
               "        torch.save(torch.load(path, weights_only=True), out_path)")
    ok, out = _run("ex09_6", resaved, capsys)
    assert ok is False and "plain.pt still needs argparse.Namespace (checkpoint['args'] is one)" in out, out
    assert "vars(" not in out and "__dict__" not in out, "the hint must not give the answer"


def test_ex09_6_arguments_as_text_or_dropped_are_refused(capsys):
    solution = (SOLUTIONS / "ex09_6.py").read_text()
    old = '    checkpoint["args"] = plain(checkpoint["args"])'
    assert old in solution
    ok, out = _run("ex09_6", solution.replace(old, '    checkpoint["args"] = str(checkpoint["args"])'), capsys)
    assert ok is False and "the arguments became a str" in out, out
    ok, out = _run("ex09_6", solution.replace(old, '    del checkpoint["args"]'), capsys)
    assert ok is False and "plain.pt has no arguments" in out, out


COPIED_10 = ("from labutils.share import write_checksums\n"
             "def save_for_sharing(model, tokenizer, folder):\n"
             "    model.save_pretrained(folder, max_shard_size='200KB')\n"  # cell 'sharded = folder / ...'
             "    tokenizer.save_pretrained(folder)\n"
             "    write_checksums(folder)\n")  # cell 'write_checksums(saved)'


def test_ex10_2_the_three_printed_lines_save_float32_and_are_refused(capsys):
    ok, out = _run("ex10_2", COPIED_10, capsys)
    assert ok is False and "gives float32 weights: the copy must be bfloat16" in out, out


def test_ex10_2_casting_the_given_model_or_float16_is_refused(capsys):
    solution = (SOLUTIONS / "ex10_2.py").read_text()
    old = "copy.deepcopy(model).to(torch.bfloat16)"
    assert old in solution
    ok, out = _run("ex10_2", solution.replace(old, "model.half()"), capsys)
    assert ok is False and "the model you were given changed" in out, out
    ok, out = _run("ex10_2", solution.replace(old, "copy.deepcopy(model).half()"), capsys)
    assert ok is False and "float16 is not bfloat16" in out, out


def test_ex10_2_checksums_written_before_the_tokenizer_or_with_paths_are_refused(capsys):
    solution = (SOLUTIONS / "ex10_2.py").read_text()
    with_paths = solution.replace("{path.name}\\n\"", "{path}\\n\"")
    assert with_paths != solution
    ok, out = _run("ex10_2", with_paths, capsys)
    assert ok is False and "run in a copy of the folder, refuses it" in out, out
    early = solution.replace("    tokenizer.save_pretrained(folder)\n", "").replace(
        '  # last, over every other file', '\n    tokenizer.save_pretrained(folder)')
    assert early.count("tokenizer.save_pretrained(folder)") == 1 and early.index("SHA256SUMS") < early.index(
        "tokenizer.save_pretrained")
    ok, out = _run("ex10_2", early, capsys)
    assert ok is False and "does not list tokenizer" in out, out
