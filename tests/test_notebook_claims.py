"""The checks on each notebook's nbval run: its committed outputs, and its metrics against its baseline and claims."""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys

import nbformat
import pytest

from labutils.paths import REPO_ROOT
from notebook_claims import CLAIMS, DEFAULT_RUNS, check_default_run
from notebook_files import NOTEBOOK_DIR, read
from regression.regress import load_baselines


def unflatten(flat: dict[str, object]) -> dict:
    """The nested metrics a notebook recorded, from their flattened baseline ("a/0/b" paths)."""
    nested: dict = {}
    for path, value in flat.items():
        *parents, last = re.split(r"(?<! )/(?! )", path)  # a name may hold " / " ("x / 255")
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    def lists(node):
        if not isinstance(node, dict):
            return node
        if node and set(node) == {str(i) for i in range(len(node))}:  # JSON lists; {"5": ...} stays a dict
            return [lists(node[str(i)]) for i in range(len(node))]
        return {key: lists(value) for key, value in node.items()}

    return lists(nested)


def baseline_metrics(notebook: str) -> dict:
    flat = load_baselines()[DEFAULT_RUNS[notebook].id]
    return unflatten({path: value for path, value in flat.items() if path != "run_seconds"})


@pytest.mark.parametrize("notebook", sorted(DEFAULT_RUNS))
def test_each_baseline_passes_its_own_check(notebook):
    check_default_run(notebook, baseline_metrics(notebook))


def test_a_metric_off_its_baseline_a_missing_one_and_a_new_one_fail():
    metrics = baseline_metrics("04_loading")
    worse = copy.deepcopy(metrics)
    worse["test_acc"] -= 0.02
    with pytest.raises(AssertionError, match=r"04-defaults \(04_loading\): test_acc is 0\.97.*abs 0\.01"):
        check_default_run("04_loading", worse)
    missing = copy.deepcopy(metrics)
    del missing["round_trip_identical"]
    with pytest.raises(AssertionError, match=r"round_trip_identical is \(missing\)"):
        check_default_run("04_loading", missing)
    with pytest.raises(AssertionError, match=r"metrics without a baseline .*04-defaults: surprise"):
        check_default_run("04_loading", metrics | {"surprise": 1})


@pytest.mark.parametrize("notebook, change, message", [
    ("03_saving", lambda m: m.update(torch_save_survived_full_disk=True), "torch.save over the file"),
    ("04_loading", lambda m: m["preprocessing_acc"].update({"as saved in the metadata": 0.5}),
     "preprocessing_acc from the metadata"),
    ("05_partial_loading", lambda m: m["transfer_gain_at_smallest"].update({"conv frozen": -0.01}),
     "pretrained conv layers help"),
    ("07_deploy_and_share", lambda m: m["predictor_answers"][0].__setitem__(1, 3), "own digit"),
    ("09_troubleshooting_clinic", lambda m: m["errors"].pop("case 4"), "every case of the clinic ran"),
    ("10_language_model", lambda m: m["trainer_variant_differs"].update({"without optimizer.pt": False}),
     "every missing piece changes the resume"),
    ("10_language_model", lambda m: m.update(bf16_largest_relative_change=0.01), "at most 2\\^-8"),
    ("11_frameworks", lambda m: m.update(trainer_left_at_limit_1=["checkpoint-10"]), "keeps the best, not the newest"),
    ("11_frameworks", lambda m: m["ddp_writes"].append("rank 1: wrote epoch=0-step=4.ckpt"), "only rank 0 writes"),
    ("03_saving", lambda m: m.update(whole_model_error="ModuleNotFoundError: No module named 'labutils'"),
     "unpickling needs the class Net"),
    ("04_loading", lambda m: m.update(cuda_error="ValueError: bad map_location"), "a CUDA file on a CPU-only load"),
    ("09_troubleshooting_clinic", lambda m: m["errors"].update({"case 2": "EOFError: Ran out of input"}),
     "case 2, a CUDA file on a CPU-only load"),
    # a bound that depends on the machine: the breach names the measured ratios, the machine, Python and torch
    ("08_large_models", lambda m: m["peak_over_weights"].update({"mmap": 1.5}),
     r"twice: peak over the weights \{.*'mmap': 1\.5.*\}, \d+ MiB of weights; on .*\d+ CPUs.*Python 3\.\d+.*torch \d"),
])
def test_each_claim_fails_when_the_run_breaks_it(notebook, change, message):
    metrics = baseline_metrics(notebook)
    change(metrics)
    with pytest.raises(AssertionError, match=message):
        CLAIMS[notebook](metrics)


@pytest.mark.parametrize("notebook, path", [("03_saving", ["whole_model_error"]), ("04_loading", ["cuda_error"]),
                                            ("09_troubleshooting_clinic", ["errors", "case 2"])])
def test_a_claim_on_an_error_holds_when_torch_or_python_words_it_otherwise(notebook, path):
    """The class and the lab's own names are claimed; the wording is torch's or Python's, and may change."""
    metrics = baseline_metrics(notebook)
    *parents, last = path
    holder = metrics
    for key in parents:
        holder = holder[key]
    kind, _, words = holder[last].partition(": ")
    holder[last] = f"{kind}: reworded by a later version" + (" (class Net)" if "Net" in words else "")
    CLAIMS[notebook](metrics)


@pytest.fixture(scope="module")
def checked_session(tmp_path_factory) -> subprocess.CompletedProcess:
    """One pytest session with the lab's settings (one start instead of two) of
    - notebook 12 as it ships (the shortest run), whose baseline is made to say KILL_AT_STEP 71: its cells pass,
      its metrics item must fail;
    - notebook 01 with only its metrics item selected: skipped, as its cells did not run;
    - a copy of 00, up to the cell whose committed output says 59,999 training images: nbval must fail that cell."""
    folder = tmp_path_factory.mktemp("checked")
    (folder / "off_baseline.py").write_text("import regression.regress as r\n_load = r.load_baselines\n"
                                            "def _off():\n    b = _load()\n    b['12-defaults']['kill_at_step'] = 71\n"
                                            "    return b\nr.load_baselines = _off\n")
    nb = read(NOTEBOOK_DIR / "00_welcome.ipynb")
    checked = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked, "00_welcome has cells whose output nbval compares"
    stream = next(o for o in checked[0].outputs if o.output_type == "stream")
    assert "60,000 training" in stream.text
    stream.text = stream.text.replace("60,000 training", "59,999 training")
    nb.cells = nb.cells[:nb.cells.index(checked[0]) + 1]  # what follows the tampered cell need not run
    (folder / "tampered").mkdir()
    nbformat.write(nb, folder / "tampered" / "00_welcome.ipynb")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    for name in ("PYTEST_XDIST_WORKER", "LAB_TEST_SESSION_ARTIFACTS"):  # a session of its own, in its own folder
        environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "off_baseline", "-k",
                           "00_welcome or 12_capstone or metrics", "notebooks/12_capstone_project.ipynb",
                           "notebooks/01_define_net.ipynb",
                           str(folder / "tampered" / "00_welcome.ipynb")],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env=environment)


@pytest.mark.executes  # a pytest session that runs a notebook: not in make check
def test_the_metrics_item_fails_a_run_off_its_baseline_and_skips_a_notebook_that_did_not_run(checked_session):
    out = checked_session.stdout
    assert checked_session.returncode == 1, out[-3000:]
    assert "FAILED notebooks/12_capstone_project.ipynb::metrics" in out, out[-3000:]
    assert "12-defaults (12_capstone_project): kill_at_step is 70, baseline 71" in out
    assert "only some of the notebook's cells ran in this session" in out
    assert re.search(r"\b2 failed, \d+ passed, 1 skipped\b", out), out[-500:]


@pytest.mark.executes  # a pytest session that runs a notebook: not in make check
def test_nbval_compares_the_checked_outputs(checked_session):
    """A committed output that the code no longer produces fails the suite (nbval --nbval-lax says no)."""
    out = checked_session.stdout
    failed_cells = re.findall(r"^FAILED (\S*)::Cell \d+ ", out, re.M)  # a file outside the repository has no path
    assert failed_cells and "notebooks/00_welcome.ipynb" not in failed_cells, out[-3000:]
    assert "+ 59,999 training" in out, "nbval shows the committed line that the run did not print"
