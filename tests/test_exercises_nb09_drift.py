"""Exercise 09.10 (issue 38, judge the drift): the check says yes to the solution, no to the skeleton, to the
notebook's own cell copied into the function, and to each half-right judgement, each with its own hint."""
from __future__ import annotations

from test_exercises import SOLUTIONS, _exercise, _run


def test_ex09_10_passes_on_the_solution(capsys):
    ok, out = _run("ex09_10", (SOLUTIONS / "ex09_10.py").read_text(), capsys)
    assert ok is True and out.startswith("✓ ex09_10: harmless buffers told apart"), out


def test_ex09_10_fails_on_the_skeleton_without_raising(capsys):
    _, skeleton, _ = _exercise("ex09_10")
    assert "return None" in skeleton
    ok, out = _run("ex09_10", skeleton, capsys)
    assert ok is False and "judge_drift returned None" in out, out


def test_ex09_10_case_11s_cell_copied_breaks_on_a_key_the_model_does_not_have(capsys):
    """Case 11 judges the one unexpected key of its encoder with `buffers[key]`: the check's file also holds a
    renamed layer's key, which names no buffer at all."""
    copied = ("import torch\ndef judge_drift(model, state_dict):\n"
              "    result = model.load_state_dict(state_dict, strict=False)\n"
              "    buffers = dict(model.named_buffers())\n"
              "    harmless = [key for key in result.unexpected_keys\n"
              "                if torch.equal(state_dict[key], buffers[key])]\n"
              "    return harmless, [k for k in result.missing_keys + result.unexpected_keys if k not in harmless]")
    ok, out = _run("ex09_10", copied, capsys)
    assert ok is False and out.startswith("✗") and "KeyError" in out and "positions.weight" in out, out


def test_ex09_10_judging_only_the_unexpected_keys_is_refused(capsys):
    """The cell's loop looks at the unexpected keys only; a missing parameter must be judged too."""
    half = ("import torch\ndef judge_drift(model, state_dict):\n"
            "    result = model.load_state_dict(state_dict, strict=False)\n"
            "    buffers = dict(model.named_buffers())\n"
            "    harmless = [k for k in result.unexpected_keys\n"
            "                if k in buffers and torch.equal(state_dict[k], buffers[k])]\n"
            "    return harmless, [k for k in result.unexpected_keys if k not in harmless]")
    ok, out = _run("ex09_10", half, capsys)
    assert ok is False and "Judge every missing and every unexpected key, once" in out, out


def test_ex09_10_a_buffer_by_its_name_alone_is_refused(capsys):
    by_name = ("def judge_drift(model, state_dict):\n"
               "    result = model.load_state_dict(state_dict, strict=False)\n"
               "    buffers = dict(model.named_buffers())\n"
               "    harmless = [k for k in result.unexpected_keys if k in buffers]\n"
               "    return harmless, [k for k in result.missing_keys + result.unexpected_keys if k not in harmless]")
    ok, out = _run("ex09_10", by_name, capsys)
    assert ok is False and "mask is a buffer of the model, but the file's mask differs" in out, out


def test_ex09_10_buffers_looked_up_in_the_state_dict_miss_the_non_persistent_ones(capsys):
    from_state_dict = ("import torch\ndef judge_drift(model, state_dict):\n"
                       "    result = model.load_state_dict(state_dict, strict=False)\n"
                       "    buffers = model.state_dict()\n"
                       "    harmless = [k for k in result.unexpected_keys\n"
                       "                if k in buffers and torch.equal(state_dict[k], buffers[k])]\n"
                       "    named = result.missing_keys + result.unexpected_keys\n"
                       "    return harmless, [k for k in named if k not in harmless]")
    ok, out = _run("ex09_10", from_state_dict, capsys)
    assert ok is False and "position_ids needs no action" in out and "named_buffers()" in out, out


def test_ex09_10_a_missing_buffer_is_not_harmless(capsys):
    """The BatchNormNet file lacks bn1's running statistics: the model would keep its initial ones (case 1)."""
    lenient = ("import torch\ndef judge_drift(model, state_dict):\n"
               "    result = model.load_state_dict(state_dict, strict=False)\n"
               "    buffers = dict(model.named_buffers())\n"
               "    harmless = [k for k in result.unexpected_keys\n"
            "                if k in buffers and torch.equal(state_dict[k], buffers[k])]\n"
               "    harmless += [k for k in result.missing_keys if k in buffers]\n"
               "    return harmless, [k for k in result.missing_keys + result.unexpected_keys if k not in harmless]")
    ok, out = _run("ex09_10", lenient, capsys)
    assert ok is False and "bn1.running_mean is missing from the file" in out, out


def test_ex09_10_the_hints_do_not_spell_the_answer(capsys):
    """A hint names the key and the idea, never the two lists the check expects."""
    ok, out = _run("ex09_10", "def judge_drift(model, state_dict):\n    return [], []", capsys)
    assert ok is False and "a strict load names" in out and "harmless" not in out.split("you judged")[0].lower(), out
