"""Exercises 11.1 and 11.2 (issue 38): what a learner would copy from notebook 11's cells is refused, with its hint.

tests/test_exercises.py proves each check passes on its solution and fails on its skeleton; here the answers built
from the cells the notebook prints. 11.1: section 2's resume (an Accelerator, the model prepared, load_state).
11.2: section 1's table read key by key (`epoch`, the loops' batch counter), the weights without the prefix removed,
and the optimizers' list instead of the optimizer's state_dict.
"""
from __future__ import annotations

from test_exercises import SOLUTIONS, _run

SOLUTION = (SOLUTIONS / "ex11_2.py").read_text()

COPIED_RESUME = (
    "import labutils, torch\nfrom accelerate import Accelerator\n"
    "def net_from_state_folder(folder):\n"
    "    accelerator = Accelerator(cpu=True)\n"
    "    model = labutils.Net()\n"
    "    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
    "    model, optimizer = accelerator.prepare(model, optimizer)\n"
    "    accelerator.load_state(folder)\n"
    "    return model\n")


def test_ex11_1_section_2s_resume_gives_the_weights_in_training_mode(capsys):
    ok, out = _run("ex11_1", COPIED_RESUME, capsys)
    assert ok is False and "training mode" in out, out


def test_ex11_1_the_optimizer_file_is_not_the_model(capsys):
    answer = ("import labutils, torch\ndef net_from_state_folder(folder):\n    net = labutils.Net()\n"
              "    net.load_state_dict(torch.load(folder / 'optimizer.bin', weights_only=True))\n"
              "    return net.eval()\n")
    ok, out = _run("ex11_1", answer, capsys)
    assert ok is False and "your code raised" in out, out

COPIED_TABLE = (
    "def lab_resume_state(checkpoint, steps_per_epoch):\n"
    "    return {'model': {name.removeprefix('net.'): t for name, t in checkpoint['state_dict'].items()},\n"
    "            'optimizer': checkpoint['optimizer_states'][0], 'scheduler': checkpoint['lr_schedulers'][0],\n"
    "            'step': checkpoint['global_step'], 'epoch': checkpoint['epoch'],\n"
    "            'batch': checkpoint['loops']['fit_loop']['epoch_loop.batch_progress']['current']['completed']}\n")


def test_ex11_2_the_table_read_key_by_key_gets_the_batch_one_off(capsys):
    """Section 1's table: epoch and the loops' counters. In mid-epoch the counter lags the step by one."""
    ok, out = _run("ex11_2", COPIED_TABLE, capsys)
    assert ok is False and "after step 6" in out and "can be one off" in out, out


def test_ex11_2_the_epoch_key_is_one_short_at_the_end_of_an_epoch(capsys):
    answer = SOLUTION.replace("epoch, batch = divmod(step, steps_per_epoch)",
                              "epoch, batch = checkpoint['epoch'], step % steps_per_epoch")
    assert answer != SOLUTION
    ok, out = _run("ex11_2", answer, capsys)
    assert ok is False and "after step 12" in out and "the epoch the save happened in" in out, out


def test_ex11_2_the_weights_need_the_prefix_removed(capsys):
    stripped = '{name.removeprefix("net."): tensor for name, tensor in checkpoint["state_dict"].items()}'
    answer = SOLUTION.replace(stripped, 'checkpoint["state_dict"]')
    assert answer != SOLUTION
    ok, out = _run("ex11_2", answer, capsys)
    assert ok is False and "still start with `net.`" in out, out


def test_ex11_2_the_optimizer_is_one_of_a_list(capsys):
    answer = SOLUTION.replace('checkpoint["optimizer_states"][0]', 'checkpoint["optimizer_states"]')
    assert answer != SOLUTION
    ok, out = _run("ex11_2", answer, capsys)
    assert ok is False and "one per optimizer" in out, out
