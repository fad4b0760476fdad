"""Every pytest session of the lab works in a temporary artifacts folder, and proves that it did.

`make test` trains, saves, caches and breaks models, in the notebooks (nbval, papermill) and in the unit tests.
All of it goes to a temporary folder made for the session (LAB_ARTIFACTS_DIR, which every notebook kernel and
subprocess inherits; the model cache lives in it), never to the learner's `artifacts/`, which may hold their own
models. At the end the session compares the learner's folder with what it held at the start and fails, naming
each file, if anything in it was created, changed or removed.

The learner's folder is the one labutils would use: LAB_ARTIFACTS_DIR when the learner set it, else artifacts/.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# nbval runs the English notebooks. The Chinese ones (NN_name.zh-CN.ipynb) hold the same code and outputs, which
# tests/test_translations.py proves, and two of them run end to end in the papermill chains (edition: zh-CN).
collect_ignore_glob = ["notebooks/*.zh-CN.ipynb"]

pytest.register_assert_rewrite("notebook_claims")  # its asserts say what they compared, as a test's do
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


def share_the_model_cache(session: Path, worker: str) -> Path:
    """Give a worker its own artifacts folder (notebooks and checks write fixed names in it) whose cache/ is the
    session's: a Net trained by one worker is found by the others, as it is in a serial run."""
    artifacts, shared = session / worker / "artifacts", session / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    if not (artifacts / "cache").exists():
        (artifacts / "cache").symlink_to(shared, target_is_directory=True)
    return artifacts


def share_the_cores() -> None:
    """With pytest-xdist's N workers on C cores, each worker (and the kernels and processes it starts) computes on
    C // N threads: torch's OpenMP threads wait by spinning, and 2 workers × 2 threads on 2 cores ran 3× slower."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


share_the_cores()  # now, before tests/conftest.py imports torch, which reads OMP_NUM_THREADS once


def forget_the_calling_make() -> None:
    """The tests that run `make` (dry runs of `make lab`, `make test`, `make setup`) must see it as a newcomer's shell
    does. When `make test SECOND_PYTHON=auto` started this session, make passes its command-line variables to every
    make below it through MAKEFLAGS, and theirs would hold SECOND_PYTHON too."""
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        os.environ.pop(name, None)


forget_the_calling_make()


def pytest_configure(config):
    config.addinivalue_line("markers", "executes: runs a notebook, trains or drives a browser (make check leaves "
                                       "these out; conftest.py marks them)")
    # checked outputs print paths into the temporary folder: tests/nbval_sanitize.cfg maps them back
    if getattr(config.option, "nbval_sanitize_with", "") is None:
        config.option.nbval_sanitize_with = str(Path(__file__).resolve().parent / "tests" / "nbval_sanitize.cfg")
    if os.environ.get(_SESSION):  # a worker process (pytest-xdist) of a session that made the folder: its own part
        worker = os.environ.get("PYTEST_XDIST_WORKER", "worker")
        os.environ["LAB_ARTIFACTS_DIR"] = str(share_the_model_cache(Path(os.environ[_SESSION]), worker))
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


class NotebookMetrics(pytest.Item):
    """Run after a lab notebook's last cell: what the notebook recorded with labutils.record_metrics in this run,
    against its baseline and its claims (tests/notebook_claims.py)."""

    def runtest(self):
        from labutils.paths import metrics_dir
        from notebook_claims import check_default_run

        cells = [item.nodeid for item in self.session.items if item.parent is self.parent and item is not self]
        if len(cells) < self.cell_count:
            pytest.skip("only some of the notebook's cells ran in this session")
        failed = [nodeid for nodeid in cells if _CELL_OUTCOMES.get(nodeid) != "passed"]
        if failed:
            pytest.skip(f"{len(failed)} of its cells did not pass (reported above), so its metrics are incomplete")
        path = metrics_dir() / f"{self.path.stem}.json"
        if not path.is_file():
            raise AssertionError(f"{self.path.name} ran to the end but recorded no metrics in {path}")
        check_default_run(self.path.stem, json.loads(path.read_text()))

    def reportinfo(self):
        return self.path, None, f"{self.path.name}: the metrics of its run"


_CELL_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":  # a failed setup counts too
        _CELL_OUTCOMES[report.nodeid] = report.outcome


def add_the_metrics_checks(items) -> None:
    """After the cells of each notebook that has a `-defaults` run in tests/regression/params.yaml, its metrics item."""
    root = Path(__file__).resolve().parent
    if not (root / "tests" / "notebook_claims.py").is_file():  # a copy of this file outside the lab (a test's)
        return
    from notebook_claims import DEFAULT_RUNS

    by_notebook: dict = {}
    notebooks = root / "notebooks"
    for item in items:
        if item.path.parent == notebooks and item.path.stem in DEFAULT_RUNS and item.path.suffix == ".ipynb":
            by_notebook.setdefault(item.parent, []).append(item)
    for parent, cells in by_notebook.items():
        check = NotebookMetrics.from_parent(parent, name="metrics")
        check.cell_count = len(cells)
        items.insert(items.index(cells[-1]) + 1, check)


# What `make check` leaves out (pytest -m "not executes"), for a loop of about a minute while editing: the notebooks'
# executions (nbval and their metrics items), the browser tests and the test files that train or run notebooks
# throughout, marked here; a heavy test in an otherwise quick file carries @pytest.mark.executes itself (a pytest
# session of notebooks in tests/test_isolation.py and tests/test_notebook_claims.py). `make test` runs everything.
EXECUTES = {"test_runner.py", "test_capstone.py", "test_resume.py", "test_cache.py", "test_papermill_06_08.py",
            "test_papermill_02_to_00.py", "test_hub.py"}


def mark_what_executes(items) -> None:
    for item in items:
        if item.path.suffix == ".ipynb" or item.path.parent.name == "browser" or item.path.name in EXECUTES:
            item.add_marker(pytest.mark.executes)


# Test files of half a minute or more (pytest --durations=0), handed out before the notebooks: see below.
SLOW_TEST_FILES = {"test_runner.py", "test_resume.py", "test_cache.py", "test_checkpoint_faults.py",
                   "test_capstone.py", "test_hub.py"}


def pytest_collection_modifyitems(session, config, items):
    """pytest-xdist hands out files in collection order, so put first
    - the browser tests (tests/browser/, when a Chromium is found), the longest file (2 to 3 minutes), which opens
      every notebook in JupyterLab and runs four: it starts at once and keeps one worker while the other runs the rest;
    - the two papermill chains, files of half a minute each that start a kernel: each starts at once on its own worker
      instead of one running last and alone;
    - then notebook 02, which trains the default Net and caches it: the notebooks after it find it there instead
      of training it again (nbval runs every notebook on one session cache);
    - then the slowest test files, which keep the other worker busy while 02 trains;
    - then the other notebooks, 6 to 40 s each, and last the short test files, which fill the end evenly
      instead of leaving one worker alone with a long notebook."""
    def rank(item) -> int:
        name = item.path.name
        if item.path.parent.name == "browser":
            return -1
        if name.startswith("test_papermill_"):
            return 0
        if name.startswith("02_"):
            return 1
        return 2 if name in SLOW_TEST_FILES else 3 if item.path.suffix == ".ipynb" else 4

    add_the_metrics_checks(items)
    mark_what_executes(items)
    items.sort(key=rank)  # stable: within a rank, and within a file, the order stays
