"""The session guard in conftest.py: a test session writes to a temporary artifacts folder, never the learner's."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils.paths import REPO_ROOT, artifacts_dir


def test_this_session_works_in_a_temporary_artifacts_folder():
    here = artifacts_dir()
    assert here.name == "artifacts" and any(part.startswith("lab-test-") for part in here.parts), here
    assert not here.is_relative_to(REPO_ROOT)


def _learner_folder(tmp_path):
    folder = tmp_path / "learner-artifacts"
    (folder / "mine").mkdir(parents=True)
    (folder / "mine" / "own.pt").write_bytes(b"a learner's model")
    (folder / "cache").mkdir()
    (folder / "cache" / "net-old.pt").write_bytes(b"a cached Net")
    return folder


def _digest(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _session(tmp_path, learner, test_source: str, *extra: str) -> subprocess.CompletedProcess:
    """A pytest session with the lab's conftest.py, for a learner whose artifacts folder is `learner`."""
    for name in ("conftest.py", "tests/nbval_sanitize.cfg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text((REPO_ROOT / name).read_text())
    (tmp_path / "test_inner.py").write_text(test_source)
    env = {name: value for name, value in os.environ.items() if not name.startswith("LAB_")}
    env["LAB_ARTIFACTS_DIR"] = str(learner)  # as a learner who keeps the lab's artifacts elsewhere
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--nbval-lax", "--nbval-current-env", "test_inner.py", *extra], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.executes  # a pytest session that runs a notebook: not in make check
def test_tests_and_notebooks_save_to_the_temporary_folder_and_leave_the_learners_files_alone(tmp_path):
    learner = _learner_folder(tmp_path)
    before = _digest(learner)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\nfrom labutils.checkpoint import save_checkpoint\nfrom labutils.paths import artifacts_dir\n"
        f"assert artifacts_dir() != __import__('pathlib').Path({str(learner)!r})\n"
        "save_checkpoint({'w': torch.zeros(2)}, artifacts_dir() / 'mine' / 'own.pt')")]
    nbformat.write(nb, tmp_path / "saves.ipynb")
    done = _session(tmp_path, learner, (
        "import torch\nfrom labutils.checkpoint import save_checkpoint\nfrom labutils.paths import artifacts_dir\n\n"
        "def test_saves():\n    save_checkpoint({'w': torch.ones(2)}, artifacts_dir() / 'cache' / 'net-old.pt')\n"),
        "saves.ipynb")
    assert done.returncode == 0, done.stdout[-3000:]
    assert _digest(learner) == before, "the learner's files are the same, byte for byte, and nothing was added"


@pytest.mark.executes  # a pytest session that runs a notebook: not in make check
def test_a_test_that_writes_to_the_learners_folder_fails_the_session_naming_each_file(tmp_path):
    learner = _learner_folder(tmp_path)
    done = _session(tmp_path, learner, (
        "from pathlib import Path\n\n"
        f"def test_leaks():\n    Path({str(learner / 'mine' / 'own.pt')!r}).write_bytes(b'overwritten')\n"
        f"    Path({str(learner / 'new.pt')!r}).write_bytes(b'new')\n"
        f"    Path({str(learner / 'cache' / 'net-old.pt')!r}).unlink()\n"))
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 passed" in done.stdout, "the test itself passed: the session guard failed the run"
    report = done.stdout[done.stdout.index("FAILED isolation"):]
    for line in ("created new.pt", "removed cache/net-old.pt", "changed mine/own.pt"):
        assert line in report, report


@pytest.fixture
def session_conftest(request):
    """The lab's root conftest.py, as pytest loaded it."""
    return request.config.pluginmanager.get_plugin(str(REPO_ROOT / "conftest.py"))


def test_parallel_workers_keep_their_own_folders_and_share_one_model_cache(tmp_path, session_conftest):
    first, second = (session_conftest.share_the_model_cache(tmp_path, worker) for worker in ("gw0", "gw1"))
    assert first != second and first.name == second.name == "artifacts"
    assert (first / "cache").resolve() == (second / "cache").resolve() == (tmp_path / "cache").resolve()
    (first / "cache" / "net-x.pt").write_bytes(b"trained by gw0")
    assert (second / "cache" / "net-x.pt").read_bytes() == b"trained by gw0"
    assert session_conftest.share_the_model_cache(tmp_path, "gw0") == first, "a second call keeps the folder"


@pytest.mark.parametrize("workers, preset, expected", [("2", None, "1"), ("1", None, None), (None, None, None),
                                                       ("2", "3", "3")])
def test_parallel_workers_split_the_cores_unless_the_learner_chose(monkeypatch, session_conftest, workers, preset,
                                                                   expected):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for name, value in (("PYTEST_XDIST_WORKER_COUNT", workers), ("OMP_NUM_THREADS", preset)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    session_conftest.share_the_cores()
    assert os.environ.get("OMP_NUM_THREADS") == expected


def test_the_chains_go_first_then_02_the_slow_files_the_notebooks_and_the_short_files(session_conftest):
    class Item:
        def __init__(self, path):
            self.path = Path(path)

        def add_marker(self, mark):  # conftest.py marks what make check leaves out
            pass

    names = ["tests/test_data.py", "tests/test_cache.py", "tests/test_papermill_06_08.py",
             "notebooks/01_define_net.ipynb", "notebooks/02_train_mnist.ipynb", "notebooks/02_train_mnist.ipynb",
             "tests/test_papermill_02_to_00.py"]
    items = [Item(name) for name in names]
    session_conftest.pytest_collection_modifyitems(None, None, items)
    assert [item.path.as_posix() for item in items] == [names[2], names[6], names[4], names[5], names[1], names[3],
                                                        names[0]]
