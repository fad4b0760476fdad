"""Exercise 05.3 (carry Adam's state over a swapped head): its check says yes to the solution and no to the skeleton,
to the cells a learner would copy from section 6, and to the plausible mistakes, each with its hint."""
from __future__ import annotations

import pytest

from test_exercises import SOLUTIONS, _exercise, _run

HEADER = "def carry_adam_state(saved, model, optimizer):\n"

# what section 6 prints, copied: the whole saved state, or the checked loader, which refuses a changed model
COPIED = [
    (HEADER + "    optimizer.load_state_dict(saved['state_dict'])\n    return []",
     "optimizer.load_state_dict takes a saved state whole"),
    ("from labutils.partial import load_optimizer_state\n" + HEADER
     + "    load_optimizer_state(optimizer, model, saved, keep_new_hyperparameters=True)\n    return []",
     "your code raised OptimizerMismatchError: the saved state was made for other parameters"),
]

# the saved state matched by position in the optimizer, as if the order had not changed
BY_POSITION = HEADER + """\
    state = saved['state_dict']['state']
    new = [p for group in optimizer.param_groups for p in group['params']]
    names = {id(p): n for n, p in model.named_parameters()}
    carried = []
    for i, parameter in enumerate(new):
        if i in state:
            optimizer.state[parameter] = dict(state[i])
            carried.append(names[id(parameter)])
    return carried"""

# matched by name, but the positions taken from the model's order (true only when the old optimizer had them all)
BY_MODEL_ORDER = HEADER + """\
    state = saved['state_dict']['state']
    carried = []
    for i, (name, parameter) in enumerate(model.named_parameters()):
        if i in state and not name.startswith('fc3.'):
            optimizer.state[parameter] = dict(state[i])
            carried.append(name)
    return carried"""

# matched by name, with the old head's moments carried too (cut to the new head's size)
OLD_HEAD = HEADER + """\
    names = [n for group in saved['parameters'] for n in group]
    state = saved['state_dict']['state']
    parameters = dict(model.named_parameters())
    for i, name in enumerate(names):
        rows = parameters[name].shape[0]
        optimizer.state[parameters[name]] = {k: (v if k == 'step' else v[:rows].clone()) for k, v in state[i].items()}
    return names"""

# the right states, loaded through a state_dict whose param_groups are the saved ones
SAVED_SETTINGS = HEADER + """\
    import copy
    names = [n for group in saved['parameters'] for n in group]
    shapes = [s for group in saved['shapes'] for s in group]
    mine = {id(p): n for n, p in model.named_parameters()}
    new = [mine[id(p)] for group in optimizer.param_groups for p in group['params']]
    state = optimizer.state_dict()
    carried = []
    for j, name in enumerate(new):
        if name in names and shapes[names.index(name)] == list(dict(model.named_parameters())[name].shape):
            state['state'][j] = saved['state_dict']['state'][names.index(name)]
            carried.append(name)
    for group in state['param_groups']:
        group['lr'] = saved['state_dict']['param_groups'][0]['lr']
    optimizer.load_state_dict(state)
    return carried"""

# only the moments, the step counts left behind
NO_STEP = HEADER + """\
    names = [n for group in saved['parameters'] for n in group]
    shapes = [s for group in saved['shapes'] for s in group]
    carried = []
    for name, parameter in model.named_parameters():
        if name in names and shapes[names.index(name)] == list(parameter.shape):
            old = saved['state_dict']['state'][names.index(name)]
            optimizer.state[parameter] = {'exp_avg': old['exp_avg'].clone(), 'exp_avg_sq': old['exp_avg_sq'].clone()}
            carried.append(name)
    return carried"""

WRONG = [
    (BY_POSITION, "holds the state saved for"),
    (BY_MODEL_ORDER, "conv1.weight has state, but none was saved for it"),
    (OLD_HEAD, "the new head must start fresh"),
    (SAVED_SETTINGS, "learning rates changed from [0.001, 0.0001] to [0.001, 0.001]"),
    (NO_STEP, "does not hold the state saved for it"),
]


def test_the_solution_passes(capsys):
    ok, out = _run("ex05_3", (SOLUTIONS / "ex05_3.py").read_text(), capsys)
    assert ok is True and out.startswith("✓ ex05_3"), out


def test_the_skeleton_fails_without_raising(capsys):
    _, skeleton, _ = _exercise("ex05_3")
    ok, out = _run("ex05_3", skeleton, capsys)
    assert ok is False and "carry_adam_state returned None" in out, out


@pytest.mark.parametrize(("code", "hint"), COPIED + WRONG,
                         ids=["copied whole", "copied checked loader", "by position", "by model order",
                              "old head carried", "saved settings", "no step"])
def test_a_copied_cell_or_a_plausible_mistake_fails_with_its_hint(code, hint, capsys):
    ok, out = _run("ex05_3", code, capsys)
    assert ok is False and out.startswith("✗ ex05_3") and hint in out, out
