"""The core of the exercise checks: the ✓/✗ wrapper that never raises and leaves the learner's session as it was."""
from __future__ import annotations

import contextlib
import functools
import os
import random
import stat
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import torch

from ..checkpoint import unsafe_globals
from ..i18n import translate


class _Wrong(Exception):
    """The answer is wrong; the message is the hint shown to the learner."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _Wrong(hint)


LABUTILS = Path(__file__).resolve().parent.parent
_LIBRARIES = {Path(p).resolve()
              for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"])}


def _is_learners(filename: str) -> bool:
    """True for code the learner wrote: a notebook cell or their own file, not the lab's checks nor a library."""
    if filename.startswith("<frozen"):
        return False
    path = Path(filename).resolve()
    return not path.is_relative_to(LABUTILS) and not any(path.is_relative_to(lib) for lib in _LIBRARIES)


def _raised_in_learners_code(err: BaseException) -> bool:
    """True when the traceback passes through the learner's code (the check called it and it raised)."""
    return any(_is_learners(frame.f_code.co_filename) for frame, _ in traceback.walk_tb(err.__traceback__))


@contextlib.contextmanager
def _session_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global random state and torch's determinism settings on exit."""
    import numpy as np

    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) != (
                deterministic, warn_only):  # only then: its first call costs a second (it imports torch._inductor)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def _equal_states(a: dict, b: dict) -> bool:
    """True when two state_dicts have the same keys and equal tensors (compared on the CPU)."""
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


_PASSED: dict[str, bool] = {}  # each check's latest verdict in this session


def passed(*names: str) -> bool:
    """Return True when each named check (such as "ex12_1") has run in this session and its latest verdict is ✓."""
    return all(_PASSED.get(name, False) for name in names)


def waiting_line(missing: list[str]) -> str:
    """Return the capstone's line for a part that waits for the steps `missing`, in the checks' language."""
    return translate(f"(waiting) this part runs your answers to {', '.join(missing)}: make their checks say ✓, then "
                     "run it again")


def _check(func: Callable[[object], str]) -> Callable[[object], bool]:
    """Turn a function that raises _Wrong (or returns a success message) into a check that never raises.

    The check leaves the session's random generators and determinism settings as they were. An error raised in
    the learner's code is reported as theirs; one raised by the check itself is reported as the lab's fault, with
    its traceback.
    """

    @functools.wraps(func)
    def check(answer: object) -> bool:
        _PASSED[func.__name__] = verdict = _verdict(answer)
        return verdict

    def _verdict(answer: object) -> bool:
        name = func.__name__
        if answer is None or answer is Ellipsis:
            print(f"✗ {name}: "
                  + translate("no answer yet: fill in the exercise cell above, run it, then run this cell again."))
            return False
        with _session_kept():
            try:
                message = func(answer)
            except _Wrong as wrong:
                print(f"✗ {name}: {translate(str(wrong))}")
                return False
            except Exception as err:  # never raise: say whose code failed, and how
                if _raised_in_learners_code(err):
                    print(f"✗ {name}: " + translate(f"your code raised {type(err).__name__}: {err}"))
                else:
                    print(f"⚠ {name}: " + translate("the check itself failed, which is a fault of the lab, not of your "
                                                    "answer. Please report it with this traceback:")
                          + "\n" + "".join(traceback.format_exception(err)))
                return False
        print(f"✓ {name}: {translate(message)}")
        return True

    return check


def _weights_only_round_trip(obj: object, fix: str) -> object:
    """torch.save `obj` to memory and load it back with weights_only=True; a refusal becomes the hint `fix`."""
    import io
    import pickle

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    try:
        return torch.load(buffer, weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        found = ", ".join(unsafe_globals(buffer, err)) or "code"
        raise _Wrong(f"torch.load(weights_only=True) refuses it (it needs {found}): {fix}") from None


# --- watching a save: shared by 03's and the capstone's checks -------------------------------------------

@contextlib.contextmanager
def _watching_renames_and_fsyncs(folder: Path) -> Iterator[list]:
    """Record, in order, ("rename", source, target) and ("fsync", "file" or "folder") while the block runs."""
    events = []
    real_replace, real_rename, real_fsync = os.replace, os.rename, os.fsync

    def replace(src, dst, *args, **kwargs):
        events.append(("rename", Path(src), Path(dst)))
        return real_replace(src, dst, *args, **kwargs)

    def rename(src, dst, *args, **kwargs):
        events.append(("rename", Path(src), Path(dst)))
        return real_rename(src, dst, *args, **kwargs)

    def fsync(fd):
        info = os.fstat(fd)
        is_folder = stat.S_ISDIR(info.st_mode) and os.path.samestat(info, os.stat(folder))
        events.append(("fsync", "folder" if is_folder else "file"))
        return real_fsync(fd)

    with mock.patch("os.replace", replace), mock.patch("os.rename", rename), mock.patch("os.fsync", fsync):
        yield events


def _expect_atomic(events: list, path: Path) -> None:
    """The file at `path` arrived by a rename from its own folder, synced before, with the folder synced after."""
    renames = [event for event in events if event[0] == "rename" and event[2] == path]
    _expect(renames, f"{path.name} did not arrive by a rename: torch.save into a temporary, then "
                     "os.replace(temporary, path).")
    _expect(renames[-1][1].parent == path.parent,
            f"the temporary was in {renames[-1][1].parent}, not in the folder of `path`: a rename across "
            "disks is a copy, not atomic.")
    last = events.index(renames[-1])
    _expect(("fsync", "file") in events[:last], "call f.flush() and os.fsync(f.fileno()) before the rename, "
                                                "or a power cut can leave an empty file under the new name.")
    _expect(("fsync", "folder") in events[last:],
            "after the rename, fsync the folder too (fd = os.open(folder, os.O_RDONLY); os.fsync(fd); "
            "os.close(fd)): the new name is an entry in the folder, and until the folder reaches the disk "
            "a power cut can bring the old file back.")
