"""Checks for the exercises of notebook 06 (resume training): solutions in notebooks/solutions/ex06_*.py."""
from __future__ import annotations

from collections.abc import Callable

from ._core import _check, _expect, _weights_only_round_trip, _Wrong  # noqa: F401

__all__ = ["ex06_1", "ex06_2", "ex06_3", "ex06_4", "ex06_5"]


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
def ex06_2(functions: tuple[Callable, Callable]) -> str:
    """(capture_numpy_global() -> a weights-only state of np.random's legacy generator, restore_numpy_global(state))."""
    import numpy as np

    capture_numpy_global, restore_numpy_global = functions

    def draws() -> list[float]:
        return [float(np.random.standard_normal()), *np.random.rand(3).tolist(), float(np.random.standard_normal())]

    np.random.seed(6)
    np.random.standard_normal()  # an odd number of normal draws: the generator holds the second one in a cache
    expected = np.random.get_state()
    got = capture_numpy_global()
    _expect(got is not None, "capture_numpy_global returned None: return the state of np.random's global generator.")
    loaded = _weights_only_round_trip(got, "np.random.get_state() holds a NumPy array of 624 integers: store it as a "
                                           "tensor or a list, and the other entries as plain int and float.")
    first = draws()
    np.random.seed(7)  # somewhere else entirely, as in a new process
    restore_numpy_global(loaded)
    _, keys, position, has_gauss, cached = np.random.get_state()
    _expect(np.array_equal(keys, expected[1]) and position == expected[2],
            "after restoring, the generator's 624 keys and position are not the captured ones: put them back with "
            "np.random.set_state, the keys as an array of uint32.")
    _expect((has_gauss, cached) == expected[3:], "the first normal draw after restoring would differ: the state's "
                                                 "last two entries (has_gauss and the cached Gaussian) hold a draw "
                                                 "already made. Keep them.")
    again = draws()
    _expect(again == first, f"the draws after restoring ({again}) differ from those after capturing ({first}).")
    return ("NumPy's global generator went through a weights-only file and came back, its cached Gaussian "
            "included: the same draws.")


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


@_check
def ex06_4(install_stop_handler: Callable) -> str:
    """install_stop_handler() -> (stop_requested, uninstall): SIGTERM and SIGINT only noted; the old handlers back."""
    import signal

    noticed = []

    def before(signum, frame) -> None:  # the handler that was there before: it records instead of stopping
        noticed.append(signum)

    def send(sig: signal.Signals) -> None:
        """Send `sig` to this process, but only to a Python handler: the default one would end the process."""
        current = signal.getsignal(sig)
        _expect(callable(current), f"{sig.name}'s handler is now {current!r}: a {sig.name} would end the process "
                                   "at once. Put back the handler that was there before, the one signal.signal "
                                   "returned.")
        try:
            signal.raise_signal(sig)
        except (SystemExit, KeyboardInterrupt) as err:
            raise _Wrong(f"{sig.name} raised {type(err).__name__} in the middle of what the program was doing (a "
                         "step, a save): the handler must only note the signal, and the loop stops after the step."
                         ) from None

    stops = (signal.SIGTERM, signal.SIGINT)
    originals = {sig: signal.getsignal(sig) for sig in stops}
    try:
        for sig in stops:
            signal.signal(sig, before)
        for sig in stops:
            got = install_stop_handler()
            _expect(got is not None, "install_stop_handler returned None: return the two functions "
                                     "(stop_requested, uninstall).")
            _expect(isinstance(got, tuple) and len(got) == 2 and all(callable(f) for f in got),
                    f"install_stop_handler returned {type(got).__name__}: return a tuple of two functions, "
                    "(stop_requested, uninstall).")
            stop_requested, uninstall = got
            for other in stops:
                _expect(signal.getsignal(other) is not before,
                        f"after install_stop_handler() the handler of {other.name} is still the one that was there "
                        f"before: install yours for SIGTERM and SIGINT, with signal.signal.")
            _expect(stop_requested() is False, "stop_requested() is not False before any signal arrived.")
            send(sig)
            _expect(not noticed, f"the {sig.name} went to the handler that was there before, not to yours.")
            _expect(stop_requested() is True,
                    f"your handler ran on {sig.name}, but stop_requested() still returns False: what the handler "
                    "changes must be what stop_requested() reads (an assignment inside a function makes a new local "
                    "name; change an object both functions see).")
            send(sig)
            _expect(noticed == [sig], f"a second {sig.name} did not reach the handler that was there before: once the "
                                      "first signal is noted, put the previous handlers back, so that a second one "
                                      "acts as usual (press ■ twice and a step that hangs is interrupted).")
            noticed.clear()
            uninstall()
            for other in stops:
                _expect(signal.getsignal(other) is before,
                        f"after uninstall() the handler of {other.name} is {signal.getsignal(other)!r}, not the one "
                        "that was there before: keep what signal.signal returned and put exactly that back.")
        stop_requested, uninstall = install_stop_handler()
        uninstall()
        for other in stops:
            _expect(signal.getsignal(other) is before,
                    f"uninstall() with no signal received left {other.name}'s handler as "
                    f"{signal.getsignal(other)!r}: put back the one that was there before.")
        _expect(stop_requested() is False, "stop_requested() is True though no signal came after this install: "
                                           "each install_stop_handler() starts with a new, unset flag.")
    finally:
        for sig, handler in originals.items():
            signal.signal(sig, handler)
    return ("SIGTERM and SIGINT only noted, the step finishes; a second signal acts as before; uninstall() puts "
            "back exactly the handlers that were there.")


def _mixed_precision_run(seed: int):
    """A small run with every piece of state of notebook 06 (section 7 included), built as a script builds it."""
    from types import SimpleNamespace

    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return SimpleNamespace(model=model, optimizer=optimizer,
                           scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5),
                           scaler=torch.amp.GradScaler("cpu", growth_interval=3),
                           ema=AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9)),
                           order=torch.Generator().manual_seed(seed), step=0)


def _train_mixed_precision(run, data: tuple, until: int) -> None:
    import warnings

    import torch
    import torch.nn.functional as F

    inputs, targets = data
    with warnings.catch_warnings():  # a step the scaler skips makes the scheduler warn that it stepped first
        warnings.simplefilter("ignore", UserWarning)
        while run.step < until:
            pick = torch.randint(len(targets), (16,), generator=run.order)
            run.optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = F.cross_entropy(run.model(inputs[pick]), targets[pick], reduction="sum")
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.scheduler.step()
            run.ema.update_parameters(run.model)
            run.step += 1


@_check
def ex06_5(functions: tuple[Callable, Callable]) -> str:
    """(save_state(run) -> a weights-only dict of every piece of a mixed-precision run with an EMA,
    load_state(run, state) that puts it back into a run built afresh)."""
    import torch

    from ._core import _equal_states

    save_state, load_state = functions
    generator = torch.Generator().manual_seed(5)
    data = torch.randn(256, 20, generator=generator), torch.randint(4, (256,), generator=generator)
    straight = _mixed_precision_run(0)
    _train_mixed_precision(straight, data, 12)
    stopped = _mixed_precision_run(0)
    _train_mixed_precision(stopped, data, 7)
    state = save_state(stopped)
    _expect(state is not None, "save_state returned None: return a dict that holds the state of every piece of the "
                               "run.")
    loaded = _weights_only_round_trip(state, "keep tensors and plain values only: each object's state_dict(), the "
                                             "generator's get_state(), the step as an int.")
    resumed = _mixed_precision_run(99)  # another process: other initial weights, every object new
    load_state(resumed, loaded)
    _expect(resumed.step == stopped.step, f"after load_state, run.step is {resumed.step}, not {stopped.step}: put "
                                          "the step back too.")
    _expect(_equal_states(resumed.model.state_dict(), stopped.model.state_dict()),
            "after load_state the model's weights are not the saved ones.")
    saved_moments, moments = stopped.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    _expect(saved_moments.keys() == moments.keys() and all(_equal_states(moments[i], saved_moments[i])
                                                           for i in saved_moments),
            "after load_state Adam's running averages are not the saved ones: save and load the optimizer's "
            "state_dict.")
    _expect(resumed.scheduler.state_dict() == stopped.scheduler.state_dict(),
            f"after load_state the learning rate is {resumed.optimizer.param_groups[0]['lr']}, the saved run's was "
            f"{stopped.optimizer.param_groups[0]['lr']}: the schedule starts over. Section 1's table lists what a "
            "resume needs besides the model and the optimizer.")
    _expect(resumed.scaler.state_dict() == stopped.scaler.state_dict(),
            f"after load_state the GradScaler's scale is {resumed.scaler.get_scale()} and its growth tracker "
            f"{resumed.scaler.state_dict()['_growth_tracker']}; the saved run had {stopped.scaler.get_scale()} and "
            f"{stopped.scaler.state_dict()['_growth_tracker']}. A new GradScaler starts from 65536 and counts from 0: "
            "save its state_dict().")
    _expect(int(resumed.ema.n_averaged) != 0,
            "after load_state the EMA's n_averaged is 0, so its next update_parameters copies the model and the "
            "average starts over: keep the whole AveragedModel's state_dict(), not only its module's.")
    _expect(_equal_states(resumed.ema.state_dict(), stopped.ema.state_dict()),
            "after load_state the EMA's averaged weights or its n_averaged are not the saved ones.")
    _expect(torch.equal(resumed.order.get_state(), stopped.order.get_state()),
            "after load_state the generator that picks the batches is not where the saved run's was: the next "
            "batches would differ. Save run.order's state too.")
    _train_mixed_precision(resumed, data, 12)
    _expect(_equal_states(resumed.model.state_dict(), straight.model.state_dict())
            and _equal_states(resumed.ema.state_dict(), straight.ema.state_dict())
            and resumed.scaler.state_dict() == straight.scaler.state_dict(),
            "after the resume the run parted from the one that was never interrupted: some state is missing.")
    return ("stopped after step 7, loaded into new objects and continued to step 12: the model, Adam's averages, "
            "the schedule, the GradScaler, the EMA and the batches are those of the run that was never interrupted, "
            "bit for bit.")
