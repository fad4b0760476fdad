"""Notebook 12 with the five solutions in place of the learner's cells: it trains, kills, resumes, proves, shares.

nbval runs the notebook as it ships, where no step is solved and every part that runs the steps waits
(tests/notebook_claims.py's claims_12); this module runs it as a learner who solved every step sees it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import nbformat
import papermill
import pytest

from labutils import sha256sums
from labutils.paths import REPO_ROOT
from labutils.runner import run_notebook
from notebook_files import NOTEBOOK_DIR, read

CAPSTONE = NOTEBOOK_DIR / "12_capstone_project.ipynb"
SOLUTIONS = NOTEBOOK_DIR / "solutions"
STEPS = [f"ex12_{n}" for n in range(1, 6)]


def solved(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with each step's cell replaced by its solution, as a learner who solved them all has it."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "exercise" in tags:
            (step,) = [tag for tag in tags if tag != "exercise"]
            cell.source = (SOLUTIONS / f"{step}.py").read_text()
    return nb


@pytest.fixture(scope="module")
def solved_run(tmp_path_factory) -> tuple[dict, object]:
    """Run the solved notebook on an empty artifacts folder; return its metrics and that folder."""
    folder = tmp_path_factory.mktemp("capstone")
    nbformat.write(solved(read(CAPSTONE)), folder / "solved.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_ARTIFACTS_DIR", str(folder / "artifacts"))
        patch.delenv("LAB_METRICS_DIR", raising=False)
        run_notebook(folder / "solved.ipynb", folder / "ran.ipynb", cwd=NOTEBOOK_DIR)
    metrics = json.loads((folder / "artifacts" / "metrics" / "12_capstone_project.json").read_text())
    return metrics, folder / "artifacts" / "12_capstone_project"


def test_the_solutions_replace_exactly_the_five_step_cells():
    nb = read(CAPSTONE)
    changed = [(a.id, a.source != b.source) for a, b in zip(nb.cells, solved(read(CAPSTONE)).cells, strict=True)]
    assert sorted(cell for cell, differs in changed if differs) == ["c09", "c12", "c15", "c18", "c21"]


def test_every_step_passes_and_the_resumed_run_is_the_uninterrupted_one(solved_run):
    metrics, _ = solved_run
    assert metrics["passed"] == {step: True for step in STEPS}
    assert all(metrics["identical"]["resumed after SIGKILL"].values()), metrics["identical"]
    assert metrics["test_acc"] > 0.93, "two epochs on 4,000 images"


def test_the_proof_says_no_to_a_resume_without_the_random_state(solved_run):
    forgetful = solved_run[0]["identical"]["resumed without the random state"]
    assert forgetful["every parameter and buffer"] is False and forgetful["every optimizer tensor"] is False
    assert forgetful["schedule"] is True, "only the Dropout masks differ"


def test_the_resume_fell_back_past_the_damaged_newest_checkpoint(solved_run):
    """Killed after step 70: the newest checkpoint, step 60, is truncated, so the run resumes from step 40."""
    metrics, _ = solved_run
    assert (metrics["kill_at_step"], metrics["resumed_from_step"]) == (70, 40)


def test_the_folders_keep_the_last_three_and_one_best_each_with_a_sidecar_that_verifies(solved_run):
    _, folder = solved_run
    bests = {}
    for run in ("uninterrupted", "killed"):
        names = sorted(p.name for p in (folder / run).iterdir())
        checkpoints = [n for n in names if n.endswith(".pt")]
        (bests[run],) = [n for n in checkpoints if n.startswith("best-")]
        assert [n for n in checkpoints if n != bests[run]] == [
            "step-00000100.pt", "step-00000120.pt", "step-00000126.pt"], run
        assert names == sorted(checkpoints + [n + ".sha256" for n in checkpoints]), f"{run}: no temporary left"
        for name in checkpoints:
            ((digest, listed),) = sha256sums.parse((folder / run / f"{name}.sha256").read_text())
            assert listed == name and hashlib.sha256((folder / run / name).read_bytes()).hexdigest() == digest
    assert bests["killed"] == bests["uninterrupted"]


def test_a_step_saved_again_after_the_resume_has_the_same_bytes(solved_run):
    """Step 2's claim: the resumed run, saving steps it had saved before, writes the same bytes: it is the same
    run. So rewriting a step file, or a best file, in place after a resume changes nothing."""
    _, folder = solved_run
    for name in ("step-00000100.pt", "step-00000126.pt"):
        assert (folder / "killed" / name).read_bytes() == (folder / "uninterrupted" / name).read_bytes(), name
    (best,) = (folder / "killed").glob("best-*.pt")
    assert best.read_bytes() == (folder / "uninterrupted" / best.name).read_bytes()


def test_a_crash_between_the_two_renames_of_a_new_best_keeps_the_old_best(tmp_path):
    """The notebook's checkpointing with the solution's save, crashed as the new best's sidecar is put in place:
    the previous best pair stays whole, and newest_best returns it."""
    import os
    from unittest import mock

    import torch

    nb = read(CAPSTONE)
    namespace: dict = {}
    for source in [c.source for c in nb.cells if "setup" in c.metadata.get("tags", [])
                   or "parameters" in c.metadata.get("tags", [])]:
        exec(source, namespace)
    (given,) = [c.source for c in nb.cells if "def checkpointing(" in c.source]
    exec(given, namespace)
    for step in ("ex12_1", "ex12_2", "ex12_3"):
        exec((SOLUTIONS / f"{step}.py").read_text(), namespace)
    namespace["CHECKPOINT_EVERY"] = 1
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    run = namespace["make_run"](0, 10, 0.05)
    accuracies = iter([0.5, 0.7])
    with mock.patch.dict(namespace, {"evaluate": lambda *args: next(accuracies)}):
        on_step = namespace["checkpointing"](tmp_path, images, labels)
        run["step"] = 1
        on_step(run)
        assert namespace["newest_best"](tmp_path).name == "best-00000001.pt"
        real_replace = os.replace

        def crash(src, dst, *args, **kwargs):
            if str(dst).endswith("best-00000002.pt.sha256"):
                raise OSError(5, "Input/output error: the machine died here")
            return real_replace(src, dst, *args, **kwargs)

        run["step"] = 2
        with mock.patch("os.replace", crash), pytest.raises(OSError):
            on_step(run)
    assert (tmp_path / "best-00000002.pt").exists() and not (tmp_path / "best-00000002.pt.sha256").exists()
    assert namespace["newest_best"](tmp_path).name == "best-00000001.pt", "the old best survives the crash"
    assert torch.load(tmp_path / "best-00000001.pt", weights_only=True)["best_acc"] == 0.5


def test_the_shared_folder_loads_in_a_process_without_the_lab(solved_run):
    metrics, folder = solved_run
    fresh = metrics["shared_loaded_without_labutils"]
    assert fresh["same_classes"] is True and fresh["onnx_acc"] == fresh["safetensors_acc"] > 0.93
    assert sorted(p.name for p in (folder / "shared").iterdir()) == [
        "README.md", "SHA256SUMS", "config.json", "model.onnx", "model.py", "model.safetensors"]


def _load_shared(folder, shared) -> subprocess.CompletedProcess:
    data = REPO_ROOT / "data"
    return subprocess.run([sys.executable, str(folder / "load_shared.py"), str(shared),
                           str(data / "t10k-images-idx3-ubyte.gz"), str(data / "t10k-labels-idx1-ubyte.gz")],
                          capture_output=True, text=True, timeout=300)


def test_the_loader_refuses_a_changed_file_and_a_model_py_that_needs_the_lab(solved_run, tmp_path):
    """The notebook's loader says no: to a file that differs from SHA256SUMS, and to a folder that works only where
    labutils can be imported (so its success in the notebook proves that the folder needs no lab)."""
    _, folder = solved_run
    shared = tmp_path / "shared"
    shutil.copytree(folder / "shared", shared)
    (shared / "config.json").write_text((shared / "config.json").read_text().replace('"std"', '"std" ', 1))
    refused = _load_shared(folder, shared)
    assert refused.returncode == 1 and "config.json is not the file SHA256SUMS lists" in refused.stderr
    shutil.copyfile(folder / "shared" / "config.json", shared / "config.json")
    model_py = shared / "model.py"
    model_py.write_text("from labutils.models import BatchNormNet  # noqa: F401\n")
    sums = [line for line in (shared / "SHA256SUMS").read_text().splitlines() if not line.endswith("  model.py")]
    digest = hashlib.sha256(model_py.read_bytes()).hexdigest()
    (shared / "SHA256SUMS").write_text("\n".join(sums + [f"{digest}  model.py"]) + "\n")
    needs_the_lab = _load_shared(folder, shared)
    assert needs_the_lab.returncode == 1
    assert "ModuleNotFoundError: No module named 'labutils.models'" in needs_the_lab.stderr


@pytest.mark.parametrize("parameter, message", [({"CHECKPOINT_EVERY": 0}, "CHECKPOINT_EVERY=0 is not allowed"),
                                                ({"KILL_AT_STEP": 126}, "KILL_AT_STEP=126 must lie between 1 and 125")])
def test_a_bad_parameter_stops_the_notebook_with_its_name(tmp_path, monkeypatch, parameter, message):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        run_notebook(CAPSTONE, tmp_path / "out.ipynb", parameters=parameter, cwd=NOTEBOOK_DIR)
