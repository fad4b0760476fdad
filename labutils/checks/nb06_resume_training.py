"""Checks for the exercises of notebook 06 (resume training): solutions in notebooks/solutions/ex06_*.py."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex06_1", "ex06_2", "ex06_3"]


@_check
def ex06_1(redo_steps: Callable) -> str:
    """redo_steps(crash_step, every, steps_per_epoch) -> steps since the last checkpoint (every N steps, epoch ends)."""
    cases = {(130, 20, 94): 10, (100, 20, 94): 0, (95, 20, 94): 1, (19, 20, 94): 19, (0, 20, 94): 0,
             (230, 50, 60): 30, (190, 50, 60): 10, (188, 20, 94): 0}
    for args, expected in cases.items():
        got = redo_steps(*args)
        _expect(got is not None, "redo_steps returned None: return the number of steps to redo.")
        if args == (95, 20, 94) and int(got) == 15:
            _expect(False, "redo_steps(95, 20, 94) gave 15: the end of each epoch is saved too (step 94 here).")
        _expect(int(got) == expected, f"redo_steps{args} gave {got}, expected {expected}: the last checkpoint is the "
                                      "larger of the last multiple of `every` and the last epoch end.")
    return "the last save is the later of the last multiple of `every` and the last epoch end."


@_check
def ex06_2(capture_rng_state: Callable) -> str:
    """capture_rng_state(numpy_generator) -> python, numpy and torch generator states, loadable weights-only."""
    import random
    from unittest import mock

    import numpy as np

    from ..resume import ResumableRun, restore_rng
    from ..train import TrainConfig

    generator = np.random.default_rng(5)
    got = capture_rng_state(generator)
    _expect(got is not None, "capture_rng_state returned None: return a dict with python, numpy and torch states.")
    _expect(isinstance(got, dict) and {"python", "numpy", "torch"} <= set(got),
            "return a dict with the keys 'python', 'numpy' and 'torch'.")
    loaded = _weights_only_round_trip(got, "store numpy_generator.bit_generator.state (a dict), not the generator "
                                           "itself.")
    first = (random.random(), generator.random(), torch.rand(3))
    restore_rng(loaded, generator)
    again = (random.random(), generator.random(), torch.rand(3))
    _expect(first[0] == again[0], "Python's random draws differ after restoring: store random.getstate().")
    _expect(first[1] == again[1], "NumPy's draws differ after restoring: store numpy_generator.bit_generator.state.")
    _expect(torch.equal(first[2], again[2]), "torch's draws differ after restoring: store torch.get_rng_state().")

    config = TrainConfig(seed=2, epochs=1, batch_size=100, lr=0.01, train_subset=400)
    from ..data import mnist_tensors
    data = mnist_tensors(train=True, subset=400)
    with mock.patch("labutils.resume.capture_rng", capture_rng_state):
        straight = ResumableRun(*data, config)
        straight.train()
        stopped = ResumableRun(*data, config)
        stopped.train(until_step=2)
        state = _weights_only_round_trip(stopped.state_dict(), "the run's state does not load.")
        resumed = ResumableRun(*data, config)  # seeds the process-wide generators: so after state_dict()
        resumed.load_state_dict(state)
        resumed.train()
    _expect(all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in straight.model.state_dict().items()),
            "a run resumed with your states differs from the straight run.")
    return "all three generators restored; a run resumed with your capture equals the straight run bit for bit."


@_check
def ex06_3(newest_good: Callable) -> str:
    """newest_good(folder) -> the newest step-*.pt (by its step) that verifies, or None."""
    import os
    import tempfile
    from pathlib import Path

    from ..checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        got = newest_good(folder)
        _expect(got is None, f"an empty folder has no checkpoint: return None, not {got!r}.")
        for step in (4, 8, 12, 120):
            save_checkpoint({"step": step}, folder / f"step-{step:08d}.pt")
        save_checkpoint({"step": 8}, folder / "best.pt")
        (folder / ".step-00000160.pt.tmp-99999-abc").write_bytes(b"PK\x03\x04 partial")
        newest = folder / "step-00000120.pt"
        newest.write_bytes(newest.read_bytes()[:100])  # truncated
        for age, step in enumerate((12, 8, 4, 120)):  # step 4 has the newest modification time
            os.utime(folder / f"step-{step:08d}.pt", (1_000_000 + age, 1_000_000 + age))
        got = newest_good(folder)
        _expect(got is not None, "newest_good returned None, but step-00000012.pt is intact.")
        got = Path(got)
        _expect(got.name != "step-00000120.pt", "step-00000120.pt is truncated: verify each file with "
                                                "verify_checksum and skip those that fail.")
        _expect(got.name != "step-00000004.pt", "you picked the newest by modification time; order by the step in "
                                                "the file name (a copy or a restore changes the time).")
        _expect(got.name == "step-00000012.pt", f"expected step-00000012.pt, got {got.name}.")
        for path in folder.glob("step-*.pt"):
            path.write_bytes(b"")
        _expect(newest_good(folder) is None, "when no checkpoint verifies, return None.")
    return "newest by step, damaged ones skipped, temporaries and best.pt ignored."
