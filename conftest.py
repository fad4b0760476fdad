"""Every pytest session of the lab works in a temporary artifacts folder, and proves that it did.

`make test` trains, saves, caches and breaks models, in the notebooks (nbval, papermill) and in the unit tests.
All of it goes to a temporary folder made for the session (LAB_ARTIFACTS_DIR, which every notebook kernel and
subprocess inherits; the model cache lives in it), never to the learner's `artifacts/`, which may hold their own
models. At the end the session compares the learner's folder with what it held at the start and fails, naming
each file, if anything in it was created, changed or removed.

The learner's folder is the one labutils would use: LAB_ARTIFACTS_DIR when the learner set it, else artifacts/.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_KEY = pytest.StashKey[dict]()
_SESSION = "LAB_TEST_SESSION_ARTIFACTS"  # set by the first process of a session; its worker processes reuse it


def learner_artifacts() -> Path:
    return Path(os.environ.get("LAB_ARTIFACTS_DIR", Path(__file__).resolve().parent / "artifacts")).absolute()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, modification time in ns)} of every file under `folder` (empty when it is missing)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            files[path.relative_to(folder).as_posix()] = (info.st_size, info.st_mtime_ns)
    return files


def differences(before: dict, after: dict) -> list[str]:
    lines = [f"created {name}" for name in sorted(after.keys() - before.keys())]
    lines += [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    lines += [f"changed {name}" for name in sorted(before.keys() & after.keys()) if before[name] != after[name]]
    return lines


def pytest_configure(config):
    # checked outputs print paths into the temporary folder: tests/nbval_sanitize.cfg maps them back
    if getattr(config.option, "nbval_sanitize_with", "") is None:
        config.option.nbval_sanitize_with = str(Path(__file__).resolve().parent / "tests" / "nbval_sanitize.cfg")
    if os.environ.get(_SESSION):  # a worker process (pytest-xdist) of a session that made the folder: its own part
        worker = os.environ.get("PYTEST_XDIST_WORKER", "worker")
        os.environ["LAB_ARTIFACTS_DIR"] = str(Path(os.environ[_SESSION], worker, "artifacts"))
        return
    watched = learner_artifacts()
    temporary = Path(tempfile.mkdtemp(prefix="lab-test-"))
    os.environ[_SESSION] = str(temporary)
    os.environ["LAB_ARTIFACTS_DIR"] = str(temporary / "artifacts")
    os.environ.pop("LAB_METRICS_DIR", None)  # metrics go under the temporary artifacts folder too
    config.stash[_KEY] = {"watched": watched, "before": snapshot(watched), "temporary": temporary}


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(_KEY, None)
    if state is None:
        return
    changed = differences(state["before"], snapshot(state["watched"]))
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (f"the tests wrote to the learner's artifacts folder {state['watched']} instead of the "
                   f"session's temporary one:\n  " + "\n  ".join(changed))
        if reporter is not None:
            reporter.write_line(f"FAILED isolation: {message}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    state = config.stash.get(_KEY, None)
    if state is not None:
        shutil.rmtree(state["temporary"], ignore_errors=True)
        os.environ.pop(_SESSION, None)
