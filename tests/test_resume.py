"""Resumable training: a run stopped anywhere and resumed equals the run that never stopped, bit for bit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from labutils import Net, TrainConfig, mnist_tensors
from labutils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sidecar_path
from labutils.paths import REPO_ROOT
from labutils.resume import STOPPED_EXIT, CheckpointManager, ResumableRun, ResumeError, resume
from listing import names

# 1,000 images in batches of 96: 11 batches an epoch, the last one of 40 images; two epochs.
CONFIG = TrainConfig(seed=3, epochs=2, batch_size=96, lr=0.01, train_subset=1_000)
STEPS_PER_EPOCH = 11


@pytest.fixture(scope="module")
def data():
    return mnist_tensors(train=True, subset=CONFIG.train_subset)


@pytest.fixture(scope="module")
def reference(data):
    """The run that never stops."""
    run = ResumableRun(*data, CONFIG)
    run.train()
    return run.state_dict()


def assert_identical(state: dict, reference: dict) -> None:
    for key, value in reference["model"].items():
        assert torch.equal(state["model"][key], value), f"parameter {key} differs"
    for index, moments in reference["optimizer"]["state"].items():
        for name, value in moments.items():
            assert torch.equal(state["optimizer"]["state"][index][name], value), f"optimizer state {index}.{name}"
    assert state["scheduler"] == reference["scheduler"]
    assert state["history"] == reference["history"], "every loss and learning rate identical"
    assert torch.equal(state["rng"]["torch"], reference["rng"]["torch"])
    assert state["rng"]["numpy"] == reference["rng"]["numpy"]


# step 0; step 1; mid-epoch; the last batch of an epoch; the epoch boundary; in the second epoch
INTERRUPTS = [0, 1, 5, STEPS_PER_EPOCH - 1, STEPS_PER_EPOCH, STEPS_PER_EPOCH + 4]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_resume_equals_the_straight_run(data, reference, tmp_path, interrupt, num_workers):
    first = ResumableRun(*data, CONFIG, num_workers=num_workers)
    first.train(until_step=interrupt)
    assert first.step == interrupt
    path = save_checkpoint(first.state_dict(), tmp_path / "ck.pt")
    del first
    second = resume(path, *data, num_workers=num_workers)
    assert second.step == interrupt
    second.train()
    assert second.done and second.step == CONFIG.epochs * STEPS_PER_EPOCH
    assert_identical(second.state_dict(), reference)


def test_stopping_and_continuing_in_one_process_equals_the_straight_run(data, reference):
    run = ResumableRun(*data, CONFIG)
    for stop in (3, 7, 11, 12, 20):
        run.train(until_step=stop)
    run.train()
    assert_identical(run.state_dict(), reference)


@pytest.mark.parametrize("left_out", ["rng", "sampler", "scheduler", "loader_generator"])
def test_each_piece_of_state_matters(data, reference, left_out):
    """The test must be able to say no: leaving out one piece changes the result."""
    first = ResumableRun(*data, CONFIG)
    first.train(until_step=5)
    second = ResumableRun(*data, CONFIG)
    second.load_state_dict(first.state_dict(), skip=(left_out,))
    second.train()
    state = second.state_dict()
    assert not all(torch.equal(state["model"][k], v) for k, v in reference["model"].items())


def test_the_checkpoint_loads_weights_only_and_refuses_another_configuration(data, tmp_path):
    run = ResumableRun(*data, CONFIG)
    run.train(until_step=2)
    path = save_checkpoint(run.state_dict(), tmp_path / "ck.pt")
    state = load_checkpoint(path)  # weights_only=True: no NumPy arrays, no generator objects
    assert state["rng"]["numpy"]["bit_generator"] == "PCG64" and len(state["rng"]["python"][1]) == 625
    other = ResumableRun(*data, TrainConfig(**{**CONFIG.to_dict(), "seed": 4}))
    with pytest.raises(ValueError, match="build the run with the checkpoint's configuration"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="not a resumable checkpoint"):
        run.load_state_dict({"model": state["model"]})


def test_the_manager_refuses_a_pointless_interval_or_keeping_nothing(tmp_path):
    with pytest.raises(ValueError, match="every=0 and keep_last=3 must both be at least 1"):
        CheckpointManager(tmp_path, every=0)
    with pytest.raises(ValueError, match="keep_last=0"):
        CheckpointManager(tmp_path, every=5, keep_last=0)


def test_the_manager_saves_every_n_steps_and_each_epoch_and_keeps_the_last_k(data, tmp_path):
    run = ResumableRun(*data, CONFIG, test=mnist_tensors(train=False, subset=500))
    manager = CheckpointManager(tmp_path, every=4, keep_last=3)
    run.train(manager=manager)
    kept = [int(p.stem.split("-")[1]) for p in manager.checkpoints()]
    assert kept == [16, 20, 22], "saved at 4, 8, 11 (epoch end), 12, 16, 20, 22 (end); the last three kept"
    assert [n for n in names(tmp_path) if not n.startswith("step-")] == ["best.pt", "best.pt.sha256"]
    best = load_checkpoint(tmp_path / "best.pt")["metadata"]
    accuracies = run.history["test_acc"]
    assert best["metrics"]["test_acc"] == max(accuracies) and best["batch"] == 0
    assert manager.latest() == manager.path(22)


def test_latest_falls_back_over_damaged_checkpoints_with_a_warning(data, reference, tmp_path):
    run = ResumableRun(*data, CONFIG)
    manager = CheckpointManager(tmp_path, every=3, keep_last=4)
    run.train(until_step=13, manager=manager)
    newest, older = manager.checkpoints()[-1], manager.checkpoints()[-2]
    assert (newest.name, older.name) == ("step-00000012.pt", "step-00000011.pt")
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    with pytest.warns(UserWarning, match="step-00000012.pt: its sha256"):
        assert manager.latest() == older
    data_bytes = bytearray(older.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0xFF  # a flipped byte, which torch.load would not notice
    older.write_bytes(bytes(data_bytes))
    with pytest.warns(UserWarning) as caught:
        fallback = manager.latest()
    assert ["step-00000012.pt" in str(w.message) for w in caught] == [True, False]
    assert "step-00000011.pt" in str(caught[1].message)
    assert fallback == manager.path(9) and manager.skipped == ["step-00000012.pt", "step-00000011.pt"]
    resumed = resume(fallback, *data)
    resumed.train()
    assert_identical(resumed.state_dict(), reference)
    sidecar_path(manager.path(9)).unlink()
    with pytest.warns(UserWarning):
        assert manager.latest() == manager.path(6)


class _Positions:
    """As much of a ResumableRun as CheckpointManager reads, moved by hand: its step, its history, a small state."""

    def __init__(self) -> None:
        self.step = self.epoch = self.batch = 0
        self.history: dict[str, list] = {"loss": [], "test_acc": []}

    def at(self, step: int, *, test_acc: float | None = None) -> _Positions:
        """Move to `step`; with a test accuracy the step ends an epoch (batch 0), as CheckpointManager.save sees it."""
        self.step, self.batch = step, 0 if test_acc is not None else 1
        self.history["loss"].append(1.0 / step)
        if test_acc is not None:
            self.epoch += 1
            self.history["test_acc"].append(test_acc)
        return self

    def state_dict(self) -> dict:
        return {"step": self.step, "weights": torch.full((4,), float(self.step))}


def _steps(manager: CheckpointManager) -> list[int]:
    return [int(p.stem.split("-")[1]) for p in manager.checkpoints()]


def test_rotation_never_deletes_the_checkpoint_just_saved(tmp_path):
    """latest() skipped a damaged step 300 and the run went on from 200: its next save must survive the rotation."""
    run, manager = _Positions(), CheckpointManager(tmp_path, every=50, keep_last=3)
    for step in (100, 200, 300):
        manager.save(run.at(step))
    damaged = manager.path(300)
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.warns(UserWarning, match="step-00000300.pt"):
        assert manager.latest() == manager.path(200)
    resumed = _Positions().at(250)
    kept = CheckpointManager(tmp_path, every=50, keep_last=1).save(resumed)
    assert kept == manager.path(250) and kept.is_file() and sidecar_path(kept).is_file()
    assert _steps(manager) == [250], "the just-saved 250 kept; the damaged 300 and the older 200 deleted"
    CheckpointManager(tmp_path, every=50, keep_last=2).save(resumed.at(260))
    assert _steps(manager) == [250, 260]
    manager.save(_Positions().at(240))  # keep_last=3: the one just saved, then the newest others
    assert _steps(manager) == [240, 250, 260]


def test_the_best_metric_is_read_once_and_without_the_tensors(tmp_path, monkeypatch):
    import labutils.resume

    reads = []
    real_load = labutils.resume.load_checkpoint

    def counted_load(path, **kwargs):
        reads.append((path.name, kwargs.get("map_location", "cpu")))
        return real_load(path, **kwargs)

    monkeypatch.setattr(labutils.resume, "load_checkpoint", counted_load)
    run, manager = _Positions(), CheckpointManager(tmp_path, every=100)
    for step, accuracy in [(10, 0.5), (20, 0.7), (30, 0.6), (40, 0.8), (50, 0.75)]:
        manager.save(run.at(step, test_acc=accuracy))
    assert reads == [("best.pt", "meta")], "read once (it did not exist yet); then remembered from each save"
    assert real_load(tmp_path / "best.pt")["metadata"]["step"] == 40
    reads.clear()
    again = CheckpointManager(tmp_path, every=100)  # a resumed run: it reads best.pt once, tensors left on "meta"
    for step, accuracy in [(60, 0.79), (70, 0.78)]:
        again.save(run.at(step, test_acc=accuracy))
    assert reads == [("best.pt", "meta")]
    assert real_load(tmp_path / "best.pt")["metadata"]["step"] == 40, "0.79 and 0.78 are not better than 0.8"


def test_a_damaged_or_replaced_best_checkpoint_is_read_again(tmp_path):
    run, manager = _Positions(), CheckpointManager(tmp_path, every=100)
    manager.save(run.at(10, test_acc=0.9))
    best = tmp_path / "best.pt"
    best.write_bytes(best.read_bytes()[:200])  # damaged: it no longer proves anything, so any metric improves on it
    manager.save(run.at(20, test_acc=0.1))
    assert load_checkpoint(best)["metadata"]["step"] == 20
    save_checkpoint({}, best, metadata={"step": 0, "metrics": {"test_acc": 0.95}})  # replaced by another writer
    manager.save(run.at(30, test_acc=0.9))
    assert load_checkpoint(best)["metadata"]["step"] == 0, "0.9 is not better than the 0.95 best.pt now holds"
    manager.save(run.at(40, test_acc=0.99))
    assert load_checkpoint(best)["metadata"]["step"] == 40


_KILLED_IN_SAVE = textwrap.dedent("""
    import os, signal, sys
    from labutils import Net, TrainConfig, _tuning, mnist_tensors
    from labutils.resume import CheckpointManager, ResumableRun
    config = TrainConfig(**eval(sys.argv[2]))
    run = ResumableRun(*mnist_tensors(train=True, subset=config.train_subset), config)
    manager = CheckpointManager(sys.argv[1], every=4, keep_last=3)
    write, written = _tuning.HashingWriter.write, [0]
    def write_then_die(self, data):
        if run.step == 8:  # the second save: killed in the middle of writing it
            written[0] += len(data)
            if written[0] > 50_000:
                os.kill(os.getpid(), signal.SIGKILL)
        return write(self, data)
    _tuning.HashingWriter.write = write_then_die
    run.train(manager=manager)
""")


def test_a_kill_during_a_save_resumes_from_the_previous_checkpoint(data, reference, tmp_path):
    child = subprocess.run([sys.executable, "-c", _KILLED_IN_SAVE, str(tmp_path), repr(CONFIG.to_dict())],
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr
    manager = CheckpointManager(tmp_path, every=4, keep_last=3)
    assert [p.name for p in manager.checkpoints()] == ["step-00000004.pt"]
    assert any(p.name.startswith(".step-00000008.pt.tmp-") for p in tmp_path.iterdir()), "the killed save's temporary"
    latest = manager.latest()
    assert latest == manager.path(4)
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir()), "latest() cleaned the dead save's temporary"
    run = resume(latest, *data)
    run.train(manager=manager)
    assert_identical(run.state_dict(), reference)


# --- preemption: SIGTERM, then SIGKILL after a grace period ---------------------------------------------------------

def _signal_at(step: int, sig: signal.Signals):
    def on_step(run: ResumableRun) -> None:
        if run.step == step:
            # As a cluster or Ctrl-C would. raise_signal runs the handler before it returns; os.kill may land on another
            # of this process's threads, and the handler then runs some bytecodes later (after this step).
            signal.raise_signal(sig)

    return on_step


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_the_step_saves_it_and_resumes_exactly(data, reference, tmp_path, sig):
    """Workers augment the images: the resumed run with num_workers=2 equals the straight run with none."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    manager = CheckpointManager(tmp_path, every=100, keep_last=3)  # no periodic save would cover step 7
    run = ResumableRun(*data, CONFIG, num_workers=2)
    run.train(manager=manager, on_step=_signal_at(7, sig))
    assert run.stopped_by == sig.name and run.step == 7
    assert {s: signal.getsignal(s) for s in handlers} == handlers, "train() put the handlers back"
    assert manager.latest() == manager.path(7), "the step the signal interrupted was saved"
    resumed = resume(manager.latest(), *data, num_workers=2)
    resumed.train()
    assert_identical(resumed.state_dict(), reference)


def test_a_second_signal_is_not_caught(data):
    """The first SIGINT asks for a stop after the step; a second one interrupts at once, as Ctrl-C twice should."""
    def twice(run: ResumableRun) -> None:
        if run.step == 2:  # raise_signal, not os.kill: two SIGINTs pending at once would run the handler only once
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    run = ResumableRun(*data, CONFIG)
    # Python's own SIGINT handler, as in a terminal: a suite started in the background (`make test &`) inherits
    # SIGINT ignored, and train() rightly gives the second signal back to whatever handled SIGINT before.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run.train(on_step=twice)
    finally:
        signal.signal(signal.SIGINT, previous)


def _script(folder, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "notebooks" / "scripts" / "train_resumable.py"), str(folder),
            "--seed", str(CONFIG.seed), "--epochs", str(CONFIG.epochs), "--subset", str(CONFIG.train_subset),
            "--batch-size", str(CONFIG.batch_size), "--lr", str(CONFIG.lr), "--workers", "2", *extra]


def _stop_child_at(folder, step: int, sig: signal.Signals, every: int) -> tuple[int, list[str]]:
    """Run the training script in its own process group, send `sig` to the whole group at `step`; return its status."""
    child = subprocess.Popen(_script(folder, "--every", str(every), "--pause-at", str(step)), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=REPO_ROOT)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("paused at step"):
                os.killpg(child.pid, sig)  # the cluster signals every process of the job: the workers too
        return child.wait(timeout=120), lines
    finally:
        child.kill()
        child.wait(timeout=60)


def _reference_for_the_script(data):
    run = ResumableRun(*data, CONFIG, test=mnist_tensors(train=False))
    run.train()
    return run.state_dict()


@pytest.fixture(scope="module")
def reference_with_test(data):
    return _reference_for_the_script(data)


def test_the_script_saves_on_sigterm_exits_143_and_resumes_bit_exact(data, reference_with_test, tmp_path):
    """SIGKILL before the first checkpoint and after one: notebook 06 runs the script that way (nbval with its
    defaults, tests/test_papermill_06_08.py at step 7; `make regress` at an epoch's end too) and proves the
    resume exact. In one process, every interrupt step, the epoch's end included, is above."""
    status, lines = _stop_child_at(tmp_path, 7, signal.SIGTERM, every=5)
    assert status == STOPPED_EXIT[signal.SIGTERM] == 143, lines
    assert lines[-1] == "stopped by SIGTERM after step 7; saved step-00000007.pt"
    manager = CheckpointManager(tmp_path, every=5)
    assert manager.latest() == manager.path(7), "no step lost"
    finished = subprocess.run(_script(tmp_path, "--every", "5", "--resume"), capture_output=True, text=True,
                              timeout=300, cwd=REPO_ROOT)
    assert finished.returncode == 0 and "starting at step 7 of 22" in finished.stdout, finished.stderr
    assert_identical(load_checkpoint(manager.latest()), reference_with_test)


def test_every_resume_error_names_the_file(data, tmp_path):
    with pytest.raises(CheckpointError, match="absent.pt: no such file"):
        resume(tmp_path / "absent.pt", *data)
    plain = save_checkpoint({"model": Net().state_dict()}, tmp_path / "plain.pt")
    with pytest.raises(ResumeError, match=r"plain.pt: it is not a resumable checkpoint of this lab \(format None"):
        resume(plain, *data)
    run = ResumableRun(*data, CONFIG)
    run.train(until_step=2)
    path = save_checkpoint(run.state_dict(), tmp_path / "run.pt")
    with pytest.raises(ResumeError, match="run.pt: this run cannot continue from it .*1000 training images, but 500"):
        resume(path, data[0][:500], data[1][:500])
    state = load_checkpoint(path)
    del state["rng"]
    save_checkpoint({k: v for k, v in state.items() if k != "metadata"}, tmp_path / "broken.pt")
    with pytest.raises(ResumeError, match="broken.pt: this run cannot continue from it \\(KeyError: 'rng'\\)"):
        resume(tmp_path / "broken.pt", *data)


def test_the_script_names_a_checkpoint_it_cannot_resume_from(tmp_path):
    save_checkpoint({"model": Net().state_dict()}, tmp_path / "step-00000005.pt")  # verifies, but is no run
    done = subprocess.run(_script(tmp_path, "--resume"), capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("train_resumable.py: error: ") and "step-00000005.pt: it is not a resumable" in lines[0]


def _fake_gpus(monkeypatch, count: int) -> dict:
    """Pretend this machine has `count` GPUs: record each GPU generator state set, refuse a GPU that is not there."""
    import torch.cuda.random

    restored: dict[int, torch.Tensor] = {}

    def set_rng_state(new_state, device="cuda"):
        index = device if isinstance(device, int) else (torch.device(device).index or 0)
        if index >= count:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index}")
        restored[index] = new_state.clone()

    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    return restored


@pytest.mark.parametrize("gpus_here", [0, 1, 2, 3])
def test_gpu_generators_are_restored_only_on_as_many_gpus_and_otherwise_a_warning_says_so(monkeypatch, gpus_here):
    import random
    import warnings

    import numpy as np

    from labutils.resume import capture_rng, restore_rng

    generator = np.random.default_rng(3)
    state = capture_rng(generator)
    state["cuda"] = [torch.full((16,), 7, dtype=torch.uint8), torch.full((16,), 9, dtype=torch.uint8)]
    expected = (random.random(), generator.random(), torch.rand(2))
    restored = _fake_gpus(monkeypatch, gpus_here)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restore_rng(state, generator)
    assert (random.random(), generator.random()) == expected[:2] and torch.equal(torch.rand(2), expected[2])
    if gpus_here == 2:
        assert not caught and sorted(restored) == [0, 1] and torch.equal(restored[1], state["cuda"][1])
    else:
        assert not restored and len(caught) == 1
        assert f"the random state of 2 GPU(s) and this machine has {gpus_here}" in str(caught[0].message)


def test_a_checkpoint_without_gpu_generators_restores_quietly_on_a_gpu_machine(monkeypatch):
    import warnings

    import numpy as np

    from labutils.resume import capture_rng, restore_rng

    generator = np.random.default_rng(3)
    state = capture_rng(generator)
    assert state["cuda"] == []  # captured here, without a GPU
    restored = _fake_gpus(monkeypatch, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore_rng(state, generator)
        restore_rng({k: v for k, v in state.items() if k != "cuda"}, generator)  # a checkpoint from before "cuda"
    assert not restored
