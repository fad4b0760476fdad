"""Exercises 08.2 (shards by layer, written by hand) and 08.3 (fill a meta model, missing nothing): each check says
yes to the solution and no to the skeleton, to what a learner would copy from the notebook's printed cells, and to
the plausible half answers, naming what is wrong."""
from __future__ import annotations

import pytest

from test_exercises import SOLUTIONS, _exercise, _run

# Exercise 08.2 as copied from section 3: the save of cell "sharded-1MB" (save_torch_state_dict with a 1 MB limit)
# and the loading loop of the cell after the index, reading the files the index lists.
COPIED_08_2 = '''import json
import safetensors.torch
from huggingface_hub import save_torch_state_dict
def save_sharded(state_dict, folder):
    save_torch_state_dict(state_dict, folder, max_shard_size="1MB")
def load_sharded(folder):
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    state = {}
    for file in files:
        part = safetensors.torch.load_file(folder / file)  # one shard in memory at a time
        state.update(part)
    return state
'''

# The same with the keys put in layer order first: save_torch_state_dict still packs tensor by tensor.
LAYER_ORDER_08_2 = COPIED_08_2.replace(
    '    save_torch_state_dict(state_dict, folder, max_shard_size="1MB")',
    '    ordered = dict(sorted(state_dict.items(), key=lambda item: item[0].rpartition(".")[0]))\n'
    '    save_torch_state_dict(ordered, folder, max_shard_size="1MB")')

# By hand, layers together, but the limit counted per tensor instead of per file.
SOLUTION_08_2 = (SOLUTIONS / "ex08_2.py").read_text()
NO_LIMIT_08_2 = SOLUTION_08_2.replace("LIMIT = 1_000_000", "LIMIT = 10_000_000")
NO_TOTAL_08_2 = SOLUTION_08_2.replace('{"metadata": {"total_size": total}, "weight_map": weight_map}',
                                      '{"weight_map": weight_map}')


@pytest.mark.parametrize(("code", "hint"), [
    (COPIED_08_2, "keep each layer's tensors in one file"),
    (LAYER_ORDER_08_2, "keep each layer's tensors in one file"),
    (NO_LIMIT_08_2, "at or under 1,000,000 bytes"),
    (NO_TOTAL_08_2, "total_size None"),
], ids=["copied from section 3", "save_torch_state_dict in layer order", "files over 1 MB", "no total_size"])
def test_ex08_2_refuses(code, hint, capsys):
    ok, out = _run("ex08_2", code, capsys)
    assert ok is False and out.startswith("✗") and hint in out, out


def test_ex08_2_solution_and_skeleton(capsys):
    ok, out = _run("ex08_2", SOLUTION_08_2, capsys)
    assert ok is True and "one file per layer" in out, out
    ok, out = _run("ex08_2", _exercise("ex08_2")[1], capsys)
    assert ok is False and "returned None" in out, out


# Exercise 08.3 as copied from section 3's loading cell: every shard with strict=False and assign=True, then the
# cell's own test, which looks at named_parameters() only.
COPIED_08_3 = '''import json
import safetensors.torch
def fill_from_shards(model, folder):
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    for file in files:
        part = safetensors.torch.load_file(folder / file)  # one shard in memory at a time
        result = model.load_state_dict(part, strict=False, assign=True)
        assert not result.unexpected_keys, f"{file} holds keys the model does not have: {result.unexpected_keys}"
    still_meta = [name for name, p in model.named_parameters() if p.is_meta]
    assert not still_meta, f"no shard held {still_meta}"
    return model
'''

# Parameters only, by the names the shards held: raises for a missing parameter, never for a missing buffer.
PARAMETERS_ONLY_08_3 = '''import json
import safetensors.torch
def fill_from_shards(model, folder):
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    loaded = set()
    for shard in sorted(set(index["weight_map"].values())):
        part = safetensors.torch.load_file(folder / shard)
        model.load_state_dict(part, strict=False, assign=True)
        loaded |= set(part)
    missing = sorted(name for name, _ in model.named_parameters() if name not in loaded)
    if missing:
        raise KeyError(f"missing: {missing}")
    return model
'''

BUFFERS_HINT = "these are buffers, not parameters"


@pytest.mark.parametrize(("code", "hint"), [
    (COPIED_08_3, BUFFERS_HINT),
    (PARAMETERS_ONLY_08_3, BUFFERS_HINT),
], ids=["copied from section 3", "parameters only"])
def test_ex08_3_refuses_an_answer_that_checks_parameters_only(code, hint, capsys):
    ok, out = _run("ex08_3", code, capsys)
    assert ok is False and out.startswith("✗") and hint in out and "1.running_var" in out, out


def test_ex08_3_solution_and_skeleton(capsys):
    ok, out = _run("ex08_3", (SOLUTIONS / "ex08_3.py").read_text(), capsys)
    assert ok is True and "one of buffers only" in out, out
    ok, out = _run("ex08_3", _exercise("ex08_3")[1], capsys)
    assert ok is False and "returned None" in out, out
