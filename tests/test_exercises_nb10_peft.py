"""Exercise 10.4 (issue 38, item 1): reading an adapter folder, the solution passes, the skeleton and a copy fail.

tests/test_exercises.py runs every check on its solution, its skeleton and one mistake; here, written out
literally, the answer a learner would copy from section 3's cells (the file's keys, as the cells print them), and
the mistakes that each need their own hint.
"""
from __future__ import annotations

from test_exercises import SOLUTIONS, _exercise, _run


def test_ex10_4_passes_on_the_solution(capsys):
    ok, out = _run("ex10_4", (SOLUTIONS / "ex10_4.py").read_text(), capsys)
    assert ok is True and out.startswith("✓ ex10_4: six adapters read right"), out


def test_ex10_4_fails_on_the_skeleton_without_raising(capsys):
    _, skeleton, _ = _exercise("ex10_4")
    ok, out = _run("ex10_4", skeleton, capsys)
    assert ok is False and "adapter_report returned None: return a dict" in out, out


def test_ex10_4_the_keys_the_cells_print_do_not_tell_a_trained_adapter(capsys):
    """Section 3 prints an adapter's keys (`lora_A`, `lora_B`, `score`, `wte`): names alone say it was trained."""
    copied = ("from safetensors import safe_open\n"
              "def adapter_report(folder):\n"
              "    with safe_open(folder / 'adapter_model.safetensors', framework='pt') as f:\n"
              "        keys = sorted(f.keys())\n"
              "    return {'lora_trained': any('lora_B' in k for k in keys), 'head': any('score' in k for k in keys),\n"
              "            'vocab_size': 16 if any('wte' in k for k in keys) else None}")
    ok, out = _run("ex10_4", copied, capsys)
    assert ok is False and "a LoRA adapter never trained: you said its LoRA weights are trained" in out, out
    assert "look at the values of lora_B" in out, out


def test_ex10_4_the_notebooks_vocabulary_is_not_the_files(capsys):
    """16, the vocabulary section 3 grew to, is not the 17 rows of the adapter the check saves."""
    solution = (SOLUTIONS / "ex10_4.py").read_text()
    assert "embeddings[0].shape[0]" in solution
    ok, out = _run("ex10_4", solution.replace("embeddings[0].shape[0]", "16"), capsys)
    assert ok is False and "vocab_size is the number of rows of the saved transformer.wte weight" in out, out


def test_ex10_4_the_head_is_looked_for_in_the_file(capsys):
    solution = (SOLUTIONS / "ex10_4.py").read_text()
    old = '"head": any(".score." in key for key in tensors)'
    assert old in solution
    ok, out = _run("ex10_4", solution.replace(old, '"head": True'), capsys)
    assert ok is False and "a LoRA adapter never trained: the file holds no score tensor" in out, out
    ok, out = _run("ex10_4", solution.replace(old, '"head": False'), capsys)
    assert ok is False and "the file holds the score head" in out, out
